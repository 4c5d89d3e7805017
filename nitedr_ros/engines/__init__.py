"""Inference engines: TensorRT, ONNX Runtime, torch (and a pass-through for tests) behind one interface.

Importing this package imports neither torch nor tensorrt; each is imported when its backend is opened,
and TensorRT only after a CUDA device was found (:func:`cuda_device_count`).
"""

from __future__ import annotations

from .base import BACKENDS, PRECISIONS, InferenceEngine, ShapeLimits
from .cuda import CudaProbe, DeviceIdentity, cuda_device_count, probe_cuda
from .engine_cache import (
    BuildSettings,
    CachedEngine,
    EngineBuildError,
    EngineCache,
    EngineFileError,
    EngineKey,
)
from .selection import open_engine, tensorrt_importable

__all__ = [
    'BACKENDS', 'PRECISIONS', 'BuildSettings', 'CachedEngine', 'CudaProbe', 'DeviceIdentity',
    'EngineBuildError', 'EngineCache', 'EngineFileError', 'EngineKey', 'InferenceEngine', 'ShapeLimits',
    'cuda_device_count', 'open_engine', 'probe_cuda', 'provision_engine', 'tensorrt_importable',
]


def provision_engine(model, settings: BuildSettings, **kwargs) -> CachedEngine:
    """Build (or verify) the cached TensorRT engine of an ONNX model without running it (build-only mode).

    Keyword arguments as :func:`nitedr_ros.engines.tensorrt_engine.prepare_engine` (``engine_file``: write
    to / verify that plan instead of the cache); raises BackendUnavailableError without a CUDA device or
    TensorRT.
    """
    from ..errors import ConfigError
    from ..paths import resolve_model
    from .tensorrt_engine import prepare_engine

    try:
        path = resolve_model(model)
    except ConfigError:
        if not kwargs.get('engine_file'):
            raise
        path = model  # verify an engine file deployed without its ONNX
    return prepare_engine(path, settings, **kwargs).cached
