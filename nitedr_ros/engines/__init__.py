"""Inference engines: TensorRT, ONNX Runtime, torch (and a pass-through for tests) behind one interface.

Importing this package imports nothing heavy: names are loaded on first use (PEP 562), so the
dependency-free :mod:`nitedr_ros.engines.options` can be imported by the parameter schema without numpy.
torch and tensorrt are imported only when their backend is opened, and TensorRT only after a CUDA device
was found (:func:`cuda_device_count`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    'BACKENDS': 'options', 'PRECISIONS': 'options', 'BuildSettings': 'options', 'EngineOptions': 'options',
    'InferenceEngine': 'base', 'ShapeLimits': 'base',
    'CudaProbe': 'cuda', 'DeviceIdentity': 'cuda', 'cuda_device_count': 'cuda', 'probe_cuda': 'cuda',
    'CachedEngine': 'engine_cache', 'EngineBuildError': 'engine_cache', 'EngineCache': 'engine_cache',
    'EngineFileError': 'engine_cache', 'EngineKey': 'engine_cache',
    'open_engine': 'selection', 'tensorrt_importable': 'selection',
}
__all__ = [*_EXPORTS, 'provision_engine']


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{module}'), name)


def provision_engine(model: Any, options: Any, **kwargs: Any) -> Any:
    """Build (or verify) the cached TensorRT engine of an ONNX model without running it (build-only mode).

    ``options``: :class:`~nitedr_ros.engines.options.EngineOptions` (``engine_file``: write to / verify that
    plan instead of the cache); keyword arguments as
    :func:`nitedr_ros.engines.tensorrt_engine.prepare_engine`.
    Raises BackendUnavailableError without a CUDA device or TensorRT. Returns the ``CachedEngine``.
    """
    from ..errors import ConfigError
    from ..paths import resolve_model
    from .tensorrt_engine import prepare_engine

    try:
        path = resolve_model(model)
    except ConfigError:
        if not options.engine_file:
            raise
        path = model  # verify an engine file deployed without its ONNX
    return prepare_engine(path, options, **kwargs).cached
