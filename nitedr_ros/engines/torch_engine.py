"""torch backend: the networks in torch, on the CPU or fast on a CUDA GPU.

Weights: a ``torch.nn.Module``, a training checkpoint, or the shipped realtime weights (``models/<name>.pt``
beside ``<name>.onnx``, the same checkpoint format) found from an ONNX path or model name. torch is imported
only when this engine is created.

I/O: ``io='uint8'`` (and ``auto``) runs the network inside :class:`~nitedr_ros.networks.io_wrapper.UInt8IO`,
so the engine takes and returns the camera's bytes (``image_u8`` ... ``channel_order``; the pipeline's uint8
path) and every conversion runs on the device; ``io='float'`` takes float32 NCHW tensors (``image`` ...).

On CUDA, the way GPU practitioners make small networks fast:

- ``precision='fp16'``: half weights and activations (the uint8 conversions stay exact);
- ``channels_last``: NHWC memory format for the convolutions (tensor cores);
- a dedicated CUDA stream, pinned host buffers per input size, asynchronous host<->device copies;
- ``cuda_graphs``: one CUDA graph captured per input size (after a warm-up on the side stream) and replayed
  while the size stays the same; a network that cannot be captured runs eagerly (``describe()`` says why);
- ``torch_compile``: ``torch.compile`` of the wrapped network (its first frame per size is slow);
- CUDA events: ``last_inference_ms`` is the network (graph replay) alone, ``last_transfer_ms`` the two copies.

On the CPU the engine runs eagerly in fp32 (fp16 has no fast CPU kernels): tests and development.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, ConfigError
from .base import InferenceEngine, check_inputs
from .options import EngineOptions

WARMUP_RUNS = 3  # eager runs on the side stream before a graph is captured (cuDNN picks its algorithms)


def weights_for(model_path: str | os.PathLike[str]) -> Path | None:
    """The shipped torch weights of an ONNX model (``<stem>.pt`` beside ``<stem>.onnx``), or None."""
    path = Path(model_path)
    stem = path.name.split('.', 1)[0]
    weights = path.with_name(f'{stem}.pt')
    return weights if weights.is_file() else None


def torch_cuda_available() -> bool:
    """torch is installed and sees a CUDA device (imports torch only when it is installed)."""
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
    if backend == 'auto':
        backend = 'torch-cuda'
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
        return TorchEngine(checkpoint=path, network=network, config=config, backend=backend, options=options)
    return TorchEngine(model, network=network, config=config, backend=backend, options=options)


@dataclass
class _SizeState:
    """Buffers (and the graph) of one input size on CUDA."""

    pinned_in: dict[str, Any]
    device_in: dict[str, Any]
    pinned_out: list[Any] = field(default_factory=list)
    device_out: list[Any] = field(default_factory=list)
    graph: Any = None


class TorchEngine(InferenceEngine):
    """:class:`InferenceEngine` running a torch network (see the module docstring)."""

    def __init__(self, model: Any = None, *, checkpoint: str | os.PathLike[str] | None = None,
                 network: str | None = None, config: str | None = None, backend: str = 'torch-cpu',
                 options: EngineOptions | None = None) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError(f'the torch backend needs torch ({exc}): pip install torch') \
                from None
        self._torch = torch
        options = options or EngineOptions(backend=backend)
        self.options = options
        cuda = backend == 'torch-cuda'
        if cuda and not torch.cuda.is_available():
            raise BackendUnavailableError('torch-cuda: torch reports no CUDA device')
        if options.threads > 0:
            torch.set_num_threads(options.threads)
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
        self.device = torch.device(f'cuda:{options.device_index}' if cuda else 'cpu')
        self.backend = 'torch-cuda' if cuda else 'torch-cpu'
        self.half = cuda and options.precision == 'fp16'
        self.channels_last = cuda and options.channels_last
        self.io = 'uint8' if options.io in ('auto', 'uint8') and spec is not None else 'float'
        if options.io == 'uint8' and spec is None:
            raise ConfigError('io uint8 needs to know the network (its inputs and multiple): pass network=')
        dtype = torch.float16 if self.half else torch.float32
        model = model.to(self.device).eval()
        if self.half:
            model = model.half()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.io == 'uint8':
            from ..modelspec import u8_input_names, u8_output_names
            from ..networks.io_wrapper import UInt8IO

            assert spec is not None
            self.module = UInt8IO(model, spec, compute_dtype=dtype, channels_last=self.channels_last).eval()
            self.input_names, self.output_names = u8_input_names(spec), u8_output_names(spec)
        else:
            self.module = model
            self.input_names = spec.input_names if spec else ('image',)
            self.output_names = spec.output_names if spec else ('derained',)
        self._call = self.module
        self.compiled = False
        if options.torch_compile:
            self._call = torch.compile(self.module, dynamic=False)
            self.compiled = True
        self.metadata = {'nitedr.precision': 'fp16' if self.half else 'fp32', 'nitedr.io': self.io}
        if network:
            self.metadata['nitedr.network'] = network
            if spec:
                self.metadata['nitedr.multiple_of'] = str(spec.multiple_of)
        if config:
            self.metadata['nitedr.config'] = config
        self.use_graphs = cuda and options.cuda_graphs
        self.graph_note = '' if self.use_graphs else 'off'
        self.last_transfer_ms = 0.0
        self._states: dict[tuple, _SizeState] = {}
        if cuda:
            self._stream = torch.cuda.Stream(device=self.device)
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]

    # -- running ----------------------------------------------------------------------------------------
    def _feed(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.io == 'float':
            return check_inputs(inputs, self.input_names)
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ConfigError(f'engine input {", ".join(missing)} missing (engine expects '
                              f'{", ".join(self.input_names)})')
        return {name: np.ascontiguousarray(inputs[name]) for name in self.input_names}

    def _run(self, tensors: list[Any]) -> tuple[Any, ...]:
        result = self._call(*tensors)
        return tuple(result) if isinstance(result, (tuple, list)) else (result,)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = self._feed(inputs)
        if self.device.type != 'cuda':
            return self._infer_cpu(feed)
        return self._infer_cuda(feed)

    def _infer_cpu(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        tensors = [torch.from_numpy(feed[name]) for name in self.input_names]
        with torch.inference_mode():
            started = time.perf_counter()
            outputs = self._run(tensors)
            self.last_inference_ms = (time.perf_counter() - started) * 1000.0
        return self._collect([o.detach().cpu() for o in outputs])

    def _collect(self, outputs: list[Any]) -> dict[str, np.ndarray]:
        if len(outputs) != len(self.output_names):
            raise ConfigError(f'model returned {len(outputs)} outputs, expected {len(self.output_names)} '
                              f'({", ".join(self.output_names)})')
        # copies: the pinned output buffers are reused by the next call
        return {name: np.array(out.numpy(), dtype=np.uint8 if self.io == 'uint8' else np.float32)
                for name, out in zip(self.output_names, outputs)}

    def _state(self, feed: dict[str, np.ndarray]) -> _SizeState:
        torch = self._torch
        key = tuple((name, feed[name].shape, feed[name].dtype.str) for name in self.input_names)
        state = self._states.get(key)
        if state is not None:
            return state
        pinned = {name: torch.from_numpy(feed[name].copy()).pin_memory() for name in self.input_names}
        device_in = {name: t.to(self.device) for name, t in pinned.items()}
        if self.half and self.io == 'float':
            device_in = {name: t.half() for name, t in device_in.items()}
        state = _SizeState(pinned, device_in)
        tensors = [state.device_in[n] for n in self.input_names]
        self._stream.wait_stream(torch.cuda.current_stream(self.device))  # the inputs were made there
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            for _ in range(WARMUP_RUNS):
                outputs = self._run(tensors)
            self._stream.synchronize()
            if self.use_graphs:
                try:
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=self._stream):
                        outputs = self._run(tensors)
                    state.graph = graph
                    self.graph_note = 'captured per input size'
                except Exception as exc:  # noqa: BLE001 - a network with host syncs: run it eagerly
                    self.use_graphs = False
                    self.graph_note = f'capture failed, eager: {type(exc).__name__}: {exc}'[:200]
                    torch.cuda.synchronize(self.device)
                    outputs = self._run(tensors)
        state.device_out = list(outputs)
        state.pinned_out = [torch.empty(o.shape, dtype=o.dtype if self.io == 'uint8' else torch.float32,
                                        pin_memory=True) for o in outputs]
        self._states[key] = state
        return state

    def _infer_cuda(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        state = self._state(feed)
        h2d_start, compute_start, compute_end, d2h_end = self._events
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            for name in self.input_names:
                state.pinned_in[name].numpy()[...] = feed[name]
            h2d_start.record(self._stream)
            for name in self.input_names:
                state.device_in[name].copy_(state.pinned_in[name], non_blocking=True)
            compute_start.record(self._stream)
            if state.graph is not None:
                state.graph.replay()
                outputs = state.device_out
            else:
                outputs = list(self._run([state.device_in[n] for n in self.input_names]))
            compute_end.record(self._stream)
            for pinned, out in zip(state.pinned_out, outputs):
                pinned.copy_(out if self.io == 'uint8' else out.float(), non_blocking=True)
            d2h_end.record(self._stream)
        d2h_end.synchronize()
        self.last_inference_ms = float(compute_start.elapsed_time(compute_end))
        self.last_transfer_ms = float(h2d_start.elapsed_time(compute_start)
                                      + compute_end.elapsed_time(d2h_end))
        return self._collect(state.pinned_out)

    # -- facts ------------------------------------------------------------------------------------------
    def describe(self) -> dict[str, str]:
        torch = self._torch
        facts = self._describe_common()
        facts.update({
            'model': self.source,
            'precision': 'fp16' if self.half else 'fp32',
            'io': self.io,
            'device': str(self.device),
            'torch_version': torch.__version__,
        })
        if self.device.type == 'cuda':
            facts.update({'gpu': torch.cuda.get_device_name(self.device),
                          'channels_last': str(self.channels_last).lower(),
                          'cuda_graphs': self.graph_note, 'torch_compile': str(self.compiled).lower(),
                          'timing': 'inference_ms: CUDA events around the network (graph replay); '
                                    'transfer_ms: the pinned host<->device copies'})
        else:
            facts['threads'] = str(torch.get_num_threads())
        return facts

    def close(self) -> None:
        self._states.clear()
        self.module = self._call = None
