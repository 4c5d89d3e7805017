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
    assert '## What the counts mean' in report and f'of {summary["sets"]} sets processed' in report
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


def test_the_report_explains_every_count_in_words():
    from nitedr_ros.transports.bag.demo_report import explain_counts

    # the demo's sample: RGB 20 Hz, thermal 10 Hz, 4 s; a slow CPU; two thermal frames lost on the way
    counts = {'frames_in': {'rgb': 80, 'thermal': 38}, 'sets_total': 40, 'outputs_total': 16,
              'dropped': {'rgb.sync': 40, 'rgb.busy': 32, 'thermal.busy': 32}}
    lines = explain_counts(counts, {'rgb': 80, 'thermal': 40}, {'rgb': 20.0, 'thermal': 10.0},
                           outputs_recorded=15, outputs_per_set=2)
    text = '\n'.join(lines)
    assert 'rgb: the player published 80 frames; the node received all of them.' in text
    assert 'thermal: the player published 40 frames and the node received 38: 2 lost in transport' in text
    assert ('rgb: 40 frames found no partner within the synchronizer\'s slop and were not part of any set: '
            'rgb runs at 20 Hz and thermal at 10 Hz, so about 50% of the rgb frames have no partner by '
            'design.') in text
    assert '8 of 40 sets processed and published.' in text
    assert '32 sets not processed (busy): the node was still processing the previous set' in text
    assert '16 output images published (2 per processed set); the recorder received 15, 1 lost in ' \
           'transport.' in text


def test_a_bag_on_other_topics_is_subscribed_through_remaps(tmp_path):
    from rosbags.rosbag2 import Reader, Writer
    from rosbags.typesys import Stores, get_typestore

    from nitedr_ros.commands.demo import bag_streams

    make_sample(tmp_path / 'node_names', SampleSpec(duration_s=0.5, width=32, height=24,
                                                    cameras=('rgb', 'thermal')))
    renamed = {'/rgb/image': '/front/image_raw', '/rgb/camera_info': '/front/camera_info',
               '/thermal/image': '/flir/image_raw', '/thermal/camera_info': '/flir/camera_info'}
    store = get_typestore(Stores.ROS2_JAZZY)
    with Reader(tmp_path / 'node_names') as reader, Writer(tmp_path / 'driver_names', version=8) as writer:
        connections = {c.id: writer.add_connection(renamed[c.topic], c.msgtype, typestore=store)
                       for c in reader.connections}
        for connection, stamp, raw in reader.messages():
            writer.write(connections[connection.id], stamp, raw)

    topics, options = bag_streams(tmp_path / 'driver_names', 'nitedr', {})
    assert topics == {'rgb': '/front/image_raw', 'thermal': '/flir/image_raw'}
    assert options == ['--remap', 'rgb/image:=/front/image_raw',
                       '--remap', 'rgb/camera_info:=/front/camera_info',
                       '--remap', 'thermal/image:=/flir/image_raw',
                       '--remap', 'thermal/camera_info:=/flir/camera_info']
    topics, _ = bag_streams(tmp_path / 'driver_names', 'nitedr', {'thermal': '/flir/image_raw'})
    assert topics['thermal'] == '/flir/image_raw'
    assert bag_streams(tmp_path / 'node_names', 'nitedr', {}) == (
        {'rgb': '/rgb/image', 'thermal': '/thermal/image'}, [])
