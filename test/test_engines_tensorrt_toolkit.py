"""TensorRTToolkit (build, deserialize), the auto fallback on TensorRT failures, the ONNX Runtime provider
options and PyCUDA context handling, against fake ``tensorrt`` / ``pycuda`` modules in ``sys.modules``.

These check the calls this package makes and how it reacts to failures; what real TensorRT does with
them is not verified here (no GPU)."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from nitedr_ros.engines import open_engine, selection, tensorrt_engine, tiny_models
from nitedr_ros.engines.cuda import CudaProbe, DeviceIdentity
from nitedr_ros.engines.engine_cache import BuildSettings, EngineBuildError
from nitedr_ros.engines.options import EngineOptions
from nitedr_ros.engines.tensorrt_toolkit import TensorRTToolkit
from nitedr_ros.errors import BackendUnavailableError


class Recorder:
    """What the fake TensorRT objects were asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add(self, *call) -> None:
        self.calls.append(call)

    def named(self, name: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == name]


def fake_tensorrt(record: Recorder, *, strongly_typed: bool = True, parse_errors: tuple[str, ...] = (),
                  builder_error: Exception | None = None, runtime_error: Exception | None = None,
                  plan: bytes | None = b'PLAN', bad_cache: bytes = b'BAD', inputs=None) -> types.ModuleType:
    """A module with the tensorrt names TensorRTToolkit uses."""
    trt = types.ModuleType('tensorrt')
    trt.__version__ = '10.16.1'
    inputs = inputs or [('image', (-1, 3, -1, -1)), ('mask', (1, 1, 64, 96))]

    class Logger:
        WARNING, VERBOSE = 'warning', 'verbose'

        def __init__(self, level):
            record.add('logger', level)

    flags = type('NetworkDefinitionCreationFlag', (), {'STRONGLY_TYPED': 5} if strongly_typed else {})
    trt.Logger = Logger
    trt.NetworkDefinitionCreationFlag = flags
    trt.MemoryPoolType = type('MemoryPoolType', (), {'WORKSPACE': 'workspace'})
    trt.init_libnvinfer_plugins = lambda logger, namespace: record.add('plugins')

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    class Network:
        num_inputs = len(inputs)

        def get_input(self, index):
            return Tensor(*inputs[index])

    class Profile:
        def set_shape(self, name, low, opt, high):
            record.add('set_shape', name, low, opt, high)

    class TimingCache:
        def __init__(self, blob):
            self.blob = blob

        def serialize(self):
            return b'SERIALIZED:' + self.blob

    class Config:
        def set_memory_pool_limit(self, pool, size):
            record.add('memory_pool_limit', pool, size)

        @property
        def builder_optimization_level(self):
            return None

        @builder_optimization_level.setter
        def builder_optimization_level(self, level):
            record.add('optimization_level', level)

        def add_optimization_profile(self, profile):
            record.add('add_profile')

        def create_timing_cache(self, blob):
            record.add('create_timing_cache', bytes(blob))
            if blob == bad_cache:
                return None  # what TensorRT does with a blob it cannot read
            if blob == b'RAISE':
                raise RuntimeError('timing cache version mismatch')
            self.cache = TimingCache(bytes(blob))
            return self.cache

        def set_timing_cache(self, cache, ignore_mismatch):
            assert cache is not None, 'set_timing_cache(None) raises TypeError in TensorRT'
            record.add('set_timing_cache', cache.blob, ignore_mismatch)
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            if builder_error is not None:
                raise builder_error
            record.add('builder')

        def create_network(self, flag_bits):
            record.add('create_network', flag_bits)
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record.add('build')
            return plan

    class Parser:
        def __init__(self, network, logger):
            self.num_errors = len(parse_errors)

        def parse_from_file(self, path):
            record.add('parse', path)
            return not parse_errors

        def get_error(self, index):
            return parse_errors[index]

    class Runtime:
        def __init__(self, logger):
            if runtime_error is not None:
                raise runtime_error
            record.add('runtime')

        def deserialize_cuda_engine(self, blob):
            if blob == b'CORRUPT':
                raise RuntimeError('serialization assertion failed')
            return ('engine', bytes(blob))

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, Parser, Runtime
    return trt


def toolkit_with(monkeypatch, **kwargs) -> tuple[TensorRTToolkit, Recorder]:
    record = Recorder()
    monkeypatch.setitem(__import__('sys').modules, 'tensorrt', fake_tensorrt(record, **kwargs))
    return TensorRTToolkit(), record


SETTINGS = BuildSettings('fp16', (64, 96), (360, 640), (720, 1280), workspace_mb=2048, optimization_level=5)


def test_build_sets_strong_typing_profile_workspace_level_and_timing_cache(monkeypatch, tmp_path):
    toolkit, record = toolkit_with(monkeypatch)
    output = toolkit.build(tmp_path / 'model.fp16.onnx', SETTINGS, b'PREVIOUS')
    assert output.plan == b'PLAN'
    assert record.named('create_network') == [('create_network', 1 << 5)]
    assert record.named('parse') == [('parse', str(tmp_path / 'model.fp16.onnx'))]
    assert record.named('memory_pool_limit') == [('memory_pool_limit', 'workspace', 2048 << 20)]
    assert record.named('optimization_level') == [('optimization_level', 5)]
    assert record.named('set_shape') == [  # one profile entry per input: dynamic axes from the settings
        ('set_shape', 'image', (1, 3, 64, 96), (1, 3, 360, 640), (1, 3, 720, 1280)),
        ('set_shape', 'mask', (1, 1, 64, 96), (1, 1, 64, 96), (1, 1, 64, 96)),
    ]
    assert record.named('add_profile') == [('add_profile',)]
    assert record.named('create_timing_cache') == [('create_timing_cache', b'PREVIOUS')]
    assert record.named('set_timing_cache') == [('set_timing_cache', b'PREVIOUS', False)]
    assert output.timing_cache == b'SERIALIZED:PREVIOUS'  # round trip: what the next build gets


def test_tensorrt_11_without_the_strongly_typed_flag(monkeypatch, tmp_path):
    toolkit, record = toolkit_with(monkeypatch, strongly_typed=False)
    toolkit.build(tmp_path / 'model.onnx', SETTINGS, None)
    assert record.named('create_network') == [('create_network', 0)]
    assert record.named('create_timing_cache') == [('create_timing_cache', b'')]


@pytest.mark.parametrize('blob', [b'BAD', b'RAISE'])
def test_an_unreadable_timing_cache_builds_with_an_empty_one(monkeypatch, tmp_path, blob):
    toolkit, record = toolkit_with(monkeypatch)
    output = toolkit.build(tmp_path / 'model.onnx', SETTINGS, blob)
    assert [c[1] for c in record.named('create_timing_cache')] == [blob, b'']
    assert record.named('set_timing_cache') == [('set_timing_cache', b'', False)]
    assert output.timing_cache == b'SERIALIZED:'


def test_parser_errors_are_named(monkeypatch, tmp_path):
    toolkit, _ = toolkit_with(monkeypatch, parse_errors=('node TopK_3: K 4096 exceeds 3840',
                                                         'node Unique_7: unsupported'))
    expected = r'cannot parse .*model\.onnx: node TopK_3: K 4096 exceeds 3840; node Unique_7: unsupported'
    with pytest.raises(EngineBuildError, match=expected):
        toolkit.build(tmp_path / 'model.onnx', SETTINGS, None)


@pytest.mark.parametrize('error', [TypeError('pybind11::init(): factory function returned nullptr'),
                                   RuntimeError('CUDA out of memory')])
def test_any_tensorrt_exception_becomes_an_engine_build_error(monkeypatch, tmp_path, error):
    toolkit, _ = toolkit_with(monkeypatch, builder_error=error)
    with pytest.raises(EngineBuildError) as info:
        toolkit.build(tmp_path / 'model.onnx', SETTINGS, None)
    assert str(error) in str(info.value) and type(error).__name__ in str(info.value)
    assert isinstance(info.value, BackendUnavailableError)  # what backend auto falls back on


def test_no_plan_is_an_engine_build_error(monkeypatch, tmp_path):
    toolkit, _ = toolkit_with(monkeypatch, plan=None)
    with pytest.raises(EngineBuildError, match='returned nothing'):
        toolkit.build(tmp_path / 'model.onnx', SETTINGS, None)


def test_deserialize(monkeypatch):
    toolkit, record = toolkit_with(monkeypatch)
    assert toolkit.deserialize(b'PLAN') == ('engine', b'PLAN')
    assert toolkit.deserialize(b'CORRUPT') is None  # the cache rebuilds
    assert record.named('runtime') == [('runtime',)]  # one runtime for every plan
    broken, _ = toolkit_with(monkeypatch, runtime_error=TypeError('factory function returned nullptr'))
    with pytest.raises(EngineBuildError, match='creating the TensorRT runtime: TypeError: factory function'):
        broken.deserialize(b'PLAN')


def test_a_tensorrt_that_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'tensorrt', None)
    with pytest.raises(BackendUnavailableError, match='tensorrt is not importable'):
        TensorRTToolkit()


class NoCopies:
    def set_device(self, index):
        pass


@pytest.mark.parametrize('failure', ['builder', 'parser'])
def test_auto_falls_back_to_onnxruntime_when_tensorrt_fails(monkeypatch, tmp_path, failure):
    record = Recorder()
    kwargs = ({'builder_error': RuntimeError('std::bad_alloc: out of memory')} if failure == 'builder'
              else {'parse_errors': ('node GridSample_2: 5-D input',)})
    monkeypatch.setitem(__import__('sys').modules, 'tensorrt', fake_tensorrt(record, **kwargs))
    for module in (selection, tensorrt_engine):
        monkeypatch.setattr(module, 'probe_cuda', lambda: CudaProbe(1, ''))
    monkeypatch.setattr(selection, 'tensorrt_importable', lambda: True)
    monkeypatch.setattr(tensorrt_engine, 'device_identity', lambda index: DeviceIdentity('Fake GPU', (8, 7)))
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', NoCopies)
    monkeypatch.setattr('nitedr_ros.engines.onnxruntime_engine.available_providers',
                        lambda: ['CPUExecutionProvider'])
    model = tiny_models.identity_model(tmp_path / 'cleannet_tiny.onnx')
    engine = open_engine(model, EngineOptions('auto', cache_dir=str(tmp_path / 'cache')))
    assert engine.backend == 'onnxruntime-cpu'
    why = engine.describe()['why']
    expected = 'out of memory' if failure == 'builder' else 'GridSample_2: 5-D input'
    assert 'TensorRT failed: ' in why and expected in why
    out = engine.infer({'image': np.ones((1, 3, 8, 8), np.float32)})['derained']
    assert out.shape == (1, 3, 8, 8)
    assert not list((tmp_path / 'cache').glob('*.engine'))


def test_onnxruntime_tensorrt_provider_options(tmp_path):
    from nitedr_ros.engines.onnxruntime_engine import OnnxRuntimeEngine

    model = tiny_models.blend_fusion_model(tmp_path / 'fusionnet_tiny.onnx')
    options = EngineOptions.make('onnxruntime-tensorrt', precision='fp16', cache_dir=str(tmp_path / 'cache'),
                                 device_index=1, profile_min_hw=(64, 96), profile_opt_hw=(360, 640),
                                 profile_max_hw=(720, 1280), workspace_mb=2048, optimization_level=5)
    providers = OnnxRuntimeEngine._providers('TensorrtExecutionProvider', options, model)
    (name, options), cuda, cpu = providers
    assert name == 'TensorrtExecutionProvider'
    assert cuda == ('CUDAExecutionProvider', {'device_id': 1}) and cpu == 'CPUExecutionProvider'
    assert options['device_id'] == 1
    assert 'trt_fp16_enable' not in options  # precision comes from the .fp16.onnx file (TensorRT 11)
    assert options['trt_profile_min_shapes'] == 'visible:1x3x64x96,infrared:1x1x64x96'
    assert options['trt_profile_opt_shapes'] == 'visible:1x3x360x640,infrared:1x1x360x640'
    assert options['trt_profile_max_shapes'] == 'visible:1x3x720x1280,infrared:1x1x720x1280'
    assert options['trt_max_workspace_size'] == 2048 << 20 and options['trt_builder_optimization_level'] == 5
    assert options['trt_engine_cache_enable'] is True
    assert Path(options['trt_engine_cache_path']) == tmp_path / 'cache' / 'onnxruntime-trt'
    assert (tmp_path / 'cache' / 'onnxruntime-trt').is_dir()
    cpu_only = OnnxRuntimeEngine._providers('CPUExecutionProvider', EngineOptions(), model)
    assert cpu_only == ['CPUExecutionProvider']
    assert OnnxRuntimeEngine._providers('CUDAExecutionProvider', EngineOptions(device_index=2), model) == [
        ('CUDAExecutionProvider', {'device_id': 2}), 'CPUExecutionProvider']


@pytest.mark.parametrize('backend,expected', [('onnxruntime-tensorrt', 'cleannet_tiny.fp16.onnx'),
                                              ('onnxruntime-cuda', 'cleannet_tiny.fp16.onnx'),
                                              ('onnxruntime-cpu', 'cleannet_tiny.onnx')])
def test_gpu_providers_get_the_fp16_file_for_fp16(monkeypatch, tmp_path, backend, expected):
    tiny_models.identity_model(tmp_path / 'cleannet_tiny.onnx')
    tiny_models.identity_model(tmp_path / 'cleannet_tiny.fp16.onnx')
    opened = {}

    class Recording:
        def __init__(self, path, backend, options):
            opened.update(path=Path(path), options=options)
            self.selection_reason = ''

    monkeypatch.setattr('nitedr_ros.engines.onnxruntime_engine.OnnxRuntimeEngine', Recording)
    open_engine(tmp_path / 'cleannet_tiny.onnx',
                EngineOptions.make(backend, precision='fp16', optimization_level=4, workspace_mb=512))
    assert opened['path'].name == expected
    assert opened['options'].build.optimization_level == 4 and opened['options'].build.workspace_mb == 512


def fake_pycuda(monkeypatch) -> list:
    """A pycuda.driver whose contexts live on one stack (a thread's current context)."""
    stack: list = []
    driver = types.ModuleType('pycuda.driver')

    class Context:
        def __init__(self, index):
            self.handle = 1000 + index

        def push(self):
            stack.append(self)

        def pop(self):
            stack.pop()

        @staticmethod
        def get_current():
            return stack[-1] if stack else None

    class Device:
        def __init__(self, index):
            self.index = index

        def retain_primary_context(self):
            return Context(self.index)

    driver.init = lambda: None
    driver.Device, driver.Context = Device, Context
    package = types.ModuleType('pycuda')
    package.driver = driver
    monkeypatch.setitem(__import__('sys').modules, 'pycuda', package)
    monkeypatch.setitem(__import__('sys').modules, 'pycuda.driver', driver)
    return stack


def test_pycuda_pushes_a_context_only_when_it_is_not_current(monkeypatch):
    from nitedr_ros.engines.cuda import PyCudaRuntime

    stack = fake_pycuda(monkeypatch)
    runtime = PyCudaRuntime()
    for _ in range(5):  # what infer() does per frame on device 1
        runtime.set_device(1)
    assert len(stack) == 1 and stack[0].handle == 1001
    stack.append(type(stack[0])(3))  # another library made its own context current
    runtime.set_device(1)
    assert len(stack) == 3 and stack[-1].handle == 1001
    runtime.set_device(0)
    assert stack[-1].handle == 1000
    runtime.stream_destroy(None)
    assert stack[-1].handle == 1001  # popped only its own current context
