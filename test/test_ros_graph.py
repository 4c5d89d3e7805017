"""The node on a real ROS 2 graph: ``ros2 launch`` of the installed package, real rclpy peers, real parameter
services, a real ``ros2 bag play``. Skipped (each test, with the reason) where ROS 2 or the colcon workspace
is missing; ``scripts/test.sh`` builds and sources the workspace wherever ``/opt/ros/<distro>`` exists.

Every test runs the node with the identity backend (no model, no GPU) in a private DDS domain on loopback.
"""

from __future__ import annotations

import signal
import time

import pytest
from ros_graph import (
    Launched,
    Probe,
    diagnostic_values,
    graph_env,
    private_domain,
    require_installed_package,
    ros_image,
    stamp_ns,
)

from nitedr_ros.core.testing import pattern_image
from nitedr_ros.modes import MODE_OUTPUTS, MODE_STREAMS

pytestmark = pytest.mark.rclpy

STREAM_TOPIC = {'rgb': '/rgb/image', 'left': '/stereo/left/image', 'right': '/stereo/right/image',
                'thermal': '/thermal/image'}
OUTPUT_TOPIC = {'derained_rgb': '/derained/rgb/image', 'fused': '/fused/image',
                'derained_left': '/derained/left/image', 'derained_right': '/derained/right/image'}
PIXELS = {'rgb8': pattern_image(120, 160, 'rgb8', seed=1),
          'mono16': pattern_image(120, 160, 'mono16', seed=2)}
ERRORS_IN_OUTPUT = ('Traceback', 'context is invalid', 'process has died', 'Logger severity')


@pytest.fixture
def graph(tmp_path):
    """(probe, env, launch(args) -> Launched) in a private domain; everything is torn down after."""
    require_installed_package()
    from sensor_msgs.msg import Image

    domain = private_domain()
    env = graph_env(domain)
    probe = Probe(domain)
    launched: list[Launched] = []

    def launch(*args: str, name: str = 'launch') -> Launched:
        proc = Launched(['ros2', 'launch', 'nitedr_ros', *args], env, tmp_path / f'{name}.log')
        launched.append(proc)
        return proc

    probe.image_type = Image
    yield probe, env, launch
    for proc in launched:
        proc.stop()
    probe.close()


def node_running(probe: Probe, name: str = 'nitedr_node') -> bool:
    return name in probe.node.get_node_names()


def publish_sets(probe: Probe, streams: tuple[str, ...], count: int, rate_hz: float,
                 skip: dict[str, range] | None = None) -> list[int]:
    """``count`` sets at ``rate_hz``, stamped with the wall clock as a live camera does (one stamp per set);
    returns the stamps."""
    stamps = []
    for k in range(count):
        stamp = time.time_ns()
        for stream in streams:
            if skip and k in skip.get(stream, ()):
                continue
            encoding = 'mono16' if stream == 'thermal' else 'rgb8'
            message = ros_image(PIXELS[encoding], encoding, stamp, stream)
            probe.publisher_of(STREAM_TOPIC[stream]).publish(message)
        stamps.append(stamp)
        time.sleep(1.0 / rate_hz)
    return stamps


def start_node(probe: Probe, launch, mode: str, *extra: str) -> Launched:
    for stream in MODE_STREAMS[mode]:
        probe.publisher(probe.image_type, STREAM_TOPIC[stream])
    for output in MODE_OUTPUTS[mode]:
        probe.subscribe(probe.image_type, OUTPUT_TOPIC[output])
    from diagnostic_msgs.msg import DiagnosticArray

    probe.subscribe(DiagnosticArray, '/diagnostics')
    proc = launch('nitedr.launch.py', f'mode:={mode}', 'backend:=identity', 'input_reliability:=reliable',
                  *extra, name=mode)
    for stream in MODE_STREAMS[mode]:
        probe.wait_for_subscribers(STREAM_TOPIC[stream], timeout=60)
    return proc


def stop_cleanly(proc: Launched) -> None:
    code = proc.stop(signal.SIGINT)
    output = proc.output()
    assert code == 0, f'ros2 launch ended with {code}:\n{output[-3000:]}'
    bad = [marker for marker in ERRORS_IN_OUTPUT if marker in output]
    assert not bad, f'{bad} in the launch output:\n{output[-3000:]}'


@pytest.mark.parametrize('mode', ['nitedr', 'stereo', 'single', 'full'])
def test_every_mode_launches_and_its_outputs_keep_the_input_stamps(graph, mode):
    probe, _env, launch = graph
    proc = start_node(probe, launch, mode)
    stamps = publish_sets(probe, MODE_STREAMS[mode], 25, 10.0)
    for output in MODE_OUTPUTS[mode]:
        probe.wait_for(lambda o=output: len(probe.messages(OUTPUT_TOPIC[o])) >= 20, 20, f'{output} outputs')
        got = [stamp_ns(m) for m in probe.messages(OUTPUT_TOPIC[output])]
        assert set(got) <= set(stamps) and got == sorted(got)
        first = probe.messages(OUTPUT_TOPIC[output])[0]
        assert first.encoding == 'rgb8' and first.header.frame_id in ('rgb', 'left', 'right')
    assert node_running(probe) and proc.alive()
    stop_cleanly(proc)


def test_ten_hz_rgb_and_thermal_for_twenty_seconds_with_latency_in_diagnostics(graph):
    probe, _env, launch = graph
    proc = start_node(probe, launch, 'nitedr')
    stamps = publish_sets(probe, ('rgb', 'thermal'), 200, 10.0)
    probe.wait_for(lambda: len(probe.messages('/fused/image')) >= 195, 20, '195 fused outputs')
    derained = [stamp_ns(m) for m in probe.messages('/derained/rgb/image')]
    fused = [stamp_ns(m) for m in probe.messages('/fused/image')]
    assert len(derained) >= 195 and set(derained) <= set(stamps) and set(fused) <= set(stamps)
    latency = [v for m in probe.messages('/diagnostics') if (v := diagnostic_values(m, 'latency'))]
    assert latency, 'no latency status on /diagnostics'
    last = latency[-1]
    assert float(last['end_to_end_ms_p50']) >= 0.0 and last['processing_ms_p95'] != '-'
    assert node_running(probe) and proc.alive()
    stop_cleanly(proc)


def test_live_parameters_are_applied_or_refused_with_a_reason_over_the_parameter_services(graph):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import GetParameters, SetParameters

    probe, _env, launch = graph
    proc = start_node(probe, launch, 'nitedr')
    set_client = probe.node.create_client(SetParameters, '/nitedr_node/set_parameters')
    get_client = probe.node.create_client(GetParameters, '/nitedr_node/get_parameters')
    assert set_client.wait_for_service(30) and get_client.wait_for_service(30)

    def set_one(name, value):
        if isinstance(value, float):
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        future = set_client.call_async(SetParameters.Request(parameters=[Parameter(name=name, value=pv)]))
        probe.wait_for(future.done, 10, f'set {name}')
        return future.result().results[0]

    accepted = set_one('sync.slop', 0.02)
    assert accepted.successful, accepted.reason
    out_of_range = set_one('sync.slop', 20.0)
    assert not out_of_range.successful and 'range' in out_of_range.reason
    read_only = set_one('mode', 'stereo')
    assert not read_only.successful and 'read-only' in read_only.reason.lower()
    wrong_type = set_one('sync.slop', 'fast')
    assert not wrong_type.successful and wrong_type.reason
    future = get_client.call_async(GetParameters.Request(names=['sync.slop', 'mode']))
    probe.wait_for(future.done, 10, 'get parameters')
    values = future.result().values
    assert values[0].double_value == pytest.approx(0.02) and values[1].string_value == 'nitedr'
    assert node_running(probe) and proc.alive()
    stop_cleanly(proc)


def test_thermal_pause_degrades_to_derained_rgb_and_fusion_resumes(graph):
    probe, _env, launch = graph
    proc = start_node(probe, launch, 'nitedr')
    # 10 Hz; thermal silent for sets 20..49 (3 s, well past the automatic 500 ms timeout)
    stamps = publish_sets(probe, ('rgb', 'thermal'), 80, 10.0, skip={'thermal': range(20, 50)})
    probe.wait_for(lambda: len(probe.messages('/derained/rgb/image')) >= 75, 20, 'derained outputs')
    derained = {stamp_ns(m) for m in probe.messages('/derained/rgb/image')}
    fused = {stamp_ns(m) for m in probe.messages('/fused/image')}
    pause = set(stamps[26:48])  # past the timeout, before the return
    assert pause <= derained, 'derained RGB stopped during the thermal pause'
    assert not pause & fused, 'fused frames during the thermal pause'
    assert set(stamps[55:80]) & fused, 'fusion did not resume when thermal came back'
    degraded = [v for m in probe.messages('/diagnostics') if (v := diagnostic_values(m, 'pipeline'))
                and v.get('degraded') == 'true']
    assert degraded and degraded[0]['_level'] == '1'  # WARN while degraded
    stop_cleanly(proc)


def test_bag_replay_launch_with_sim_time_and_ctrl_c_during_replay(graph, tmp_path):
    probe, _env, launch = graph
    from sensor_msgs.msg import Image

    bag = tmp_path / 'sample_bag'
    from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

    make_sample(bag, SampleSpec(duration_s=8.0, width=160, height=120))
    probe.subscribe(Image, '/derained/rgb/image')
    probe.subscribe(Image, '/fused/image')
    proc = launch('bag_replay.launch.py', f'bag:={bag}', 'mode:=nitedr', 'backend:=identity', name='replay')
    probe.wait_for(lambda: len(probe.messages('/fused/image')) >= 10, 60, 'fused outputs from the bag')
    # the node runs on the bag's clock: output stamps are the bag's message stamps (2026 sample epoch)
    stamps = [stamp_ns(m) for m in probe.messages('/derained/rgb/image')]
    assert stamps == sorted(stamps)
    time.sleep(1.0)
    assert proc.alive(), proc.output()[-3000:]
    stop_cleanly(proc)  # Ctrl-C during the replay


def test_colcon_test_runs_pytest_and_reports_the_real_counts(tmp_path):
    """``colcon build`` + ``colcon test`` of this package in a scratch workspace: colcon must run pytest (not
    fall back to unittest and report 0 tests as green) and ``colcon test-result`` must count what ran."""
    require_installed_package()
    pytest.importorskip('colcon_core', reason='colcon is not installed: pip install colcon-common-extensions')
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    base = ['--base-paths', str(root), '--build-base', str(tmp_path / 'build'),
            '--install-base', str(tmp_path / 'install')]
    quiet = ['--event-handlers', 'console_direct-', 'console_cohesion-', 'status-']

    def colcon(*args: str) -> str:
        done = subprocess.run([sys.executable, '-m', 'colcon', *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f'colcon {args[0]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}'
        return done.stdout

    colcon('build', '--symlink-install', *base, *quiet)
    colcon('test', *base, *quiet, '--test-result-base', str(tmp_path / 'results'),
           '--pytest-args', 'test/test_config.py', 'test/test_conftest_collection.py')
    summary = colcon('test-result', '--test-result-base', str(tmp_path / 'results'), '--verbose')
    counts = re.search(r'Summary: (\d+) tests, (\d+) errors, (\d+) failures, (\d+) skipped', summary)
    assert counts, summary
    tests, errors, failures, _skipped = map(int, counts.groups())
    assert tests >= 15 and errors == 0 and failures == 0, summary
