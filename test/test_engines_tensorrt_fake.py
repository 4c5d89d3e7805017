"""TensorRTEngine's run path (named tensors, buffers, copies, CUDA-event timing) against fake TensorRT and
CUDA objects that emulate device memory in host bytes. What real TensorRT does is not verified here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nitedr_ros.engines import tensorrt_engine, tiny_models
from nitedr_ros.engines.cuda import CudaRuntime, DeviceIdentity
from nitedr_ros.engines.engine_cache import CachedEngine, EngineKey
from nitedr_ros.engines.options import BuildSettings, EngineOptions
from nitedr_ros.errors import ConfigError


class FakeCuda(CudaRuntime):
    name = 'fake-cuda'

    def __init__(self) -> None:
        self.memory: dict[int, bytearray] = {}
        self.next_ptr = 0x1000
        self.freed: list[int] = []
        self.streams = 0

    def set_device(self, index):
        pass

    def malloc(self, nbytes):
        ptr = self.next_ptr
        self.next_ptr += nbytes + 256
        self.memory[ptr] = bytearray(nbytes)
        return ptr

    def free(self, ptr):
        self.freed.append(ptr)
        del self.memory[ptr]

    def host_array(self, shape, dtype):
        array = np.empty(shape, dtype)
        return array, array

    def free_host(self, handle):
        pass

    def stream_create(self):
        self.streams += 1
        return 'stream'

    def stream_handle(self, stream):
        return 77

    def stream_synchronize(self, stream):
        pass

    def stream_destroy(self, stream):
        self.streams -= 1

    def copy_to_device_async(self, dst, src, stream):
        self.memory[dst][:src.nbytes] = src.tobytes()

    def copy_to_host_async(self, dst, src, stream):
        dst[...] = np.frombuffer(bytes(self.memory[src][:dst.nbytes]), dst.dtype).reshape(dst.shape)

    def event_create(self):
        return object()

    def event_record(self, event, stream):
        pass

    def elapsed_ms(self, start, end):
        return 2.5

    def event_destroy(self, event):
        pass


class FakeTrt:
    """The few tensorrt names the engine uses."""

    class TensorIOMode:
        INPUT = 'input'
        OUTPUT = 'output'

    float16 = 'half'
    float32 = 'float'

    @staticmethod
    def nptype(dtype):
        return {'half': np.float16, 'float': np.float32}[dtype]


class FakeContext:
    """Doubles its input; checks every address and shape was set before running."""

    def __init__(self, engine: FakeTrtEngine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.streams: list[int] = []

    def set_input_shape(self, name, shape):
        low, _, high = self.engine.profile
        if not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shapes['image']

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def execute_async_v3(self, stream):
        self.streams.append(stream)
        memory = self.engine.cuda.memory
        shape = self.shapes['image']
        count = int(np.prod(shape))
        source = np.frombuffer(bytes(memory[self.addresses['image']][:count * self.engine.itemsize]),
                               self.engine.np_dtype)
        result = (source * 2).astype(self.engine.np_dtype)
        memory[self.addresses['derained']][:result.nbytes] = result.tobytes()
        return True


class FakeTrtEngine:
    def __init__(self, cuda: FakeCuda, io_dtype: str, profile) -> None:
        self.cuda = cuda
        self.io_dtype = io_dtype
        self.np_dtype = FakeTrt.nptype(io_dtype)
        self.itemsize = np.dtype(self.np_dtype).itemsize
        self.profile = profile
        self.num_io_tensors = 2
        self.context = None

    def get_tensor_name(self, index):
        return ('image', 'derained')[index]

    def get_tensor_mode(self, name):
        return FakeTrt.TensorIOMode.INPUT if name == 'image' else FakeTrt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return self.io_dtype

    def get_tensor_profile_shape(self, name, profile_index):
        return self.profile

    def create_execution_context(self):
        self.context = FakeContext(self)
        return self.context


def open_fake(tmp_path: Path, monkeypatch, io_dtype: str = 'float',
              profile=((1, 3, 8, 8), (1, 3, 64, 64), (1, 3, 128, 128))):
    cuda = FakeCuda()
    trt_engine = FakeTrtEngine(cuda, io_dtype, profile)
    onnx_path = tiny_models.identity_model(tmp_path / 'cleannet_tiny.onnx')
    key = EngineKey('cleannet_tiny.onnx', '0' * 64, '10.16.1', 'Fake GPU', '8.7',
                    BuildSettings('fp16', (8, 8), (64, 64), (128, 128), 1024, 3))
    toolkit = type('Toolkit', (), {'trt': FakeTrt, 'version': '10.16.1'})()
    prepared = tensorrt_engine.PreparedEngine(
        CachedEngine(trt_engine, tmp_path / 'x.engine', key, 'cache', 'cached engine matches the key'),
        toolkit, DeviceIdentity('Fake GPU', (8, 7)), onnx_path, 'fp16', '')
    monkeypatch.setattr(tensorrt_engine, 'prepare_engine', lambda *a, **k: prepared)
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', lambda: cuda)
    engine = tensorrt_engine.TensorRTEngine(onnx_path, EngineOptions('tensorrt'))
    return engine, cuda, trt_engine


@pytest.mark.parametrize('io_dtype', ['float', 'half'])
def test_named_tensor_run(tmp_path, monkeypatch, io_dtype):
    engine, cuda, trt_engine = open_fake(tmp_path, monkeypatch, io_dtype)
    assert engine.input_names == ('image',) and engine.output_names == ('derained',)
    assert engine.limits.minimum == (8, 8) and engine.limits.maximum == (128, 128)
    for shape in ((1, 3, 16, 24), (1, 3, 40, 32), (1, 3, 8, 8)):  # buffers grow, then get reused
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        out = engine.infer({'image': x})['derained']
        assert out.dtype == np.float32 and out.shape == shape
        np.testing.assert_allclose(out, 2 * x, rtol=1e-3 if io_dtype == 'half' else 1e-6)
        assert engine.last_inference_ms == 2.5
    assert trt_engine.context.streams == [77, 77, 77]
    facts = engine.describe()
    assert facts['backend'] == 'tensorrt' and facts['engine_source'] == 'cache'
    assert facts['cuda_bindings'] == 'fake-cuda' and facts['gpu'] == 'Fake GPU'
    engine.close()
    assert cuda.memory == {} and cuda.streams == 0
    engine.close()  # idempotent


def test_output_is_a_copy_not_the_reused_buffer(tmp_path, monkeypatch):
    engine, _, _ = open_fake(tmp_path, monkeypatch)
    first = engine.infer({'image': np.ones((1, 3, 8, 8), np.float32)})['derained']
    engine.infer({'image': np.zeros((1, 3, 8, 8), np.float32)})
    assert first.max() == 2.0


def test_shape_outside_the_profile_is_refused(tmp_path, monkeypatch):
    engine, _, _ = open_fake(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match='outside the engine profile'):
        engine.infer({'image': np.zeros((1, 3, 256, 256), np.float32)})


def test_fixed_profile_reports_a_fixed_size(tmp_path, monkeypatch):
    engine, _, _ = open_fake(tmp_path, monkeypatch, profile=((1, 3, 64, 64),) * 3)
    assert engine.limits.fixed == (64, 64)


class FailingEventCuda(FakeCuda):
    """The second event cannot be created (out of resources)."""

    def __init__(self) -> None:
        super().__init__()
        self.events = 0
        self.destroyed_events = 0

    def event_create(self):
        self.events += 1
        if self.events == 2:
            from nitedr_ros.engines.cuda import CudaError

            raise CudaError('cudaEventCreate failed: cudaErrorMemoryAllocation')
        return object()

    def event_destroy(self, event):
        self.destroyed_events += 1


def test_a_failed_setup_releases_what_it_created(tmp_path, monkeypatch):
    from nitedr_ros.errors import BackendUnavailableError

    cuda = FailingEventCuda()
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', lambda: cuda)
    engine, _, _ = open_fake(tmp_path, monkeypatch)  # a working one first: the fixture's own fake
    engine.close()
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', lambda: cuda)
    prepared = engine.prepared
    monkeypatch.setattr(tensorrt_engine, 'prepare_engine', lambda *a, **k: prepared)
    with pytest.raises(BackendUnavailableError, match='cudaErrorMemoryAllocation'):
        tensorrt_engine.TensorRTEngine(prepared.onnx_path, EngineOptions('tensorrt'))
    assert cuda.streams == 0  # the stream was destroyed
    assert cuda.destroyed_events == 1  # and the one event that existed


def test_a_tensorrt_exception_in_setup_is_an_engine_build_error(tmp_path, monkeypatch):
    from nitedr_ros.engines.engine_cache import EngineBuildError

    engine, cuda, trt_engine = open_fake(tmp_path, monkeypatch)
    engine.close()

    def no_context():
        raise TypeError('pybind11::init(): factory function returned nullptr')

    trt_engine.create_execution_context = no_context
    prepared = engine.prepared
    with pytest.raises(EngineBuildError, match=r'execution context .*factory function returned nullptr'):
        tensorrt_engine.TensorRTEngine(prepared.onnx_path, EngineOptions('tensorrt'))
    assert cuda.streams == 0 and cuda.memory == {}


def test_metadata_of_an_engine_file_without_its_onnx_comes_from_the_sidecar(tmp_path, monkeypatch):
    engine, _, _ = open_fake(tmp_path, monkeypatch)
    engine.close()
    prepared = engine.prepared
    prepared.onnx_path = None
    prepared.cached.source = 'file'
    prepared.cached.sidecar = {'onnx_metadata': {'nitedr.network': 'stereoirr', 'nitedr.multiple_of': '16'}}
    plan_file = EngineOptions('tensorrt', engine_file=str(tmp_path / 'x.engine'))
    plan_only = tensorrt_engine.TensorRTEngine('stereoirr_realtime.onnx', plan_file)
    assert plan_only.metadata['nitedr.network'] == 'stereoirr' and plan_only.multiple_of == 16
    assert plan_only.describe()['model'] == str(tmp_path / 'x.engine')
    prepared.cached.sidecar = {}  # no sidecar at all: the network from the file name
    bare = tensorrt_engine.TensorRTEngine('mspfn_realtime.onnx', plan_file)
    assert bare.metadata['nitedr.network'] == 'mspfn' and bare.multiple_of == 8


def test_metadata_is_read_without_onnx_or_onnxruntime(tmp_path, monkeypatch):
    import sys

    engine, _, _ = open_fake(tmp_path, monkeypatch)
    engine.close()
    monkeypatch.setitem(sys.modules, 'onnx', None)
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    again = tensorrt_engine.TensorRTEngine(engine.prepared.onnx_path, EngineOptions('tensorrt'))
    assert again.metadata['nitedr.network'] == 'cleannet' and again.metadata['nitedr.multiple_of'] == '8'
    facts = again.describe()
    assert 'transfer_ms' in facts['timing'] and facts['optimization_level'] == '3'
