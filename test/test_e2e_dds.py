"""End to end over DDS, three processes: bag player -> nitedr node -> recorder (loopback only).

The player replays a small night-rain sample bag (160x120) with ``/clock``; the node (``nitedr run``,
ONNX Runtime CPU, tiny models, sim time) derains and fuses; the recorder writes what the node publishes.
Checked: every output keeps its input header (stamp and frame_id) and the expected pixels; every frame the
node saw is in a set or counted as dropped; every set is published or counted as dropped; the recorder got
every published set; diagnostics arrive with latency fields.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip('cyclonedds')
pytest.importorskip('rosbags')
pytest.importorskip('onnxruntime')

from bag_messages import messages_by_topic
from nitedr_ros.commands.demo import ChildProcess
from nitedr_ros.core.clock import header_stamp_ns
from nitedr_ros.engines import tiny_models
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample
from nitedr_ros.transports.dds.participant import private_domain_id

WIDTH, HEIGHT = 160, 120
OUTPUTS = ('/derained/rgb/image', '/fused/image', '/derained/rgb/camera_info', '/diagnostics',
           '/nitedr_node/debug/processing_time_ms')


@pytest.fixture(scope='module')
def e2e_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp('e2e')
    models = {
        'derain': tiny_models.channel_gain_model(folder / 'cleannet_gain.onnx', (1.0, 0.5, 0.25)),
        'fusion': tiny_models.blend_fusion_model(folder / 'fusionnet_blend.onnx', 0.5),
    }
    bag = folder / 'night_sample'
    make_sample(bag, SampleSpec(duration_s=2.0, width=WIDTH, height=HEIGHT, cameras=('rgb', 'thermal')))
    return folder, models, bag


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


@pytest.mark.slow
@pytest.mark.parametrize('clock', ['--use-sim-time', 'readme-recipe'])
def test_player_node_recorder_over_dds(e2e_setup, clock):
    """``readme-recipe``: as the README says, ``nitedr run --params config/nitedr.yaml`` (max_input_age_ms
    200, no sim-time option) with ``nitedr bag play BAG --clock``: the node switches to /clock by itself,
    so the bag's old stamps are not dropped as stale."""
    folder, models, bag = e2e_setup
    domain = str(private_domain_id(70 if clock == '--use-sim-time' else 71))  # offsets 70-79 here
    recorded = folder / f'recorded{clock}'
    clock_args = ['--use-sim-time'] if clock == '--use-sim-time' else ['--params', 'nitedr.yaml']
    processes: list[ChildProcess] = []

    def start(name: str, args: list[str]) -> ChildProcess:
        processes.append(ChildProcess(name, args, folder / f'{name}.log', env={'OMP_NUM_THREADS': '1'}))
        return processes[-1]

    try:
        recorder = start('recorder', ['bag', 'record', str(recorded), '--domain', domain,
                                      '--topics', *OUTPUTS])
        recorder.wait_for(lambda line: line == 'recording', 60, 'start')
        node = start('node', ['run', '--domain', domain, *clock_args, '--backend', 'onnxruntime-cpu',
                              '--model', f'derain={models["derain"]}',
                              '--model', f'fusion={models["fusion"]}',
                              '--param', 'threads=1', '--param', 'qos.output.depth=50',
                              '--param', 'diagnostics.period=0.5'])
        node.wait_for(lambda line: line.startswith('nitedr: ready'), 120, 'ready')
        for topic in ('/derained/rgb/image', '/fused/image', '/diagnostics'):
            recorder.wait_for(lambda line, t=topic: line == f'matched {t}', 30, f'a match on {topic}')
        player = start('player', ['bag', 'play', str(bag), '--clock', '--domain', domain,
                                  '--wait-for', '/rgb/image', '/thermal/image',
                                  '--publish-log', str(folder / 'published.csv')])
        assert player.wait(120) == 0, '\n'.join(player.lines)
        time.sleep(1.0)  # let the node finish the last sets
        assert node.interrupt(60) == 0, '\n'.join(node.lines)
        stop_line = node.wait_for(lambda line: line.startswith('nitedr: stopped'), 5, 'the stop line')
        stopped = json.loads(stop_line.split('; ', 1)[1])
        assert recorder.interrupt(60) == 0, '\n'.join(recorder.lines)
    finally:
        for process in processes:
            process.kill()

    inputs, outputs = messages_by_topic(bag), messages_by_topic(recorded)
    rgb_by_stamp = {header_stamp_ns(m): m for _, m in inputs['/rgb/image']}
    derained = [m for _, m in outputs['/derained/rgb/image']]
    fused = [m for _, m in outputs['/fused/image']]
    assert derained, 'no output reached the recorder'

    # every output keeps its input header and carries the pipeline's pixels
    for msg in derained + fused:
        source = rgb_by_stamp[header_stamp_ns(msg)]
        assert msg.header.frame_id == source.header.frame_id == 'rgb_camera_optical_frame'
        assert (msg.height, msg.width, msg.encoding) == (HEIGHT, WIDTH, 'rgb8')
    for msg in derained:
        pixels = np.asarray(msg.data).reshape(HEIGHT, WIDTH, 3).astype(int)
        source = np.asarray(rgb_by_stamp[header_stamp_ns(msg)].data).reshape(HEIGHT, WIDTH, 3).astype(int)
        np.testing.assert_array_equal(pixels[..., 0], source[..., 0])
        assert np.abs(pixels[..., 1] - source[..., 1] / 2).max() <= 1
    assert sorted(map(header_stamp_ns, derained)) == sorted(map(header_stamp_ns, fused))
    infos = [m for _, m in outputs['/derained/rgb/camera_info']]
    assert sorted(map(header_stamp_ns, infos)) == sorted(map(header_stamp_ns, derained))

    # the last DiagnosticArray (published at shutdown, after a flush) accounts for everything
    statuses = {s.name.split(': ', 1)[1]: s for s in outputs['/diagnostics'][-1][1].status}
    rgb = _values(statuses['input rgb'])
    sets = int(_values(statuses['sync'])['sets_total'])
    frame_drops = sum(int(rgb[f'dropped_{r}']) for r in ('sync', 'out_of_order', 'bad_message'))
    set_drops = sum(int(rgb[f'dropped_{r}']) for r in ('busy', 'stale', 'error', 'disabled'))
    frames_seen = int(rgb['frames_total'])
    assert 0 < frames_seen <= len(inputs['/rgb/image'])
    assert frames_seen == sets + frame_drops
    assert sets == len(derained) + set_drops
    # on the system clock every set of the bag would be stale; on /clock only a set that waited behind a slow
    # one for longer than max_input_age_ms (a loaded machine) can be
    assert int(rgb['dropped_stale']) < sets / 4, 'the bag\'s stamps were judged on the system clock'
    assert len(derained) == stopped['sets'] - set_drops
    assert int(_values(statuses['pipeline'])['outputs_total']) == stopped['outputs'] == 2 * len(derained)

    # diagnostics arrive during the run with latency fields
    latency = _values(statuses['latency'])
    for key in ('end_to_end_ms_p50', 'end_to_end_ms_p95', 'inference_ms_p50', 'processing_ms_max'):
        assert float(latency[key]) >= 0.0
    assert len(outputs['/diagnostics']) >= 3
    assert len(outputs['/nitedr_node/debug/processing_time_ms']) == len(derained)
    published = (folder / 'published.csv').read_text().splitlines()
    assert published[0] == 'topic,stamp_ns,wall_ns' and len(published) > len(inputs['/rgb/image'])
