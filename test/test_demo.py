"""``nitedr demo``: sample bag -> player, node and recorder processes -> grid, latency plot and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('cyclonedds')
pytest.importorskip('rosbags')
pytest.importorskip('onnxruntime')
pytest.importorskip('matplotlib')

from nitedr_ros.cli import main as cli_main
from nitedr_ros.engines import tiny_models
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample


@pytest.mark.slow
def test_demo_runs_the_whole_path_and_writes_its_outputs(tmp_path, capsys):
    import cv2

    derain = tiny_models.channel_gain_model(tmp_path / 'cleannet_gain.onnx', (1.0, 0.5, 0.25))
    fusion = tiny_models.blend_fusion_model(tmp_path / 'fusionnet_blend.onnx', 0.5)
    out = tmp_path / 'demo'
    # a smaller sample than the default keeps the test short; the demo reuses an existing sample bag
    make_sample(out / 'sample_bag', SampleSpec(duration_s=1.5, width=160, height=120,
                                               cameras=('rgb', 'thermal')))
    code = cli_main(['demo', '--output-dir', str(out), '--model', f'derain={derain}',
                     '--model', f'fusion={fusion}', '--frames', '3', '--param', 'threads=1'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    runs = list(out.glob('run-*'))
    assert len(runs) == 1
    run_dir = runs[0]
    assert f'before/after grid: {run_dir / "grid.png"}' in printed

    summary = json.loads((run_dir / 'summary.json').read_text())
    assert summary['sets'] > 0
    assert summary['outputs_recorded'] == summary['counts']['outputs_total'] == 2 * summary['sets']
    counts = summary['counts']
    assert counts['frames_in']['rgb'] == counts['sets_total'] + sum(
        v for k, v in counts['dropped'].items() if k.startswith('rgb.'))
    latency = summary['latency_ms']['end_to_end']
    assert latency['count'] == summary['sets'] and 0 < latency['p50'] <= latency['max']

    grid = cv2.imread(str(run_dir / 'grid.png'))
    assert grid is not None and grid.shape[0] > 200 and grid.shape[1] > 600
    assert np.std(grid) > 10  # images, not an empty canvas
    assert cv2.imread(str(run_dir / 'latency.png')) is not None
    report = (run_dir / 'report.md').read_text()
    assert '| end to end' in report and 'grid.png' in report
    for log in ('node.log', 'player.log', 'recorder.log'):
        assert (run_dir / log).stat().st_size > 0


def test_demo_without_models_says_which_and_how(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('NITEDR_MODELS_DIR', str(tmp_path / 'no_models'))
    code = cli_main(['demo', '--output-dir', str(tmp_path / 'demo')])
    err = capsys.readouterr().err
    assert code == 2
    assert 'cleannet_realtime.onnx' in err and '--model ROLE=PATH' in err
    assert not Path(tmp_path / 'demo').exists()


def test_identity_backend_needs_no_model_files(tmp_path, monkeypatch):
    import argparse

    from nitedr_ros.commands import demo
    from nitedr_ros.errors import ConfigError

    monkeypatch.setenv('NITEDR_MODELS_DIR', str(tmp_path / 'no_models'))
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    assert demo._check_models(parser.parse_args(['--backend', 'identity', '--mode', 'full'])) == ('full', {})
    with pytest.raises(ConfigError, match=r'cleannet_realtime\.onnx'):
        demo._check_models(parser.parse_args(['--mode', 'full']))  # onnxruntime-cpu needs the files


@pytest.mark.slow
def test_demo_full_mode_with_the_identity_backend_needs_no_models(tmp_path, monkeypatch, capsys):
    import cv2

    monkeypatch.setenv('NITEDR_MODELS_DIR', str(tmp_path / 'no_models'))
    out = tmp_path / 'demo'
    make_sample(out / 'sample_bag', SampleSpec(duration_s=1.0, width=96, height=72))
    code = cli_main(['demo', '--output-dir', str(out), '--backend', 'identity', '--mode', 'full',
                     '--frames', '2', '--param', 'threads=1'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    (run_dir,) = out.glob('run-*')
    summary = json.loads((run_dir / 'summary.json').read_text())
    assert summary['mode'] == 'full' and summary['sets'] > 0
    assert summary['outputs_recorded'] == summary['counts']['outputs_total'] == 4 * summary['sets']
    grid = cv2.imread(str(run_dir / 'grid.png'))
    assert grid is not None and grid.shape[1] > 4 * grid.shape[0]  # eight columns of images
    last_column = grid[grid.shape[0] // 5:, -grid.shape[1] // 9:]  # derained right, below the titles
    assert last_column.mean() < 200  # images (matched to their rows by the stereo stamps), not blank cells
