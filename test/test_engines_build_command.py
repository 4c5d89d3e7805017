"""``nitedr build-engine``: refuses cleanly without a GPU; with a faked device and TensorRT it provisions
the cache and reports what it did."""

from __future__ import annotations

import json
import textwrap

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
    assert 'no CUDA GPU found' in err and 'onnxruntime-cpu' in err
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


def fake_gpu(monkeypatch):
    monkeypatch.setattr(tensorrt_engine, 'probe_cuda', lambda: CudaProbe(1, ''))
    monkeypatch.setattr(tensorrt_engine, 'device_identity', lambda index: DeviceIdentity('Fake GPU', (8, 7)))
    monkeypatch.setattr(tensorrt_toolkit, 'TensorRTToolkit', FakeToolkit)
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', FakeCuda)
    # The run path needs a real TensorRT engine; the open below only checks where the engine came from.
    monkeypatch.setattr(tensorrt_engine.TensorRTEngine, '_setup', lambda self, prepared: None)


def write_params(path, cache, extra: str = '') -> str:
    path.write_text(textwrap.dedent(f'''\
        /**:
          ros__parameters:
            mode: nitedr
            backend: tensorrt
            precision: fp16
            engine_cache_dir: {cache}
            profile:
              min_hw: [64, 64]
              opt_hw: [360, 640]
              max_hw: [720, 1280]
        ''') + extra)
    return str(path)


@pytest.fixture()
def shipped_models(tmp_path, monkeypatch):
    models = tmp_path / 'models'
    tiny_models.identity_model(models / 'cleannet_realtime.onnx')
    tiny_models.blend_fusion_model(models / 'fusionnet_realtime.onnx')
    monkeypatch.setenv('NITEDR_MODELS_DIR', str(models))
    return models


def node_style_open(params_file: str):
    """What the node does with its parameter file: pipeline_config(parameters) -> every role's engine."""
    from nitedr_ros.core.parameters import load_parameter_file, pipeline_config
    from nitedr_ros.modes import MODE_ROLES
    from nitedr_ros.pipeline.builders import open_role_engine

    config = pipeline_config(load_parameter_file(params_file).values)
    return {role: open_role_engine(config, role) for role in MODE_ROLES[config.mode]}


def test_engines_built_from_the_node_parameters_are_the_ones_the_node_loads(capsys, tmp_path, monkeypatch,
                                                                             shipped_models):
    from nitedr_ros.core.parameters import SCHEMA

    fake_gpu(monkeypatch)
    names = {spec.name for spec in SCHEMA}
    tuned = {'workspace_mb', 'optimization_level'} <= names  # node parameters of CONTRACT_CHANGES item 3
    extra = '    workspace_mb: 2048\n    optimization_level: 5\n' if tuned else ''
    params = write_params(tmp_path / 'car.yaml', tmp_path / 'cache', extra)
    FakeToolkit.builds = 0
    assert main(['build-engine', '--params', params, '--json']) == 0
    built = {line['role']: line for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(built) == {'derain', 'fusion'} and {b['source'] for b in built.values()} == {'built'}
    assert built['derain']['key']['profile_max_hw'] == [720, 1280]
    if tuned:
        assert built['derain']['key']['optimization_level'] == 5
        assert built['derain']['key']['workspace_mb'] == 2048
    engines = node_style_open(params)
    for role, engine in engines.items():
        cached = engine.prepared.cached
        assert cached.source == 'cache', (role, cached.reason)
        assert str(cached.path) == built[role]['engine']
        engine.close()
    assert FakeToolkit.builds == 2  # the node built nothing


def test_an_override_makes_an_engine_the_node_does_not_load(capsys, tmp_path, monkeypatch, shipped_models):
    fake_gpu(monkeypatch)
    params = write_params(tmp_path / 'car.yaml', tmp_path / 'cache')
    assert main(['build-engine', '--params', params, '--optimization-level', '1', '--keep-old']) == 0
    captured = capsys.readouterr()
    assert 'note: --optimization-level overrides the parameters' in captured.err
    engines = node_style_open(params)
    assert {e.prepared.cached.source for e in engines.values()} == {'built'}  # other key: rebuilt
    assert 'optimization_level' in engines['derain'].prepared.cached.reason


def test_build_engine_writes_an_explicit_engine_file(capsys, tmp_path, monkeypatch, shipped_models):
    fake_gpu(monkeypatch)
    params = write_params(tmp_path / 'car.yaml', tmp_path / 'cache')
    plan = tmp_path / 'plans' / 'derain.engine'
    assert main(['build-engine', '--params', params, '--engine-file', f'derain={plan}', '--json']) == 0
    built = {line['role']: line for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert built['derain']['engine'] == str(plan) and plan.is_file()
    assert (tmp_path / 'plans' / 'derain.engine.json').is_file()
    assert main(['build-engine', '--params', params, '--engine-file', f'derain={plan}', '--json']) == 0
    again = {line['role']: line for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert again['derain']['source'] == 'cache'


def test_build_engine_params_errors(capsys, tmp_path):
    assert main(['build-engine', '--params', str(tmp_path / 'absent.yaml')]) == 2
    assert 'parameter file not found' in capsys.readouterr().err
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**:\n  ros__parameters:\n    profile:\n      max_hw: [0, 10]\n')
    assert main(['build-engine', '--params', str(bad)]) == 2
    assert 'profile.max_hw' in capsys.readouterr().err
    good = write_params(tmp_path / 'good.yaml', tmp_path / 'cache')
    assert main(['build-engine', '--params', good, '--engine-file', 'stereo=x.engine']) == 2
    assert 'no model role stereo' in capsys.readouterr().err
