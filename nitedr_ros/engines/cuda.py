"""CUDA through cuda-python (``cuda.bindings.runtime``), PyCUDA only where cuda-python is missing.

:func:`cuda_device_count` is the guard every TensorRT path calls before constructing any TensorRT object:
without a device TensorRT aborts or segfaults, while ``cudaGetDeviceCount`` safely returns an error code
(``cudaErrorInsufficientDriver`` without a driver). Any exception counts as no device.

:class:`CudaRuntime` is the small set of runtime calls the TensorRT engine needs (device memory, pinned
host memory, a stream, events); :func:`cuda_runtime` picks the implementation.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError


@dataclass(frozen=True)
class CudaProbe:
    """Result of asking the CUDA runtime for devices: the count and, when zero, why."""

    count: int
    reason: str


@dataclass(frozen=True)
class DeviceIdentity:
    """What a TensorRT engine is specific to: the GPU model and its compute capability."""

    name: str
    compute_capability: tuple[int, int]
    total_memory_mb: int = 0

    @property
    def sm(self) -> str:
        return f'{self.compute_capability[0]}{self.compute_capability[1]}'


def probe_cuda() -> CudaProbe:
    """Count CUDA devices without ever raising; the reason names the failure when there are none."""
    try:
        from cuda.bindings import runtime as cudart
    except Exception as exc:  # noqa: BLE001 - cuda-python missing or broken: treat as no device
        try:
            import pycuda.driver as pycuda_driver

            pycuda_driver.init()
            count = pycuda_driver.Device.count()
            return CudaProbe(count, '' if count else 'PyCUDA reports 0 CUDA devices')
        except Exception:  # noqa: BLE001 - no PyCUDA or no driver
            return CudaProbe(0, f'cuda-python is not importable ({exc.__class__.__name__}: {exc})')
    try:
        err, count = cudart.cudaGetDeviceCount()
        if err != cudart.cudaError_t.cudaSuccess:
            return CudaProbe(0, f'cudaGetDeviceCount returned {_error_name(cudart, err)}')
        count = int(count or 0)
        return CudaProbe(count, '' if count else 'cudaGetDeviceCount reports 0 CUDA devices')
    except Exception as exc:  # noqa: BLE001 - any failure means no usable device
        return CudaProbe(0, f'cudaGetDeviceCount failed ({exc.__class__.__name__}: {exc})')


def cuda_device_count() -> int:
    """Number of usable CUDA devices; 0 on any error (no driver, no cuda-python)."""
    return probe_cuda().count


def device_identity(index: int = 0) -> DeviceIdentity:
    """Name and compute capability of a device; call only after :func:`cuda_device_count` is positive."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        import pycuda.driver as pycuda_driver

        pycuda_driver.init()
        dev = pycuda_driver.Device(index)
        return DeviceIdentity(dev.name(), dev.compute_capability(), dev.total_memory() // (1 << 20))
    err, props = cudart.cudaGetDeviceProperties(index)
    if err != cudart.cudaError_t.cudaSuccess:
        raise BackendUnavailableError(f'cudaGetDeviceProperties({index}) returned {_error_name(cudart, err)}')
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b'\0', 1)[0].decode(errors='replace')
    return DeviceIdentity(str(name), (int(props.major), int(props.minor)), int(props.totalGlobalMem) >> 20)


def _error_name(cudart: Any, err: Any) -> str:
    try:
        _ok, name = cudart.cudaGetErrorName(err)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - naming an error must never fail
        return str(err)


class CudaError(BackendUnavailableError):
    """A CUDA runtime call failed."""


class CudaRuntime:
    """Device memory, pinned host memory, one stream and timing events (interface)."""

    name = ''

    def set_device(self, index: int) -> None:
        raise NotImplementedError

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, ptr: int) -> None:
        raise NotImplementedError

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, object]:
        """A pinned host array and the handle to free it with :meth:`free_host`."""
        raise NotImplementedError

    def free_host(self, handle: object) -> None:
        raise NotImplementedError

    def stream_create(self) -> Any:
        raise NotImplementedError

    def stream_handle(self, stream: Any) -> int:
        raise NotImplementedError

    def stream_synchronize(self, stream: Any) -> None:
        raise NotImplementedError

    def stream_destroy(self, stream: Any) -> None:
        raise NotImplementedError

    def copy_to_device_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        raise NotImplementedError

    def copy_to_host_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        raise NotImplementedError

    def event_create(self) -> Any:
        raise NotImplementedError

    def event_record(self, event: Any, stream: Any) -> None:
        raise NotImplementedError

    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events (waits for ``end``)."""
        raise NotImplementedError

    def event_destroy(self, event: Any) -> None:
        raise NotImplementedError


class CudaPythonRuntime(CudaRuntime):
    """:class:`CudaRuntime` on ``cuda.bindings.runtime``: every call returns ``(error, value...)``."""

    name = 'cuda-python'

    def __init__(self) -> None:
        from cuda.bindings import runtime as cudart

        self._rt = cudart

    def _check(self, result: tuple[Any, ...], call: str) -> Any:
        err, *values = result
        if err != self._rt.cudaError_t.cudaSuccess:
            raise CudaError(f'{call} failed: {_error_name(self._rt, err)}')
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def set_device(self, index: int) -> None:
        self._check(self._rt.cudaSetDevice(index), 'cudaSetDevice')

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(max(1, nbytes)), 'cudaMalloc'))

    def free(self, ptr: int) -> None:
        self._check(self._rt.cudaFree(ptr), 'cudaFree')

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, object]:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        ptr = int(self._check(self._rt.cudaMallocHost(max(1, nbytes)), 'cudaMallocHost'))
        raw = (ctypes.c_byte * max(1, nbytes)).from_address(ptr)
        array = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        return array, ptr

    def free_host(self, handle: object) -> None:
        self._check(self._rt.cudaFreeHost(handle), 'cudaFreeHost')

    def stream_create(self) -> Any:
        return self._check(self._rt.cudaStreamCreate(), 'cudaStreamCreate')

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_synchronize(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamSynchronize(stream), 'cudaStreamSynchronize')

    def stream_destroy(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamDestroy(stream), 'cudaStreamDestroy')

    def copy_to_device_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        result = self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream)
        self._check(result, 'cudaMemcpyAsync')

    def copy_to_host_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        result = self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream)
        self._check(result, 'cudaMemcpyAsync')

    def event_create(self) -> Any:
        return self._check(self._rt.cudaEventCreate(), 'cudaEventCreate')

    def event_record(self, event: Any, stream: Any) -> None:
        self._check(self._rt.cudaEventRecord(event, stream), 'cudaEventRecord')

    def elapsed_ms(self, start: Any, end: Any) -> float:
        self._check(self._rt.cudaEventSynchronize(end), 'cudaEventSynchronize')
        return float(self._check(self._rt.cudaEventElapsedTime(start, end), 'cudaEventElapsedTime'))

    def event_destroy(self, event: Any) -> None:
        self._check(self._rt.cudaEventDestroy(event), 'cudaEventDestroy')


class PyCudaRuntime(CudaRuntime):
    """:class:`CudaRuntime` on PyCUDA, used only when cuda-python is missing.

    Pushes the device's primary context, the one the CUDA runtime (and so TensorRT) uses.
    """

    name = 'pycuda'

    def __init__(self) -> None:
        import pycuda.driver as drv

        drv.init()
        self._drv = drv
        self._context = None
        self._index: int | None = None
        self._allocations: dict[int, Any] = {}

    def _is_current(self) -> bool:
        try:
            current = self._drv.Context.get_current()
        except Exception:  # noqa: BLE001 - no context at all
            return False
        if current is None or self._context is None:
            return False
        return getattr(current, 'handle', current) == getattr(self._context, 'handle', self._context)

    def set_device(self, index: int) -> None:
        """Make the device's primary context current on this thread; pushes only when it is not already."""
        if self._index == index and self._is_current():
            return
        if self._context is None or self._index != index:
            self._context = self._drv.Device(index).retain_primary_context()
            self._index = index
        self._context.push()

    def malloc(self, nbytes: int) -> int:
        allocation = self._drv.mem_alloc(max(1, nbytes))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, object]:
        array = self._drv.pagelocked_empty(shape, dtype)
        return array, array

    def free_host(self, handle: object) -> None:
        base = getattr(handle, 'base', None)
        if base is not None and hasattr(base, 'free'):
            base.free()

    def stream_create(self) -> Any:
        return self._drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        if self._context is not None and self._is_current():
            self._context.pop()
        self._context = None
        self._index = None

    def copy_to_device_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._drv.memcpy_htod_async(dst, src, stream)

    def copy_to_host_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._drv.memcpy_dtoh_async(dst, src, stream)

    def event_create(self) -> Any:
        return self._drv.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        pass


def cuda_runtime() -> CudaRuntime:
    """cuda-python when importable, else PyCUDA, else :class:`BackendUnavailableError`."""
    try:
        return CudaPythonRuntime()
    except ImportError as first:
        try:
            return PyCudaRuntime()
        except ImportError:
            raise BackendUnavailableError(
                f'TensorRT needs cuda-python (pip install cuda-python) or PyCUDA for device buffers: '
                f'{first}') from None
