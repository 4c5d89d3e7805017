"""``nitedr bench`` on tiny models: JSON output, result files, torch comparison, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nitedr_ros.cli import main
from nitedr_ros.commands import bench
from nitedr_ros.engines import tiny_models

STAGE_KEYS = {'preprocess_ms', 'inference_ms', 'postprocess_ms', 'total_ms'}


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

    monkeypatch.setattr(bench, '_torch_model', lambda args: (Tiny().eval(), 'tiny random weights'))
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
