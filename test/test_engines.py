"""Engines on CPU: ONNX Runtime, torch parity, identity, backend selection and the CUDA/TensorRT guards."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nitedr_ros.engines import cuda as cuda_module
from nitedr_ros.engines import open_engine, selection, tiny_models
from nitedr_ros.engines.cuda import CudaProbe
from nitedr_ros.engines.options import EngineOptions
from nitedr_ros.engines.tensorrt_engine import TensorRTEngine, prepare_engine
from nitedr_ros.engines.variants import Variant, choose_variant
from nitedr_ros.errors import BackendUnavailableError, ConfigError

NO_DEVICE = CudaProbe(0, 'cudaGetDeviceCount returned cudaErrorInsufficientDriver')


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp('models')
    tiny_models.channel_gain_model(folder / 'gain.onnx', (1.0, 0.5, 0.25), 0.1)
    tiny_models.identity_model(folder / 'stereo.onnx', 'stereoirr')
    return folder


def test_onnxruntime_cpu_runs_a_model(model_dir):
    engine = open_engine(model_dir / 'gain.onnx', EngineOptions('onnxruntime-cpu', threads=1))
    assert engine.backend == 'onnxruntime-cpu'
    assert engine.input_names == ('image',) and engine.output_names == ('derained',)
    assert engine.metadata['nitedr.network'] == 'cleannet' and engine.multiple_of == 8
    x = np.random.default_rng(0).random((1, 3, 24, 40), dtype=np.float32)
    out = engine.infer({'image': x})['derained']
    expected = x * np.array([1.0, 0.5, 0.25], np.float32).reshape(1, 3, 1, 1) + 0.1
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert engine.last_inference_ms > 0
    facts = engine.describe()
    assert facts['backend'] == 'onnxruntime-cpu' and facts['intra_op_threads'] == '1'
    engine.close()


def test_engine_input_errors(model_dir):
    engine = open_engine(model_dir / 'stereo.onnx', 'onnxruntime-cpu')
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ConfigError, match='engine input right missing'):
        engine.infer({'left': x})
    with pytest.raises(ConfigError, match='4-D NCHW'):
        engine.infer({'left': x, 'right': x[0]})
    out = engine.infer({'left': x.astype(np.float64), 'right': x + 1})  # converted to float32
    assert out['left_derained'].dtype == np.float32 and out['right_derained'].max() == 1.0


def test_missing_model_and_unknown_backend(tmp_path, model_dir):
    with pytest.raises(ConfigError, match='model file not found'):
        open_engine(tmp_path / 'absent.onnx', 'onnxruntime-cpu')
    with pytest.raises(ConfigError, match='unknown backend'):
        open_engine(model_dir / 'gain.onnx', 'openvino')
    with pytest.raises(ConfigError, match='precision must be one of'):
        open_engine(model_dir / 'gain.onnx', EngineOptions.make('onnxruntime-cpu', precision='int8'))
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'not a protobuf')
    with pytest.raises(ConfigError, match='cannot load'):
        open_engine(broken, 'onnxruntime-cpu')


def test_onnxruntime_cuda_refuses_cleanly_here(model_dir):
    if 'CUDAExecutionProvider' in selection_providers() and cuda_module.cuda_device_count() > 0:
        pytest.skip('a CUDA device is present')
    with pytest.raises(BackendUnavailableError):
        open_engine(model_dir / 'gain.onnx', 'onnxruntime-cuda')


def selection_providers() -> list[str]:
    from nitedr_ros.engines.onnxruntime_engine import available_providers

    return available_providers()


def test_auto_falls_back_to_onnxruntime_cpu_and_says_why(model_dir, monkeypatch, caplog):
    monkeypatch.setattr(selection, 'probe_cuda', lambda: NO_DEVICE)
    with caplog.at_level(logging.INFO, logger='nitedr_ros.engines'):
        engine = open_engine(model_dir / 'gain.onnx')
    assert engine.backend == 'onnxruntime-cpu'
    why = engine.describe()['why']
    assert 'no CUDA device: cudaGetDeviceCount returned cudaErrorInsufficientDriver' in why
    assert 'backend auto for gain.onnx: onnxruntime-cpu' in caplog.text


def test_auto_on_this_machine_explains_itself(model_dir):
    engine = open_engine(model_dir / 'gain.onnx', 'auto')
    if cuda_module.cuda_device_count() == 0:
        assert engine.backend == 'onnxruntime-cpu'
        assert 'no CUDA device' in engine.describe()['why']
    assert engine.describe()['why']


def test_auto_with_device_but_without_tensorrt(model_dir, monkeypatch):
    # Both probes faked, so no TensorRT object can be constructed even where tensorrt is installed.
    monkeypatch.setattr(selection, 'probe_cuda', lambda: CudaProbe(1, ''))
    monkeypatch.setattr(selection, 'tensorrt_importable', lambda: False)
    monkeypatch.setattr('nitedr_ros.engines.onnxruntime_engine.available_providers',
                        lambda: ['CPUExecutionProvider'])
    engine = open_engine(model_dir / 'gain.onnx')
    assert engine.backend == 'onnxruntime-cpu'
    assert 'tensorrt is not installed' in engine.describe()['why']
    assert 'no CUDAExecutionProvider' in engine.describe()['why']


def test_auto_survives_a_failing_tensorrt(model_dir, monkeypatch):
    monkeypatch.setattr(selection, 'probe_cuda', lambda: CudaProbe(1, ''))
    monkeypatch.setattr(selection, 'tensorrt_importable', lambda: True)
    real = selection._open_ort_at

    def fake_tensorrt(path, options):
        raise BackendUnavailableError('TensorRT cannot parse the model: TopK K >= 3840')

    def fake_ort(path, backend, options):
        if backend == 'onnxruntime-cuda':
            raise BackendUnavailableError('CUDAExecutionProvider is not in this onnxruntime build')
        return real(path, backend, options)

    monkeypatch.setattr(selection, '_open_tensorrt_at', fake_tensorrt)
    monkeypatch.setattr(selection, '_open_ort_at', fake_ort)
    monkeypatch.setattr('nitedr_ros.engines.onnxruntime_engine.available_providers',
                        lambda: ['CUDAExecutionProvider', 'CPUExecutionProvider'])
    engine = open_engine(model_dir / 'gain.onnx')
    assert engine.backend == 'onnxruntime-cpu'
    assert 'TensorRT failed: TensorRT cannot parse the model' in engine.describe()['why']


def test_tensorrt_refuses_without_a_cuda_device(model_dir, tmp_path):
    # Refuses before any TensorRT object exists (tensorrt is not even imported).
    with pytest.raises(BackendUnavailableError, match=r'no CUDA GPU found, and TensorRT needs one \(cuda'):
        TensorRTEngine(model_dir / 'gain.onnx', EngineOptions('tensorrt', cache_dir=str(tmp_path)),
                       probe=NO_DEVICE)
    with pytest.raises(BackendUnavailableError, match='no CUDA GPU found'):
        prepare_engine(model_dir / 'gain.onnx', EngineOptions('tensorrt'), probe=NO_DEVICE)
    assert list(tmp_path.iterdir()) == []


def test_tensorrt_backend_refuses_cleanly_on_this_machine(model_dir, tmp_path):
    if cuda_module.cuda_device_count() > 0:
        pytest.skip('a CUDA device is present')
    with pytest.raises(BackendUnavailableError, match='no CUDA GPU found'):
        open_engine(model_dir / 'gain.onnx', EngineOptions('tensorrt', cache_dir=str(tmp_path)))
    assert 'tensorrt' not in sys.modules


def test_cuda_probe_never_raises(monkeypatch):
    probe = cuda_module.probe_cuda()
    assert probe.count >= 0
    if probe.count == 0:
        assert probe.reason

    class Broken:
        class cudaError_t:  # noqa: N801 - mirrors the cuda-python name
            cudaSuccess = 0  # noqa: N815

        @staticmethod
        def cudaGetDeviceCount():
            raise OSError('libcudart.so: cannot open shared object file')

    import sys

    cuda_bindings = pytest.importorskip('cuda.bindings', reason='cuda-python not installed')
    monkeypatch.setattr(cuda_bindings, 'runtime', Broken, raising=False)
    monkeypatch.setitem(sys.modules, 'cuda.bindings.runtime', Broken)
    broken = cuda_module.probe_cuda()
    assert broken.count == 0 and 'libcudart.so' in broken.reason


def test_cuda_python_calls_fail_as_clear_errors_without_a_driver():
    if cuda_module.cuda_device_count() > 0:
        pytest.skip('a CUDA device is present')
    pytest.importorskip('cuda.bindings', reason='cuda-python not installed')
    runtime = cuda_module.cuda_runtime()
    assert runtime.name == 'cuda-python'
    for call, args in ((runtime.malloc, (1024,)), (runtime.stream_create, ()), (runtime.event_create, ()),
                       (runtime.host_array, ((4,), np.float32))):
        with pytest.raises(cuda_module.CudaError, match='failed: cudaError'):
            call(*args)


def test_the_variant_of_a_model_follows_precision_and_io(tmp_path):
    fp32 = tmp_path / 'cleannet_realtime.onnx'
    fp16 = tmp_path / 'cleannet_realtime.fp16.onnx'
    fp32.write_bytes(b'32')
    assert choose_variant(fp32, 'fp32') == Variant(fp32, 'float', 'fp32')
    chosen = choose_variant(fp32, 'fp16')
    assert (chosen.path, chosen.precision) == (fp32, 'fp32')
    assert 'cleannet_realtime.fp16.onnx not found' in chosen.note
    fp16.write_bytes(b'16')
    assert choose_variant(fp32, 'fp16') == Variant(fp16, 'float', 'fp16')
    assert choose_variant(fp16, 'fp32').path == fp16  # a path naming a variant is opened as it is
    u8 = tmp_path / 'cleannet_realtime.u8.onnx'
    u8_16 = tmp_path / 'cleannet_realtime.u8.fp16.onnx'
    u8.write_bytes(b'u8')
    u8_16.write_bytes(b'u8-16')
    assert choose_variant(fp32, 'fp32') == Variant(u8, 'uint8', 'fp32')  # auto: the uint8 I/O variant
    assert choose_variant(fp32, 'fp16') == Variant(u8_16, 'uint8', 'fp16')
    assert choose_variant(fp32, 'fp16', 'float') == Variant(fp16, 'float', 'fp16')
    fp32.unlink()
    fp16.unlink()
    with pytest.raises(ConfigError, match='no float I/O variant'):
        choose_variant(fp32, 'fp32', 'float')
    with pytest.raises(ConfigError):
        choose_variant(tmp_path / 'x.onnx', 'fp32')


def test_identity_engine():
    engine = open_engine('fusionnet_realtime.onnx', 'identity')
    assert engine.input_names == ('visible', 'infrared') and engine.output_names == ('fused',)
    x = np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32)
    out = engine.infer({'visible': x, 'infrared': x[:, :1]})
    np.testing.assert_array_equal(out['fused'], x)
    assert out['fused'] is not x


class TinyDerainer:
    """A small conv net with a global residual, built lazily so torch is imported only in these tests."""

    @staticmethod
    def build():
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                          nn.Conv2d(8, 8, 3, padding=1), nn.GELU(),
                                          nn.Conv2d(8, 3, 3, padding=1))

            def forward(self, image):
                return torch.clamp(image + self.body(image), 0.0, 1.0)

        torch.manual_seed(0)
        return Net().eval()


@pytest.fixture(scope='module')
def torch_model_and_onnx(tmp_path_factory):
    torch = pytest.importorskip('torch')
    torch.set_num_threads(1)
    model = TinyDerainer.build()
    path = tmp_path_factory.mktemp('torch') / 'cleannet_tiny.onnx'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(model, (torch.rand(1, 3, 32, 32),), str(path), input_names=['image'],
                          output_names=['derained'],
                          dynamic_axes={'image': {2: 'h', 3: 'w'}, 'derained': {2: 'h', 3: 'w'}},
                          opset_version=17, dynamo=False)
    return model, path


def test_onnxruntime_and_torch_agree_on_the_same_weights(torch_model_and_onnx):
    model, path = torch_model_and_onnx
    ort_engine = open_engine(path, EngineOptions('onnxruntime-cpu', threads=1))
    torch_engine = open_engine(model, EngineOptions('torch-cpu', threads=1, io='float'), network='cleannet')
    assert torch_engine.backend == 'torch-cpu'
    x = np.random.default_rng(2).random((1, 3, 40, 56), dtype=np.float32)
    a = ort_engine.infer({'image': x})['derained']
    b = torch_engine.infer({'image': x})['derained']
    assert a.shape == b.shape == x.shape
    assert float(np.abs(a - b).max()) <= 1e-3
    assert torch_engine.describe()['device'] == 'cpu'


def test_torch_backend_on_an_onnx_file_needs_its_weights_beside_it(torch_model_and_onnx):
    _, path = torch_model_and_onnx
    with pytest.raises(ConfigError, match='needs torch weights'):
        open_engine(path, 'torch-cpu')


def test_onnxruntime_float16_io_is_hidden_behind_float32(tmp_path):
    onnx = pytest.importorskip('onnx')
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, [1, 3, 'h', 'w'])
          for n in ('image', 'derained')]
    node = helper.make_node('Identity', ['image'], ['derained'])
    graph = helper.make_graph([node], 'half', [io[0]], [io[1]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    path = tmp_path / 'cleannet_half.fp16.onnx'
    onnx.save(model, str(path))
    engine = open_engine(path, 'onnxruntime-cpu')
    x = np.array([0.25, 0.5, 1.0 / 3.0], np.float32).reshape(1, 3, 1, 1)
    out = engine.infer({'image': x})['derained']
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_metadata_props_reader_needs_no_onnx_package(tmp_path, model_dir):
    from nitedr_ros.engines.onnx_info import read_metadata_props, read_model_info

    for name in ('gain.onnx', 'stereo.onnx'):
        assert read_metadata_props(model_dir / name) == read_model_info(model_dir / name).metadata
    for content in (b'not a protobuf', b'', b'\x0a\xff\xff\xff'):
        broken = tmp_path / 'broken.onnx'
        broken.write_bytes(content)
        with pytest.raises(ConfigError):
            read_metadata_props(broken)


@pytest.fixture(scope='module', params=['fusionnet', 'mspfn'])
def exported_network(request, tmp_path_factory):
    torch = pytest.importorskip('torch')
    from nitedr_ros.export.onnx_export import export_network
    from nitedr_ros.networks import build_network

    network = request.param
    torch.set_num_threads(1)
    torch.manual_seed(3)
    model = build_network(network, 'realtime').eval()
    with torch.no_grad():  # weights away from the identity start, so the comparison means something
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    path = tmp_path_factory.mktemp('real') / f'{network}_realtime.onnx'
    export_network(model, network, 'realtime', path, fp16=False, parity=False, trace_hw=(32, 32), threads=1)
    return network, model, path


def test_a_real_network_agrees_between_onnxruntime_at_its_default_level_and_torch(exported_network):
    """A realtime network exported, opened as the node opens it (ORT graph optimisation 'all', including
    the NCHWc layout the export's parity check leaves out) vs torch eager on the same weights."""
    from nitedr_ros.modelspec import get_spec

    network, model, path = exported_network
    spec = get_spec(network)
    ort_engine = open_engine(path, EngineOptions('onnxruntime-cpu', threads=1))
    assert ort_engine.describe()['graph_optimization'] == 'all'
    torch_engine = open_engine(model, EngineOptions('torch-cpu', threads=1, io='float'), network=network)
    rng = np.random.default_rng(4)
    feed = {t.name: rng.random((1, t.channels, 32, 40), dtype=np.float32) for t in spec.inputs}
    a = ort_engine.infer(feed)[spec.output_names[0]]
    b = torch_engine.infer(feed)[spec.output_names[0]]
    assert a.shape == b.shape == (1, 3, 32, 40)
    assert float(np.abs(b - feed[spec.input_names[0]]).max()) > 1e-2  # not an identity
    assert float(np.abs(a - b).max()) <= 1e-3


def test_a_gpu_id_beyond_the_devices_names_the_count():
    from nitedr_ros.engines.tensorrt_engine import require_cuda_device

    with pytest.raises(BackendUnavailableError, match=r'CUDA device 1, but only 1 CUDA device\(s\) exist'):
        require_cuda_device(1, CudaProbe(1, ''))
    assert require_cuda_device(0, CudaProbe(1, '')).count == 1
