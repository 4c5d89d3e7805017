"""torch backend: eager CPU/CUDA from a checkpoint or a model object (development and comparisons).

torch is imported only when this engine is created. The model's ``forward`` takes the inputs named in
:mod:`nitedr_ros.modelspec` in order and returns a tensor (one output) or a tuple. On CUDA the time is
measured with CUDA events around the forward pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, ConfigError
from .base import InferenceEngine, check_inputs
from .options import EngineOptions


def weights_for(model_path: str | os.PathLike[str]) -> Path | None:
    """The shipped torch weights of an ONNX model (``<stem>.pt`` beside ``<stem>.onnx``), or None."""
    path = Path(model_path)
    stem = path.name.split('.', 1)[0]
    weights = path.with_name(f'{stem}.pt')
    return weights if weights.is_file() else None


def torch_cuda_available() -> bool:
    """torch is installed and sees a CUDA device (imports torch only when it is installed)."""
    import importlib.util

    if importlib.util.find_spec('torch') is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def open_torch_engine(model: Any, options: EngineOptions, *, network: str | None = None,
                      config: str | None = None) -> TorchEngine:
    """A torch engine for ``options.backend`` (``torch`` picks CUDA when torch sees a device).

    ``model``: a ``torch.nn.Module``, a checkpoint (``.pt``; shipped weights are checkpoints too), or an ONNX
    path or model name whose shipped ``.pt`` weights lie beside it.
    """
    backend = options.backend
    if backend == 'torch':
        backend = 'torch-cuda' if torch_cuda_available() else 'torch-cpu'
    device = f'cuda:{options.device_index}' if backend == 'torch-cuda' else 'cpu'
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix == '.onnx' or not path.suffix:
            from ..paths import resolve_model

            onnx_path = resolve_model(model)
            weights = weights_for(onnx_path)
            if weights is None:
                expected = onnx_path.name.split('.', 1)[0] + '.pt'
                raise ConfigError(f'backend {backend} needs torch weights: no {expected} beside {onnx_path} '
                                  '(nitedr train --export-to writes it)')
            path = weights
        return TorchEngine(checkpoint=path, network=network, config=config, device=device,
                           threads=options.threads)
    return TorchEngine(model, network=network, config=config, device=device, threads=options.threads)


class TorchEngine(InferenceEngine):
    """:class:`InferenceEngine` running a torch module eagerly under ``torch.inference_mode``."""

    def __init__(self, model: Any = None, *, checkpoint: str | os.PathLike[str] | None = None,
                 network: str | None = None, config: str | None = None, device: str = 'cpu',
                 threads: int = 0) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError(f'the torch backend needs torch ({exc})') from None
        self._torch = torch
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise BackendUnavailableError('torch-cuda: torch reports no CUDA device')
        if threads > 0:
            torch.set_num_threads(threads)
        self.threads = threads
        self.source = 'model object'
        if checkpoint is not None:
            path = Path(checkpoint)
            if path.suffix == '.onnx':
                raise ConfigError(f'the torch backend runs checkpoints (.pt), not ONNX files: {path}')
            from ..networks.checkpoint import load_checkpoint

            model, payload = load_checkpoint(path)
            network = payload.get('network') or network
            config = payload.get('config') or config
            self.source = str(path)
        if model is None:
            raise ConfigError('the torch backend needs a model object or a checkpoint')
        from ..modelspec import NETWORKS

        spec = NETWORKS.get(network) if network else None
        self.input_names = spec.input_names if spec else ('image',)
        self.output_names = spec.output_names if spec else ('derained',)
        self.metadata = {'nitedr.precision': 'fp32'}
        if network:
            self.metadata['nitedr.network'] = network
            if spec:
                self.metadata['nitedr.multiple_of'] = str(spec.multiple_of)
        if config:
            self.metadata['nitedr.config'] = config
        self.device = torch.device(device)
        self.backend = 'torch-cuda' if self.device.type == 'cuda' else 'torch-cpu'
        self.model = model.to(self.device).eval()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        feed = check_inputs(inputs, self.input_names)
        tensors = [torch.from_numpy(feed[name]).to(self.device) for name in self.input_names]
        with torch.inference_mode():
            if self.device.type == 'cuda':
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                result = self.model(*tensors)
                end.record()
                end.synchronize()
                self.last_inference_ms = float(start.elapsed_time(end))
            else:
                started = time.perf_counter()
                result = self.model(*tensors)
                self.last_inference_ms = (time.perf_counter() - started) * 1000.0
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        if len(outputs) != len(self.output_names):
            raise ConfigError(f'model returned {len(outputs)} outputs, expected {len(self.output_names)} '
                              f'({", ".join(self.output_names)})')
        return {name: out.detach().float().cpu().numpy() for name, out in zip(self.output_names, outputs)}

    def describe(self) -> dict[str, str]:
        facts = self._describe_common()
        facts.update({
            'model': self.source,
            'precision': 'fp32',
            'device': str(self.device),
            'torch_version': self._torch.__version__,
            'threads': str(self._torch.get_num_threads()),
        })
        return facts

    def close(self) -> None:
        self.model = None
