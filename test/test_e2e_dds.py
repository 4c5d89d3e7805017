"""End to end over DDS, three processes: bag player -> nitedr node -> recorder (loopback only).

The player replays a small night-rain sample bag (160x120) with ``/clock``; the node (``nitedr run``,
ONNX Runtime CPU, tiny models, sim time) derains and fuses; the recorder writes what the node publishes.
Checked: every output keeps its input header (stamp and frame_id) and the expected pixels; every frame the
node saw is in a set or counted as dropped; every set is published or counted as dropped; the recorder got
every published set; diagnostics arrive with latency fields.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('cyclonedds')
pytest.importorskip('rosbags')
pytest.importorskip('onnxruntime')

from nitedr_ros.engines import tiny_models
from nitedr_ros.transports.bag.reader import iter_raw, open_bag
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

WIDTH, HEIGHT = 160, 120
OUTPUTS = ('/derained/rgb/image', '/fused/image', '/derained/rgb/camera_info', '/diagnostics',
           '/nitedr_node/debug/processing_time_ms')


class Process:
    """A ``python -m nitedr_ros`` child whose output lines are collected by a thread."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.lines: list[str] = []
        self.log = log_dir / f'{name}.log'
        env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
        self.popen = subprocess.Popen([sys.executable, '-m', 'nitedr_ros', *args], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip('\n'))

    def wait_for_line(self, predicate, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            if self.popen.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f'{self.name}: expected line not seen; output:\n' + '\n'.join(self.lines))

    def interrupt(self, timeout_s: float = 60.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
        code = self.popen.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        self.log.write_text('\n'.join(self.lines))
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


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


def _messages(bag: Path) -> dict[str, list[tuple[int, object]]]:
    by_topic: dict[str, list[tuple[int, object]]] = {}
    with open_bag(bag) as reader:
        for connection, record_ns, raw in iter_raw(reader):
            by_topic.setdefault(connection.topic, []).append((record_ns, reader.deserialize(raw,
                                                                                             connection.msgtype)))
    return by_topic


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


@pytest.mark.slow
def test_player_node_recorder_over_dds(e2e_setup):
    folder, models, bag = e2e_setup
    domain = str(150 + os.getpid() % 70)
    recorded = folder / 'recorded'
    processes: list[Process] = []
    try:
        recorder = Process('recorder', ['bag', 'record', str(recorded), '--domain', domain, '--topics',
                                        *OUTPUTS], folder)
        processes.append(recorder)
        recorder.wait_for_line(lambda line: line == 'recording', 60)
        node = Process('node', ['run', '--domain', domain, '--use-sim-time', '--backend', 'onnxruntime-cpu',
                                '--model', f'derain={models["derain"]}',
                                '--model', f'fusion={models["fusion"]}',
                                '--param', 'threads=1', '--param', 'qos.output.depth=50',
                                '--param', 'diagnostics.period=0.5'], folder)
        processes.append(node)
        node.wait_for_line(lambda line: line.startswith('nitedr: ready'), 120)
        for topic in ('/derained/rgb/image', '/fused/image', '/diagnostics'):
            recorder.wait_for_line(lambda line, t=topic: line == f'matched {t}', 30)
        player = Process('player', ['bag', 'play', str(bag), '--clock', '--domain', domain,
                                    '--wait-for', '/rgb/image', '/thermal/image',
                                    '--publish-log', str(folder / 'published.csv')], folder)
        processes.append(player)
        assert player.popen.wait(timeout=120) == 0, '\n'.join(player.lines)
        time.sleep(1.0)  # let the node finish the last sets
        assert node.interrupt() == 0, '\n'.join(node.lines)
        stopped = json.loads(node.wait_for_line(lambda line: line.startswith('nitedr: stopped'), 5)
                             .split('; ', 1)[1])
        assert recorder.interrupt() == 0, '\n'.join(recorder.lines)
    finally:
        for process in processes:
            process.kill()

    inputs, outputs = _messages(bag), _messages(recorded)
    rgb_by_stamp = {_stamp(m): m for _, m in inputs['/rgb/image']}
    derained = [m for _, m in outputs['/derained/rgb/image']]
    fused = [m for _, m in outputs['/fused/image']]
    assert derained, 'no output reached the recorder'

    # every output keeps its input header and carries the pipeline's pixels
    for msg in derained + fused:
        source = rgb_by_stamp[_stamp(msg)]
        assert msg.header.frame_id == source.header.frame_id == 'rgb_camera_optical_frame'
        assert (msg.height, msg.width, msg.encoding) == (HEIGHT, WIDTH, 'rgb8')
    for msg in derained:
        pixels = np.asarray(msg.data).reshape(HEIGHT, WIDTH, 3).astype(int)
        source = np.asarray(rgb_by_stamp[_stamp(msg)].data).reshape(HEIGHT, WIDTH, 3).astype(int)
        np.testing.assert_array_equal(pixels[..., 0], source[..., 0])
        assert np.abs(pixels[..., 1] - source[..., 1] / 2).max() <= 1
    assert sorted(map(_stamp, derained)) == sorted(map(_stamp, fused))
    infos = [m for _, m in outputs['/derained/rgb/camera_info']]
    assert sorted(map(_stamp, infos)) == sorted(map(_stamp, derained))

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
