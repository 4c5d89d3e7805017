"""``nitedr build-engine``: refuses cleanly without a GPU; with a faked device and TensorRT it provisions
the cache and reports what it did."""

from __future__ import annotations

import json

import pytest

from nitedr_ros.cli import main
from nitedr_ros.engines import cuda as cuda_module
from nitedr_ros.engines import engine_cache, tensorrt_engine, tensorrt_toolkit, tiny_models
from nitedr_ros.engines.cuda import CudaProbe, DeviceIdentity


class FakeToolkit:
    version = '10.16.1'
    builds = 0

    def __init__(self, verbose: bool = False) -> None:
        pass

    def build(self, onnx_path, settings, timing_cache):
        FakeToolkit.builds += 1
        return engine_cache.BuildOutput(b'PLAN:' + settings.precision.encode(), b'TIMING')

    def deserialize(self, plan):
        return object() if plan.startswith(b'PLAN:') else None


class FakeCuda:
    def set_device(self, index):
        pass


@pytest.fixture()
def model(tmp_path):
    return tiny_models.identity_model(tmp_path / 'cleannet_tiny.onnx')


def test_build_engine_refuses_without_a_cuda_device(capsys, tmp_path, model):
    if cuda_module.cuda_device_count() > 0:
        pytest.skip('a CUDA device is present')
    assert main(['build-engine', '--model', str(model), '--cache-dir', str(tmp_path / 'cache')]) == 2
    err = capsys.readouterr().err
    assert 'TensorRT needs CUDA device 0' in err
    assert not (tmp_path / 'cache').exists()


def test_build_engine_provisions_the_cache(capsys, tmp_path, model, monkeypatch):
    monkeypatch.setattr(tensorrt_engine, 'probe_cuda', lambda: CudaProbe(1, ''))
    monkeypatch.setattr(tensorrt_engine, 'device_identity', lambda index: DeviceIdentity('Fake GPU', (8, 7)))
    monkeypatch.setattr(tensorrt_toolkit, 'TensorRTToolkit', FakeToolkit)
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', FakeCuda)
    FakeToolkit.builds = 0
    argv = ['build-engine', '--model', str(model), '--cache-dir', str(tmp_path / 'cache'), '--json',
            '--precision', 'fp16', '--max-hw', '720,1280']
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first['source'] == 'built'
    assert first['key']['precision'] == 'fp32'  # no .fp16.onnx beside the model: fp32 build, said in the log
    assert first['key']['profile_max_hw'] == [720, 1280]
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second['source'] == 'cache' and second['engine'] == first['engine']
    assert main([*argv, '--force']) == 0
    assert json.loads(capsys.readouterr().out)['reason'] == 'forced rebuild'
    assert FakeToolkit.builds == 2


def test_build_engine_for_a_mode_uses_the_default_models(capsys, tmp_path, monkeypatch):
    models = tmp_path / 'models'
    tiny_models.identity_model(models / 'cleannet_realtime.onnx')
    tiny_models.blend_fusion_model(models / 'fusionnet_realtime.onnx')
    tiny_models.identity_model(models / 'fusionnet_realtime.fp16.onnx', 'fusionnet')
    monkeypatch.setenv('NITEDR_MODELS_DIR', str(models))
    monkeypatch.setattr(tensorrt_engine, 'probe_cuda', lambda: CudaProbe(1, ''))
    monkeypatch.setattr(tensorrt_engine, 'device_identity', lambda index: DeviceIdentity('Fake GPU', (8, 7)))
    monkeypatch.setattr(tensorrt_toolkit, 'TensorRTToolkit', FakeToolkit)
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', FakeCuda)
    assert main(['build-engine', '--mode', 'nitedr', '--cache-dir', str(tmp_path / 'cache'), '--json']) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_role = {line['role']: line for line in lines}
    assert set(by_role) == {'derain', 'fusion'}
    assert by_role['derain']['key']['onnx_name'] == 'cleannet_realtime.onnx'
    assert by_role['fusion']['key']['onnx_name'] == 'fusionnet_realtime.fp16.onnx'  # fp16 file preferred
    assert by_role['fusion']['key']['precision'] == 'fp16'
