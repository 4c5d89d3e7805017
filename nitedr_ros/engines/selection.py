"""``open_engine``: one entry point for every backend (a ``{name: opener}`` table), and ``auto``.

``auto`` tries, in this order, and says why it chose what it chose (logged, and ``describe()['why']``):

1. TensorRT: a CUDA device exists and ``tensorrt`` is installed (found with ``importlib.util.find_spec``,
   so nothing is imported before the device check); any TensorRT failure (build, runtime, out of memory,
   an engine cache that cannot be written) falls through with the reason;
2. ONNX Runtime with the CUDA provider (onnxruntime-gpu installed, a device present);
3. torch on CUDA: torch is installed and sees the device, and the model has shipped weights
   (``<model>.pt`` next to the ONNX file, :mod:`nitedr_ros.engines.torch_engine`);
4. ONNX Runtime on the CPU.

TensorRT settings (:class:`~nitedr_ros.engines.options.BuildSettings`) form the engine cache key together
with the ONNX sha256, the TensorRT version and the GPU; any difference between the provisioning run
(``nitedr build-engine``) and the node means a rebuild. ``engine_file`` uses an explicit plan instead of
the cache (see :mod:`nitedr_ros.engines.engine_cache`); it may be given without the ONNX (TensorRT only).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, ConfigError
from .base import InferenceEngine
from .cuda import probe_cuda
from .options import BACKENDS, EngineOptions

LOG = logging.getLogger('nitedr_ros.engines')


def tensorrt_importable() -> bool:
    """Whether a ``tensorrt`` package is installed (found, not imported)."""
    return _installed('tensorrt')


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _network_from_name(path: Path) -> str | None:
    from ..modelspec import NETWORKS

    stem = path.name.split('.', 1)[0]
    network = stem.split('_', 1)[0]
    return network if network in NETWORKS else None


# -- openers: (model, options, network, config) -> engine ---------------------------------------------------
Opener = Callable[[Any, EngineOptions, 'str | None', 'str | None'], InferenceEngine]


def _open_identity(model: Any, options: EngineOptions, network: str | None, config: str | None
                   ) -> InferenceEngine:
    from .identity_engine import IdentityEngine

    if network is None and isinstance(model, (str, os.PathLike)):
        network = _network_from_name(Path(model))
    return IdentityEngine(network or 'cleannet')


def _open_torch(model: Any, options: EngineOptions, network: str | None, config: str | None
                ) -> InferenceEngine:
    from .torch_engine import open_torch_engine

    return open_torch_engine(model, options, network=network, config=config)


def _onnx_path(model: Any, options: EngineOptions) -> Path:
    if not isinstance(model, (str, os.PathLike)):
        raise ConfigError(f'backend {options.backend} needs an ONNX file path, got {type(model).__name__}')
    from ..paths import resolve_model

    return resolve_model(model)


def _open_tensorrt_at(path: Path, options: EngineOptions) -> InferenceEngine:
    from .tensorrt_engine import TensorRTEngine

    return TensorRTEngine(path, options)


def _open_tensorrt(model: Any, options: EngineOptions, network: str | None, config: str | None
                   ) -> InferenceEngine:
    try:
        path = _onnx_path(model, options)
    except ConfigError:
        if not options.engine_file:
            raise
        path = Path(model)  # an engine file deployed without its ONNX
    return _open_tensorrt_at(path, options)


def _open_ort_at(path: Path, backend: str, options: EngineOptions) -> InferenceEngine:
    from .onnxruntime_engine import OnnxRuntimeEngine
    from .variants import choose_variant

    # The CPU runs the fp32 file; the GPU providers run the file of the precision (fp16 in the graph).
    wanted = 'fp32' if backend == 'onnxruntime-cpu' else options.precision
    chosen = choose_variant(path, wanted, options.io)
    if chosen.note:
        LOG.info('%s', chosen.note)
    return OnnxRuntimeEngine(chosen.path, backend, options)


def _ort_opener(backend: str) -> Opener:
    def opener(model: Any, options: EngineOptions, network: str | None, config: str | None
               ) -> InferenceEngine:
        return _open_ort_at(_onnx_path(model, options), backend, options)

    return opener


def _open_onnxruntime(model: Any, options: EngineOptions, network: str | None, config: str | None
                      ) -> InferenceEngine:
    """Plain ``onnxruntime``: the CUDA provider when installed and a device exists, else the CPU."""
    from .onnxruntime_engine import available_providers

    gpu = ('CUDAExecutionProvider' in available_providers()
           and probe_cuda().count > options.device_index)
    return _open_ort_at(_onnx_path(model, options), 'onnxruntime-cuda' if gpu else 'onnxruntime-cpu', options)


def _open_auto(model: Any, options: EngineOptions, network: str | None, config: str | None
               ) -> InferenceEngine:
    try:
        path = _onnx_path(model, options)
    except ConfigError:
        if not options.engine_file:
            raise
        return _open_tensorrt(model, options, network, config)
    why_not: list[str] = []
    probe = probe_cuda()
    has_device = probe.count > options.device_index
    if not has_device:
        why_not.append(f'no CUDA device: {probe.reason}')
    elif not tensorrt_importable():
        why_not.append('tensorrt is not installed')
    else:
        try:
            engine = _open_tensorrt_at(path, options)
            engine.selection_reason = 'CUDA device present and tensorrt installed'
            return engine
        except (BackendUnavailableError, OSError) as exc:  # EngineBuildError, EngineFileError, CudaError ...
            why_not.append(f'TensorRT failed: {exc}')
            LOG.warning('TensorRT failed for %s, falling back: %s', path.name, exc)
    from .onnxruntime_engine import available_providers

    providers = available_providers()
    if 'CUDAExecutionProvider' not in providers:
        why_not.append('onnxruntime has no CUDAExecutionProvider')
    elif has_device:
        try:
            engine = _open_ort_at(path, 'onnxruntime-cuda', options)
            engine.selection_reason = 'ONNX Runtime CUDA: ' + '; '.join(why_not)
            return engine
        except BackendUnavailableError as exc:
            why_not.append(f'ONNX Runtime CUDA failed: {exc}')
    if has_device:
        from .torch_engine import torch_cuda_available, weights_for

        weights = weights_for(path)
        if weights is None:
            why_not.append(f'torch-cuda: no shipped weights {path.with_suffix(".pt").name}')
        elif not torch_cuda_available():
            why_not.append('torch-cuda: torch is not installed or sees no CUDA device')
        else:
            try:
                engine = _open_torch(weights, options.with_(backend='torch-cuda'), network, config)
                engine.selection_reason = 'torch on CUDA: ' + '; '.join(why_not)
                return engine
            except BackendUnavailableError as exc:
                why_not.append(f'torch-cuda failed: {exc}')
    if not providers:
        raise BackendUnavailableError('no inference backend: onnxruntime is not installed and '
                                      + '; '.join(why_not))
    engine = _open_ort_at(path, 'onnxruntime-cpu', options)
    engine.selection_reason = 'CPU fallback: ' + '; '.join(why_not)
    return engine


OPENERS: dict[str, Opener] = {
    'auto': _open_auto,
    'tensorrt': _open_tensorrt,
    'onnxruntime': _open_onnxruntime,
    'onnxruntime-tensorrt': _ort_opener('onnxruntime-tensorrt'),
    'onnxruntime-cuda': _ort_opener('onnxruntime-cuda'),
    'onnxruntime-cpu': _ort_opener('onnxruntime-cpu'),
    'torch': _open_torch,
    'torch-cpu': _open_torch,
    'torch-cuda': _open_torch,
    'identity': _open_identity,
}
assert tuple(OPENERS) == BACKENDS, 'every backend needs an opener'


def open_engine(model: Any, options: EngineOptions | str | None = None, *, network: str | None = None,
                config: str | None = None) -> InferenceEngine:
    """Open a model with the backend and settings of ``options`` (a backend name for the defaults).

    ``model`` is an ONNX path or a name inside ``models/`` (TensorRT, ONNX Runtime, and torch with the
    shipped ``.pt`` weights beside it), a checkpoint path or a ``torch.nn.Module`` (torch), or only names
    the network (identity). ``precision`` picks the ``.fp16.onnx`` file on GPU backends; CPU backends run
    fp32.
    """
    if options is None:
        options = EngineOptions()
    elif isinstance(options, str):
        options = EngineOptions(backend=options)
    engine = OPENERS[options.backend](model, options, network, config)
    if options.backend == 'auto':
        LOG.info('backend auto for %s: %s (%s)', Path(str(model)).name, engine.backend,
                 engine.selection_reason)
    else:
        engine.selection_reason = engine.selection_reason or f'backend {options.backend} requested'
    return engine
