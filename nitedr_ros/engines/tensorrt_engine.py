"""TensorRT backend: engine from the cache (built on first use), named-tensor execution on a CUDA stream.

Per call: inputs are copied into pinned host buffers, sent with ``cudaMemcpyAsync``, shapes set with
``set_input_shape``, addresses with ``set_tensor_address``, then ``execute_async_v3`` runs between two CUDA
events (``last_inference_ms`` is their elapsed time, not wall clock around an async call); outputs come back
with ``cudaMemcpyAsync`` and the stream is synchronised. Buffers grow on demand and are reused. The
pipeline books the copies and the host staging as its ``transfer_ms`` stage (engine call minus
``last_inference_ms``).

Dependencies: ``tensorrt`` and ``cuda-python`` (``cuda.bindings``; PyCUDA only as a fallback). The ONNX
metadata (``nitedr.*``) is read without onnx/onnxruntime, from the ONNX itself or, for an engine file
deployed without its ONNX, from the sidecar written at build time. cuda-python's major version must match
the CUDA toolkit of the platform: on JetPack 6 (CUDA 12.x) pin ``cuda-python>=12,<13``; a 13.x cuda-python
against a CUDA 12 driver fails in ``cudaGetDeviceCount``, which the guard reports as "no CUDA device".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, ConfigError
from ..paths import engine_cache_dir
from .base import InferenceEngine, ShapeLimits, checked_inputs
from .cuda import CudaProbe, CudaRuntime, DeviceIdentity, cuda_runtime, device_identity, probe_cuda
from .engine_cache import CachedEngine, EngineCache
from .options import EngineOptions
from .variants import choose_variant

LOG = logging.getLogger('nitedr_ros.engines')


@dataclass
class PreparedEngine:
    """An engine obtained from the cache plus everything needed to run it."""

    cached: CachedEngine
    toolkit: Any
    device: DeviceIdentity
    onnx_path: Path | None  # None: an explicit engine file loaded without its ONNX
    precision: str
    note: str


def require_cuda_device(device_index: int = 0, probe: CudaProbe | None = None) -> CudaProbe:
    """Refuse (BackendUnavailableError) unless CUDA device ``device_index`` exists. Touches no TensorRT."""
    probe = probe if probe is not None else probe_cuda()
    if probe.count <= device_index:
        if probe.count == 0:
            why = probe.reason or 'no device'
            raise BackendUnavailableError(f'no CUDA GPU found, and TensorRT needs one ({why}); on a machine '
                                          'without a GPU use backend onnxruntime-cpu')
        raise BackendUnavailableError(f'TensorRT needs CUDA device {device_index}, but only {probe.count} '
                                      'CUDA device(s) exist (gpu_id)')
    return probe


def prepare_engine(model_path: str | os.PathLike[str], options: EngineOptions, *,
                   lock_timeout_s: float | None = None, probe: CudaProbe | None = None,
                   prune: bool = True) -> PreparedEngine:
    """Load or build the engine for a model (the build-only / ``nitedr build-engine`` entry point).

    Uses ``options.build`` (the cache key), ``cache_dir``, ``force_rebuild``, ``device_index``, ``verbose``
    and ``engine_file`` (an explicit plan path instead of the cache, policy in
    :mod:`nitedr_ros.engines.engine_cache`; without the ONNX it is loaded as given).
    """
    settings = options.build
    device_index = options.device_index
    engine_file = options.engine_file or None
    require_cuda_device(device_index, probe)
    try:
        chosen = choose_variant(Path(model_path), settings.precision, options.io)
        onnx_path, precision, note = chosen.path, chosen.precision, chosen.note
    except ConfigError:
        if not engine_file:
            raise
        onnx_path, precision, note = None, settings.precision, f'{model_path} not found: engine file only'
    cuda_runtime().set_device(device_index)  # TensorRT works on the calling thread's current device
    from .tensorrt_toolkit import TensorRTToolkit  # imports tensorrt; safe now that a device exists

    toolkit = TensorRTToolkit(verbose=options.verbose)
    if note:
        LOG.warning('%s', note)
    if precision != settings.precision:
        settings = replace(settings, precision=precision)
    device = device_identity(device_index)
    cache = EngineCache(options.cache_dir or engine_cache_dir(), toolkit, device,
                        lock_timeout_s=lock_timeout_s, prune=prune)
    if onnx_path is None:
        cached = cache.load_file(engine_file, settings)
    else:
        cached = cache.get(onnx_path, settings, force_rebuild=options.force_rebuild, engine_path=engine_file)
    return PreparedEngine(cached, toolkit, device, onnx_path, precision, note)


def engine_metadata(prepared: PreparedEngine) -> dict[str, str]:
    """``nitedr.*`` metadata: from the ONNX (no onnx/onnxruntime needed), else from the engine's sidecar."""
    from .onnx_info import read_metadata_props

    if prepared.onnx_path is not None:
        return read_metadata_props(prepared.onnx_path)
    stored = prepared.cached.sidecar.get('onnx_metadata')
    if isinstance(stored, dict):
        return {str(k): str(v) for k, v in stored.items()}
    LOG.warning('engine file %s has no ONNX metadata (no sidecar): multiple_of falls back to the network '
                'named in the file name', prepared.cached.path)
    return {}


class _Buffer:
    """A device allocation and a pinned host allocation of the same capacity, grown on demand."""

    def __init__(self, cuda: CudaRuntime, dtype: np.dtype) -> None:
        self.cuda = cuda
        self.dtype = np.dtype(dtype)
        self.capacity = 0
        self.device = 0
        self.host: np.ndarray | None = None
        self._host_handle: object = None

    def ensure(self, count: int) -> None:
        if count <= self.capacity:
            return
        self.release()
        self.device = self.cuda.malloc(count * self.dtype.itemsize)
        self.host, self._host_handle = self.cuda.host_array((count,), self.dtype)
        self.capacity = count

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        assert self.host is not None
        return self.host[:int(np.prod(shape))].reshape(shape)

    def release(self) -> None:
        if self.device:
            self.cuda.free(self.device)
            self.device = 0
        if self._host_handle is not None:
            self.cuda.free_host(self._host_handle)
            self._host_handle = None
        self.host = None
        self.capacity = 0


class TensorRTEngine(InferenceEngine):
    """:class:`InferenceEngine` on a TensorRT engine from the cache."""

    backend = 'tensorrt'

    def __init__(self, model_path: str | os.PathLike[str], options: EngineOptions | None = None, *,
                 probe: CudaProbe | None = None) -> None:
        self._closed = True
        self._buffers: dict[str, _Buffer] = {}
        self._stream: Any = None
        self._events: list[Any] = []
        self._context: Any = None
        options = options or EngineOptions(backend='tensorrt')
        device_index = options.device_index
        prepared = prepare_engine(model_path, options, probe=probe)
        self.prepared = prepared
        self.metadata = engine_metadata(prepared)
        self.metadata.setdefault('nitedr.precision', prepared.precision)
        if 'nitedr.network' not in self.metadata and prepared.onnx_path is None:
            network = Path(str(model_path)).name.split('.', 1)[0].split('_', 1)[0]
            self.metadata['nitedr.network'] = network
        self._cuda = cuda_runtime()
        self._device_index = device_index
        from .tensorrt_toolkit import tensorrt_errors

        try:
            with tensorrt_errors(f'setting up an execution context for {prepared.cached.path.name}'):
                self._setup(prepared)
        except BaseException:
            self._release()  # whatever exists already: buffers, stream, events, context
            raise
        self._closed = False

    def _setup(self, prepared: PreparedEngine) -> None:
        trt = prepared.toolkit.trt
        engine = prepared.cached.engine
        self._trt_engine = engine
        self._cuda.set_device(self._device_index)
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendUnavailableError('TensorRT could not create an execution context '
                                          '(out of GPU memory?)')
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = tuple(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_names = tuple(n for n in names if n not in self.input_names)
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._buffers = {n: _Buffer(self._cuda, self._dtypes[n]) for n in names}
        self.io = 'uint8' if self._dtypes[self.input_names[0]] == np.uint8 else 'float'
        h_axis, w_axis = (1, 2) if self.io == 'uint8' else (2, 3)  # NHWC bytes or NCHW floats
        low, _opt, high = (tuple(s) for s in engine.get_tensor_profile_shape(self.input_names[0], 0))
        if (low[h_axis], low[w_axis]) == (high[h_axis], high[w_axis]):
            self.limits = ShapeLimits(fixed=(int(low[h_axis]), int(low[w_axis])))
        else:
            self.limits = ShapeLimits(minimum=(int(low[h_axis]), int(low[w_axis])),
                                      maximum=(int(high[h_axis]), int(high[w_axis])))
        self._stream = self._cuda.stream_create()
        self._stream_handle = self._cuda.stream_handle(self._stream)
        self._start = self._cuda.event_create()
        self._events.append(self._start)
        self._end = self._cuda.event_create()
        self._events.append(self._end)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._closed:
            raise BackendUnavailableError('TensorRT engine is closed')
        checked = checked_inputs(inputs, self.input_names, self._dtypes)
        ctx, cuda, stream = self._context, self._cuda, self._stream
        if self._device_index:  # the current device is per thread; the caller may be a worker thread
            cuda.set_device(self._device_index)
        for name, array in checked.items():
            if not ctx.set_input_shape(name, array.shape):
                raise ConfigError(f'input {name} shape {array.shape} is outside the engine profile '
                                  f'{self.limits}')
            buffer = self._buffers[name]
            buffer.ensure(array.size)
            host = buffer.view(array.shape)
            np.copyto(host, array, casting='same_kind')
            cuda.copy_to_device_async(buffer.device, host, stream)
            ctx.set_tensor_address(name, buffer.device)
        shapes = {}
        for name in self.output_names:
            shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
            shapes[name] = shape
            buffer = self._buffers[name]
            buffer.ensure(int(np.prod(shape)))
            ctx.set_tensor_address(name, buffer.device)
        cuda.event_record(self._start, stream)
        if not ctx.execute_async_v3(self._stream_handle):
            raise BackendUnavailableError('TensorRT execute_async_v3 failed (see the TensorRT log)')
        cuda.event_record(self._end, stream)
        for name, shape in shapes.items():
            cuda.copy_to_host_async(self._buffers[name].view(shape), self._buffers[name].device, stream)
        cuda.stream_synchronize(stream)
        self.last_inference_ms = cuda.elapsed_ms(self._start, self._end)
        # Copy out: the pinned buffers are reused by the next call (half outputs come back as float32).
        return {name: self._buffers[name].view(shape).astype(
                    np.float32 if self._dtypes[name].kind == 'f' else self._dtypes[name], copy=True)
                for name, shape in shapes.items()}

    def describe(self) -> dict[str, str]:
        cached = self.prepared.cached
        facts = self._describe_common()
        facts.update({
            'model': str(self.prepared.onnx_path or cached.path),
            'precision': self.prepared.precision,
            'engine_file': str(cached.path),
            'engine_source': cached.source,
            'engine_reason': cached.reason,
            'build_seconds': f'{cached.build_seconds:.1f}',
            'tensorrt_version': cached.key.tensorrt_version,
            'gpu': self.prepared.device.name,
            'compute_capability': cached.key.compute_capability,
            'onnx_sha256': cached.key.onnx_sha256[:12] or 'unknown (engine file only)',
            'optimization_level': str(cached.key.settings.optimization_level),
            'workspace_mb': str(cached.key.settings.workspace_mb),
            'timing': 'inference_ms: CUDA events around execute_async_v3; host<->device copies and staging '
                      'are outside it (the pipeline books them as transfer_ms)',
            'cuda_bindings': self._cuda.name,
            'profile': f'{cached.key.settings.profile_min_hw}..{cached.key.settings.profile_max_hw} '
                       f'opt {cached.key.settings.profile_opt_hw}',
        })
        if self.prepared.note:
            facts['note'] = self.prepared.note
        return facts

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release()

    def _release(self) -> None:
        """Free what exists (also after a failed ``__init__``); never raises past the first error."""
        try:
            if self._stream is not None:
                self._cuda.stream_synchronize(self._stream)
        finally:
            for buffer in self._buffers.values():
                buffer.release()
            self._buffers = {}
            for event in self._events:
                self._cuda.event_destroy(event)
            self._events = []
            if self._stream is not None:
                self._cuda.stream_destroy(self._stream)
                self._stream = None
            self._context = None
            self._trt_engine = None
