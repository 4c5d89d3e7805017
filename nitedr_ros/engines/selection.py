"""``open_engine``: one entry point for every backend, and the ``auto`` choice with its reason.

``auto``: TensorRT when a CUDA device exists and ``tensorrt`` is importable (checked with
``importlib.util.find_spec``, so nothing is imported before the device check), else ONNX Runtime with the
CUDA provider when it is installed and a device exists, else ONNX Runtime on the CPU. The reason is logged
and returned by ``describe()['why']``. A TensorRT attempt that fails (no device, TensorRT build or runtime
errors, out of memory, an engine cache that cannot be written) falls back the same way and the reason says
what failed.

TensorRT settings: ``precision``, the profile, ``workspace_mb`` and ``optimization_level`` (builder level
0-5) form the engine cache key together with the ONNX sha256, the TensorRT version and the GPU; any
difference between the provisioning run (``nitedr build-engine``) and the node means a rebuild.
``engine_file`` uses an explicit plan instead of the cache (see :mod:`nitedr_ros.engines.engine_cache`);
it may be given without the ONNX (TensorRT only).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, ConfigError
from .base import BACKENDS, PRECISIONS, InferenceEngine
from .cuda import probe_cuda

LOG = logging.getLogger('nitedr_ros.engines')


def tensorrt_importable() -> bool:
    """Whether a ``tensorrt`` package is installed (found, not imported)."""
    try:
        return importlib.util.find_spec('tensorrt') is not None
    except (ImportError, ValueError):
        return False


def _network_from_name(path: Path) -> str | None:
    from ..modelspec import NETWORKS

    stem = path.name.split('.', 1)[0]
    network = stem.split('_', 1)[0]
    return network if network in NETWORKS else None


def open_engine(model: Any, backend: str = 'auto', *, precision: str = 'fp32', threads: int = 0,
                engine_cache_dir: str | os.PathLike[str] | None = None, force_rebuild: bool = False,
                profile_min_hw: tuple[int, int] = (128, 128), profile_opt_hw: tuple[int, int] = (720, 1280),
                profile_max_hw: tuple[int, int] = (1088, 1920), workspace_mb: int = 1024,
                optimization_level: int = 3, engine_file: str | os.PathLike[str] | None = None,
                device_index: int = 0, network: str | None = None, config: str | None = None,
                ort_optimization: str = 'all', verbose: bool = False) -> InferenceEngine:
    """Open a model with a backend (see :data:`nitedr_ros.engines.BACKENDS`).

    ``model`` is an ONNX path or a name inside ``models/`` (TensorRT, ONNX Runtime), a checkpoint path or a
    ``torch.nn.Module`` (torch), or only names the network (identity). ``precision`` picks the
    ``.fp16.onnx`` file on GPU backends; CPU backends always run fp32.
    """
    if backend not in BACKENDS:
        raise ConfigError(f'unknown backend {backend!r}; choose one of {", ".join(BACKENDS)}')
    if precision not in PRECISIONS:
        raise ConfigError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
    if backend == 'identity':
        from .identity_engine import IdentityEngine

        if network is None and isinstance(model, (str, os.PathLike)):
            network = _network_from_name(Path(model))
        return IdentityEngine(network or 'cleannet')
    if backend in ('torch', 'torch-cpu', 'torch-cuda'):
        return _open_torch(model, backend, network=network, config=config, threads=threads,
                           device_index=device_index)
    if not isinstance(model, (str, os.PathLike)):
        raise ConfigError(f'backend {backend} needs an ONNX file path, got {type(model).__name__}')
    from ..paths import resolve_model

    if not 0 <= int(optimization_level) <= 5:
        raise ConfigError(f'optimization_level must be 0..5, got {optimization_level}')
    engine_file = str(engine_file) if engine_file else None
    try:
        path = resolve_model(model)
    except ConfigError:
        if not (engine_file and backend in ('auto', 'tensorrt')):
            raise
        path = Path(model)  # an engine file deployed without its ONNX: TensorRT only
        backend = 'tensorrt'
    common: dict[str, Any] = dict(precision=precision, threads=threads, engine_cache_dir=engine_cache_dir,
                                  force_rebuild=force_rebuild, device_index=device_index,
                                  profile=(tuple(profile_min_hw), tuple(profile_opt_hw),
                                           tuple(profile_max_hw)),
                                  workspace_mb=workspace_mb, optimization_level=int(optimization_level),
                                  engine_file=engine_file, ort_optimization=ort_optimization,
                                  verbose=verbose)
    if backend != 'auto':
        if backend == 'onnxruntime':
            from .onnxruntime_engine import available_providers

            providers = available_providers()
            backend = next((b for b, p in (('onnxruntime-cuda', 'CUDAExecutionProvider'),)
                            if p in providers and probe_cuda().count > device_index), 'onnxruntime-cpu')
        engine = _open_onnx(path, backend, **common)
        engine.selection_reason = engine.selection_reason or f'backend {backend} requested'
        return engine
    engine, reason = _auto(path, common)
    engine.selection_reason = reason
    LOG.info('backend auto for %s: %s (%s)', path.name, engine.backend, reason)
    return engine


def _auto(path: Path, common: dict[str, Any]) -> tuple[InferenceEngine, str]:
    why_not: list[str] = []
    probe = probe_cuda()
    has_device = probe.count > common['device_index']
    if not has_device:
        why_not.append(f'no CUDA device: {probe.reason}')
    elif not tensorrt_importable():
        why_not.append('tensorrt is not installed')
    else:
        try:
            return _open_onnx(path, 'tensorrt', **common), 'CUDA device present and tensorrt installed'
        except (BackendUnavailableError, OSError) as exc:  # EngineBuildError, EngineFileError, CudaError ...
            why_not.append(f'TensorRT failed: {exc}')
            LOG.warning('TensorRT failed for %s, falling back to ONNX Runtime: %s', path.name, exc)
    from .onnxruntime_engine import available_providers

    providers = available_providers()
    if not providers:
        raise BackendUnavailableError('no inference backend: onnxruntime is not installed and '
                                      + '; '.join(why_not))
    if 'CUDAExecutionProvider' not in providers:
        why_not.append('onnxruntime has no CUDAExecutionProvider')
    elif has_device:
        try:
            engine = _open_onnx(path, 'onnxruntime-cuda', **common)
            return engine, 'ONNX Runtime CUDA: ' + '; '.join(why_not)
        except BackendUnavailableError as exc:
            why_not.append(f'ONNX Runtime CUDA failed: {exc}')
    return _open_onnx(path, 'onnxruntime-cpu', **common), 'CPU fallback: ' + '; '.join(why_not)


def _open_onnx(path: Path, backend: str, *, precision: str, threads: int, engine_cache_dir: Any,
               force_rebuild: bool, device_index: int, profile: tuple, workspace_mb: int,
               optimization_level: int, engine_file: str | None, ort_optimization: str,
               verbose: bool) -> InferenceEngine:
    from .tensorrt_engine import onnx_for_precision

    if backend == 'tensorrt':
        from .engine_cache import BuildSettings
        from .tensorrt_engine import TensorRTEngine

        settings = BuildSettings(precision, *profile, workspace_mb, optimization_level)
        return TensorRTEngine(path, settings=settings, cache_dir=engine_cache_dir,
                              force_rebuild=force_rebuild, device_index=device_index, verbose=verbose,
                              engine_file=engine_file)
    from .onnxruntime_engine import OnnxRuntimeEngine

    # The CPU runs the fp32 file; the GPU providers run the file of the precision (fp16 in the graph).
    wanted = 'fp32' if backend == 'onnxruntime-cpu' else precision
    onnx_path, _used, note = onnx_for_precision(path, wanted)
    if note:
        LOG.info('%s', note)
    trt_provider = backend == 'onnxruntime-tensorrt'
    return OnnxRuntimeEngine(onnx_path, backend, threads=threads, optimization=ort_optimization,
                             precision=precision, cache_dir=engine_cache_dir, device_index=device_index,
                             profile_hw=profile if trt_provider else None,
                             workspace_mb=workspace_mb if trt_provider else None,
                             optimization_level=optimization_level if trt_provider else None)


def _open_torch(model: Any, backend: str, *, network: str | None, config: str | None, threads: int,
                device_index: int) -> InferenceEngine:
    from .torch_engine import TorchEngine

    if backend == 'torch':
        try:
            import torch

            backend = 'torch-cuda' if torch.cuda.is_available() else 'torch-cpu'
        except ImportError as exc:
            raise BackendUnavailableError(f'the torch backend needs torch ({exc})') from None
    device = f'cuda:{device_index}' if backend == 'torch-cuda' else 'cpu'
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix == '.onnx':
            raise ConfigError(f'backend {backend} runs checkpoints (.pt) or model objects, not ONNX: {path}')
        return TorchEngine(checkpoint=path, network=network, config=config, device=device, threads=threads)
    return TorchEngine(model, network=network, config=config, device=device, threads=threads)
