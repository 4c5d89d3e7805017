"""``nitedr bench`` on tiny models: JSON output, result files, torch comparison, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nitedr_ros.cli import main
from nitedr_ros.commands import bench
from nitedr_ros.engines import tiny_models

STAGE_KEYS = {'preprocess_ms', 'inference_ms', 'transfer_ms', 'postprocess_ms', 'total_ms'}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('bench_models')
    return {
        'cleannet': tiny_models.channel_gain_model(folder / 'cleannet_tiny.onnx', (0.9, 0.9, 0.9)),
        'fusionnet': tiny_models.blend_fusion_model(folder / 'fusionnet_tiny.onnx'),
        'stereoirr': tiny_models.identity_model(folder / 'stereoirr_tiny.onnx', 'stereoirr'),
    }


def run_json(capsys, argv: list[str]) -> dict:
    assert main(['bench', *argv]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize('network,mode', [('cleannet', 'single'), ('fusionnet', 'nitedr'),
                                          ('stereoirr', 'stereo')])
def test_bench_json_on_a_tiny_model(capsys, tmp_path, tiny, network, mode):
    out_dir = tmp_path / 'results'
    result = run_json(capsys, ['--model', str(tiny[network]), '--backend', 'onnxruntime-cpu',
                               '--height', '24', '--width', '40', '--frames', '4', '--warmup', '1',
                               '--threads', '1', '--json', '--output-dir', str(out_dir)])
    assert result['network'] == network and result['mode'] == mode  # read from the model's metadata
    assert result['backend'] == 'onnxruntime-cpu'
    assert set(result['stages']) == STAGE_KEYS
    for stage in result['stages'].values():
        assert stage['count'] == 4
        assert 0 <= stage['p50'] <= stage['p95'] <= stage['p99'] <= stage['max']
    assert result['fps'] == pytest.approx(1000.0 / result['stages']['total_ms']['mean'], rel=1e-2)
    assert 'speedup' not in result
    machine = result['machine']
    assert machine['cpu_model'] and machine['logical_cpus'] >= 1 and 'onnxruntime' in machine['versions']
    stem = f'runtime_{network}_tiny_onnxruntime-cpu_24x40'
    written = json.loads((out_dir / f'{stem}.json').read_text())
    assert len(written['samples_ms']['total_ms']) == 4
    assert (out_dir / f'{stem}.png').read_bytes()[:4] == b'\x89PNG'


def test_bench_refuses_to_overwrite_results(capsys, tmp_path, tiny):
    argv = ['bench', '--model', str(tiny['cleannet']), '--backend', 'onnxruntime-cpu', '--height', '16',
            '--width', '16', '--frames', '1', '--warmup', '0', '--output-dir', str(tmp_path), '--json']
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert 'pass --force to overwrite' in capsys.readouterr().err
    assert main([*argv, '--force']) == 0


def test_bench_compare_needs_the_same_weights(capsys, tiny):
    assert main(['bench', '--model', str(tiny['cleannet']), '--compare', 'torch', '--output-dir', '']) == 2
    assert '--checkpoint' in capsys.readouterr().err


def test_bench_compare_torch_on_random_weights(capsys, tmp_path, monkeypatch):
    """The whole random-weights path (build, export, ONNX Runtime, torch, ratio) with a tiny torch network."""
    torch = pytest.importorskip('torch')
    torch.set_num_threads(1)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, image):
            return image + self.conv(image)

    monkeypatch.setattr(bench, '_torch_model', lambda args, role: (Tiny().eval(), 'tiny random weights'))
    result = run_json(capsys, ['--network', 'cleannet', '--config', 'realtime',
                               '--backend', 'onnxruntime-cpu', '--height', '32', '--width', '48',
                               '--frames', '3', '--warmup', '1', '--threads', '1', '--compare', 'torch',
                               '--json', '--output-dir', str(tmp_path)])
    assert result['compare']['backend'] == 'torch-cpu'
    assert set(result['compare']['stages']) == STAGE_KEYS
    ratio = result['compare']['stages']['inference_ms']['p50'] / result['stages']['inference_ms']['p50']
    assert result['speedup'] == pytest.approx(ratio, rel=1e-2)
    assert result['speedup_total'] > 0
    assert 'tiny random weights' in result['model']
    assert (tmp_path / 'runtime_cleannet_realtime_onnxruntime-cpu_32x48.png').is_file()


def test_bench_table_output(capsys, tiny):
    assert main(['bench', '--model', str(tiny['cleannet']), '--backend', 'onnxruntime-cpu', '--height', '16',
                 '--width', '16', '--frames', '2', '--warmup', '0', '--output-dir', '']) == 0
    text = capsys.readouterr().out
    assert 'total_ms' in text and 'p99' in text and 'fps' in text


@pytest.mark.parametrize('argv,message', [(['--height', '0'], 'frame size'), (['--frames', '0'], '--frames')])
def test_bench_bad_arguments(capsys, tiny, argv, message):
    assert main(['bench', '--model', str(tiny['cleannet']), '--output-dir', '', *argv]) == 2
    assert message in capsys.readouterr().err


def tiny_torch_network(network: str):
    """A small torch module with the contract of ``network`` (random weights, seeded)."""
    torch = pytest.importorskip('torch')
    from nitedr_ros.modelspec import get_spec

    spec = get_spec(network)
    torch.manual_seed(1)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            channels = sum(t.channels for t in spec.inputs)
            self.convs = torch.nn.ModuleList(torch.nn.Conv2d(channels, t.channels, 3, padding=1)
                                             for t in spec.outputs)

        def forward(self, *inputs):
            stacked = torch.cat(inputs, dim=1)
            outs = tuple(inputs[i % len(inputs)][:, :3] + 0.1 * conv(stacked)
                         for i, conv in enumerate(self.convs))
            return outs if len(outs) > 1 else outs[0]

    return Tiny().eval()


@pytest.mark.parametrize('mode,roles', [('nitedr', {'derain', 'fusion'}),
                                        ('full', {'derain', 'fusion', 'stereo'})])
def test_bench_a_whole_mode_against_torch(capsys, tmp_path, monkeypatch, mode, roles):
    """--mode runs every role's network in one pipeline call, on both sides of the comparison."""
    pytest.importorskip('torch').set_num_threads(1)
    built = []

    def fake_torch_model(args, role):
        built.append((role.network, role.config))
        return tiny_torch_network(role.network), f'tiny {role.network}'

    monkeypatch.setattr(bench, '_torch_model', fake_torch_model)
    result = run_json(capsys, ['--mode', mode, '--config', 'paper', '--backend', 'onnxruntime-cpu',
                               '--height', '24', '--width', '32', '--frames', '2', '--warmup', '0',
                               '--threads', '1', '--compare', 'torch', '--json',
                               '--output-dir', str(tmp_path)])
    assert result['mode'] == mode and set(result['roles']) == roles
    assert {r['config'] for r in result['roles'].values()} == {'paper'}
    assert sorted(built) == sorted((r['network'], 'paper') for r in result['roles'].values())
    assert result['network'] == '+'.join(r['network'] for r in result['roles'].values())
    for side in (result, result['compare']):
        assert set(side['inference_p50_by_role']) == roles and set(side['engines']) == roles
    assert {e['backend'] for e in result['compare']['engines'].values()} == {'torch-cpu'}
    assert {e['backend'] for e in result['engines'].values()} == {'onnxruntime-cpu'}
    ratio = result['compare']['stages']['inference_ms']['p50'] / result['stages']['inference_ms']['p50']
    assert result['speedup'] == pytest.approx(ratio, rel=1e-2)
    assert (tmp_path / f'runtime_{mode}-mode_paper_onnxruntime-cpu_24x32.json').is_file()


def test_bench_mode_inference_is_the_sum_of_its_roles(tiny):
    from nitedr_ros.engines import open_engine
    from nitedr_ros.pipeline.derain import DerainPipeline

    engines = {'derain': open_engine(tiny['cleannet'], 'onnxruntime-cpu'),
               'fusion': open_engine(tiny['fusionnet'], 'onnxruntime-cpu')}
    frames = bench.make_frames('nitedr', 16, 16, 0)
    recorded = bench.measure({'x': DerainPipeline('nitedr', engines)}, frames, 3, 0, ('derain', 'fusion'))
    for timings in recorded['x']:
        assert timings.inference_ms == pytest.approx(sum(timings.inference_by_role.values()))
    only = bench.measure({'x': DerainPipeline('nitedr', engines)}, frames, 3, 0, ('fusion',))
    for timings in only['x']:
        assert timings.inference_ms == timings.inference_by_role['fusion']


@pytest.fixture()
def fusion_checkpoint(tmp_path):
    torch = pytest.importorskip('torch')
    from nitedr_ros.networks import build_network
    from nitedr_ros.networks.checkpoint import save_checkpoint

    torch.manual_seed(5)
    model = build_network('fusionnet', 'realtime')
    return save_checkpoint(tmp_path / 'fusion.pt', model, 'fusionnet', 'realtime')


def test_bench_takes_network_and_config_from_the_checkpoint(capsys, tmp_path, fusion_checkpoint):
    result = run_json(capsys, ['--checkpoint', str(fusion_checkpoint), '--backend', 'onnxruntime-cpu',
                               '--height', '16', '--width', '16', '--frames', '1', '--warmup', '0',
                               '--threads', '1', '--json', '--output-dir', ''])
    assert (result['network'], result['config'], result['mode']) == ('fusionnet', 'realtime', 'nitedr')
    assert f'checkpoint {fusion_checkpoint}' in result['model']
    argv = ['bench', '--checkpoint', str(fusion_checkpoint), '--network', 'mspfn', '--output-dir', '']
    assert main(argv) == 2
    assert 'holds fusionnet, not mspfn' in capsys.readouterr().err


def test_bench_model_and_checkpoint_must_hold_the_same_weights(capsys, tmp_path, fusion_checkpoint, tiny):
    torch = pytest.importorskip('torch')
    from nitedr_ros.networks import build_network
    from nitedr_ros.networks.checkpoint import save_checkpoint

    onnx = tmp_path / 'fusionnet_realtime.onnx'
    assert main(['export', '--checkpoint', str(fusion_checkpoint), '--output', str(onnx), '--no-fp16',
                 '--height', '16', '--width', '16']) == 0
    capsys.readouterr()
    common = ['--backend', 'onnxruntime-cpu', '--height', '16', '--width', '16', '--frames', '1',
              '--warmup', '0', '--threads', '1', '--compare', 'torch', '--json', '--output-dir', '']
    result = run_json(capsys, ['--model', str(onnx), '--checkpoint', str(fusion_checkpoint), *common])
    assert result['network'] == 'fusionnet' and result['compare']['backend'] == 'torch-cpu'
    torch.manual_seed(6)
    other = save_checkpoint(tmp_path / 'other.pt', build_network('fusionnet', 'realtime'), 'fusionnet',
                            'realtime')
    assert main(['bench', '--model', str(onnx), '--checkpoint', str(other), *common]) == 2
    assert 'exported from other weights than' in capsys.readouterr().err
    argv = ['bench', '--model', str(tiny['fusionnet']), '--checkpoint', str(fusion_checkpoint), *common]
    assert main(argv) == 2
    assert 'does not record which checkpoint' in capsys.readouterr().err


def test_bench_closes_its_engines_when_the_run_fails(monkeypatch, tiny, capsys):
    from nitedr_ros.engines.onnxruntime_engine import OnnxRuntimeEngine

    closed = []
    real_close = OnnxRuntimeEngine.close
    monkeypatch.setattr(OnnxRuntimeEngine, 'close', lambda self: closed.append(self) or real_close(self))

    def broken(*args, **kwargs):
        raise RuntimeError('frame source failed')

    monkeypatch.setattr(bench, 'measure', broken)
    with pytest.raises(RuntimeError, match='frame source failed'):
        main(['bench', '--model', str(tiny['stereoirr']), '--backend', 'onnxruntime-cpu', '--output-dir', ''])
    assert len(closed) == 1


def test_bench_role_options(capsys, tiny):
    argv = ['bench', '--output-dir', '', '--backend', 'onnxruntime-cpu']
    assert main([*argv, '--model', f'derain={tiny["cleannet"]}']) == 2
    assert 'ROLE=PATH needs --mode' in capsys.readouterr().err
    assert main([*argv, '--mode', 'nitedr', '--model', str(tiny['cleannet'])]) == 2
    assert 'give ROLE=PATH' in capsys.readouterr().err
    assert main([*argv, '--mode', 'nitedr', '--model', f'stereo={tiny["stereoirr"]}']) == 2
    assert 'this mode has roles derain, fusion' in capsys.readouterr().err
    assert main([*argv, '--mode', 'stereo', '--network', 'mspfn']) == 2
    assert '--network picks the derain network of --mode single' in capsys.readouterr().err
    assert main([*argv, '--mode', 'nitedr', '--model', f'fusion={tiny["fusionnet"]}',
                 '--compare', 'torch']) == 2
    assert 'for role fusion needs the same weights' in capsys.readouterr().err


@pytest.mark.slow
def test_bench_real_nitedr_networks_smoke(capsys, tmp_path):
    """The real CleanNet + FusionNet (realtime) through export, ONNX Runtime and torch, one tiny frame."""
    pytest.importorskip('torch').set_num_threads(1)
    result = run_json(capsys, ['--mode', 'nitedr', '--config', 'realtime', '--backend', 'onnxruntime-cpu',
                               '--height', '32', '--width', '32', '--frames', '1', '--warmup', '0',
                               '--threads', '1', '--compare', 'torch', '--json', '--output-dir', ''])
    assert result['network'] == 'cleannet+fusionnet' and result['speedup'] > 0
    assert 'export_network' in result['roles']['derain']['model']
