"""The node over DDS in one process: names (namespace, remaps), compressed input, camera_info, diagnostics,
debug topics, QoS overrides and sim time; the pipeline is the core's pass-through stand-in."""

from __future__ import annotations

import itertools
import os
import time

import cv2
import numpy as np
import pytest

pytest.importorskip('cyclonedds')
pytest.importorskip('rosbags')

from nitedr_ros.core.parameters import validate
from nitedr_ros.core.testing import PassthroughPipeline
from nitedr_ros.transports.dds.node_runtime import DdsNodeRuntime
from nitedr_ros.transports.dds.participant import RELIABLE, DdsNode, QosProfile, private_domain_id

_domains = (private_domain_id(offset) for offset in itertools.count(30))  # offsets 30-59 here


def _wait(predicate, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def test_compressed_input_in_a_namespace_with_a_remap():
    domain = next(_domains)
    params = validate({'mode': 'single', 'image_transport': 'compressed', 'diagnostics.period': 0.2,
                       'max_input_age_ms': 0.0})  # a loaded CI machine must not turn this into a stale drop
    runtime = DdsNodeRuntime(params, namespace='/car', remaps=['rgb/image/compressed:=/front/jpeg'],
                             domain_id=domain, pipeline=PassthroughPipeline())
    camera = DdsNode('camera', domain_id=domain)
    listener = DdsNode('listener', domain_id=domain)
    try:
        runtime.start()
        topics = runtime.describe_topics()
        assert '/front/jpeg' in topics['subscribes'] and '/car/rgb/camera_info' in topics['subscribes']
        assert {'/car/derained/rgb/image', '/car/derained/rgb/camera_info', '/diagnostics',
                '/car/nitedr_node/debug/processing_time_ms'} <= set(topics['publishes'])

        got: dict[str, list] = {'image': [], 'info': [], 'diagnostics': [], 'debug': []}
        subscriptions = []
        for name, topic, msgtype in (('image', '/car/derained/rgb/image', 'sensor_msgs/msg/Image'),
                                     ('info', '/car/derained/rgb/camera_info', 'sensor_msgs/msg/CameraInfo'),
                                     ('diagnostics', '/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray'),
                                     ('debug', '/car/nitedr_node/debug/processing_time_ms',
                                      'std_msgs/msg/Float64')):
            subscriptions.append(listener.create_subscription(
                topic, msgtype, lambda msg, _t, n=name: got[n].append(msg), qos=RELIABLE))
        listener.start()
        assert listener.wait_for_matches(subscriptions, 15.0)
        jpeg_pub = camera.create_publisher('/front/jpeg', 'sensor_msgs/msg/CompressedImage', RELIABLE)
        info_pub = camera.create_publisher('/car/rgb/camera_info', 'sensor_msgs/msg/CameraInfo', RELIABLE)
        assert camera.wait_for_matches([jpeg_pub, info_pub], 15.0)
        types = camera.typestore.types
        sec, nanosec = divmod(time.time_ns(), 10**9)
        stamp = types['builtin_interfaces/msg/Time'](sec, nanosec)
        header = types['std_msgs/msg/Header'](stamp, 'front_camera')
        roi = types['sensor_msgs/msg/RegionOfInterest'](0, 0, 0, 0, False)
        info_pub.publish(types['sensor_msgs/msg/CameraInfo'](header, 24, 32, 'plumb_bob', np.zeros(5),
                                                             np.eye(3).reshape(-1), np.eye(3).reshape(-1),
                                                             np.zeros(12), 0, 0, roi))
        time.sleep(0.3)
        pixels = np.zeros((24, 32, 3), np.uint8)
        pixels[:, :16] = (0, 0, 255)  # red in BGR
        ok, encoded = cv2.imencode('.png', pixels)
        assert ok
        jpeg_pub.publish(types['sensor_msgs/msg/CompressedImage'](header, 'bgr8; png compressed bgr8',
                                                                  encoded.reshape(-1)))
        assert _wait(lambda: got['image'] and got['info'] and got['debug'] and got['diagnostics'])
        image = got['image'][0]
        assert (image.header.stamp.sec, image.header.stamp.nanosec, image.header.frame_id) == \
            (sec, nanosec, 'front_camera')
        assert got['info'][0].header.frame_id == 'front_camera' and got['info'][0].width == 32
        decoded = np.asarray(image.data).reshape(image.height, image.width, -1)
        red = decoded[0, 0] if image.encoding == 'rgb8' else decoded[0, 0, ::-1]
        assert image.encoding in ('rgb8', 'bgr8') and tuple(red) == (255, 0, 0)
        names = {status.name for array in got['diagnostics'] for status in array.status}
        assert 'nitedr_node: latency' in names and 'nitedr_node: input rgb' in names
    finally:
        runtime.shutdown(flush=False, linger_s=0.0)
        camera.close()
        listener.close()


def test_qos_comes_from_parameters_then_qos_overrides():
    params = validate({'mode': 'single', 'qos.input.depth': 3})
    ros = {'qos_overrides./cam/image.subscription.reliability': 'reliable',
           'qos_overrides./cam/image.subscription.depth': 7,
           'qos_overrides./derained/rgb/image.publisher.durability': 'transient_local'}
    runtime = DdsNodeRuntime(params, ros_params=ros, domain_id=next(_domains), pipeline=PassthroughPipeline())
    try:
        assert runtime._qos('/rgb/image', 'subscription') == QosProfile('best_effort', 3)
        assert runtime._qos('/cam/image', 'subscription') == QosProfile('reliable', 7)
        expected = QosProfile('reliable', 1, 'transient_local')
        assert runtime._qos('/derained/rgb/image', 'publisher') == expected
    finally:
        runtime.shutdown()


def test_sim_time_follows_clock_messages():
    domain = next(_domains)
    params = validate({'mode': 'single'})
    runtime = DdsNodeRuntime(params, ros_params={'use_sim_time': True}, domain_id=domain,
                             pipeline=PassthroughPipeline())
    player = DdsNode('player', domain_id=domain)
    try:
        runtime.start()
        assert runtime.clock.now_ns() == 0  # sim time not started
        publisher = player.create_publisher('/clock', 'rosgraph_msgs/msg/Clock', QosProfile('best_effort', 1))
        assert player.wait_for_matches([publisher], 15.0)
        types = player.typestore.types
        publisher.publish(types['rosgraph_msgs/msg/Clock'](types['builtin_interfaces/msg/Time'](1234, 5)))
        assert _wait(lambda: runtime.clock.now_ns() == 1234 * 10**9 + 5)
    finally:
        runtime.shutdown(flush=False, linger_s=0.0)
        player.close()


def test_without_use_sim_time_the_clock_switches_to_clock_when_it_is_published():
    domain = next(_domains)
    runtime = DdsNodeRuntime(validate({'mode': 'single'}), domain_id=domain, pipeline=PassthroughPipeline())
    player = DdsNode('player', domain_id=domain)
    try:
        runtime.start()
        assert runtime.clock.now_ns() > 10**18  # the system clock
        assert runtime.clock_description() == 'system time until /clock is published'
        assert '/clock' in runtime.describe_topics()['subscribes']
        publisher = player.create_publisher('/clock', 'rosgraph_msgs/msg/Clock', QosProfile('best_effort', 1))
        assert player.wait_for_matches([publisher], 15.0)
        types = player.typestore.types
        publisher.publish(types['rosgraph_msgs/msg/Clock'](types['builtin_interfaces/msg/Time'](1234, 5)))
        assert _wait(lambda: runtime.clock.now_ns() == 1234 * 10**9 + 5)
        assert runtime.clock_description() == 'sim time'
    finally:
        runtime.shutdown(flush=False, linger_s=0.0)
        player.close()


def test_use_sim_time_false_keeps_the_system_clock():
    runtime = DdsNodeRuntime(validate({'mode': 'single'}), ros_params={'use_sim_time': False},
                             domain_id=next(_domains), pipeline=PassthroughPipeline())
    try:
        runtime.start()
        assert '/clock' not in runtime.describe_topics()['subscribes']
        assert runtime.clock_description() == 'system time'
    finally:
        runtime.shutdown(flush=False, linger_s=0.0)


def test_incompatible_qos_is_reported_to_the_core():
    """A reliable node subscription and a best-effort camera never connect: the core hears about it."""
    domain = next(_domains)
    params = validate({'mode': 'single', 'qos.input.reliability': 'reliable'})
    runtime = DdsNodeRuntime(params, domain_id=domain, pipeline=PassthroughPipeline())
    camera = DdsNode('camera', domain_id=domain)
    try:
        runtime.start()
        camera.create_publisher('/rgb/image', 'sensor_msgs/msg/Image', QosProfile('best_effort', 1))
        assert _wait(lambda: '/rgb/image' in runtime.core.stats.qos_events)
        count, description = runtime.core.stats.qos_events['/rgb/image']
        assert count >= 1 and 'RELIABILITY' in description
        qos_status = next(s for s in runtime.core.statuses() if s.name.endswith('qos'))
        assert int(qos_status.level) == 1  # WARN
    finally:
        runtime.shutdown(flush=False, linger_s=0.0)
        camera.close()


def test_undecodable_samples_and_unflushed_inputs_are_counted_under_resolved_names():
    domain = next(_domains)
    params = validate({'mode': 'stereo', 'qos.input.reliability': 'reliable', 'qos.input.depth': 10,
                       'max_input_age_ms': 0.0})
    runtime = DdsNodeRuntime(params, namespace='/car', domain_id=domain, pipeline=PassthroughPipeline())
    camera = DdsNode('camera', domain_id=domain)
    try:
        runtime.start()
        left = camera.create_publisher('/car/stereo/left/image', 'sensor_msgs/msg/Image', RELIABLE)
        right = camera.create_publisher('/car/stereo/right/image', 'sensor_msgs/msg/Image', RELIABLE)
        assert camera.wait_for_matches([left, right], 15.0)
        types = camera.typestore.types
        for k in range(3):  # left frames only: they wait in the synchronizer for their right partners
            header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](100 + k, 0), 'left')
            left.publish(types['sensor_msgs/msg/Image'](header, 2, 2, 'mono8', 0, 2, np.zeros(4, np.uint8)))
        header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](100, 0), 'right')
        payload = bytes(camera.codecs.get('sensor_msgs/msg/Image').encode(
            types['sensor_msgs/msg/Image'](header, 2, 2, 'mono8', 0, 2, np.zeros(4, np.uint8))))
        right.publish_raw(payload.replace(b'mono8', b'\xffono8'))  # well-formed CDR, encoding not UTF-8
        assert _wait(lambda: runtime.core.stats.streams['left'].frames_total == 3
                     and runtime.core.stats.drops_total()['bad_message'] == 1)
        statuses = {s.name.split(': ')[1]: s for s in runtime.core.statuses()}
        assert statuses['input left'].value('topic') == '/car/stereo/left/image'
        bad = statuses['input right']
        assert bad.value('topic') == '/car/stereo/right/image' and int(bad.level) == 1  # WARN
        problem = bad.value('last_bad_message')
        assert problem.startswith('/car/stereo/right/image: undecodable sensor_msgs/msg/Image sample')
    finally:
        runtime.shutdown(flush=False, linger_s=0.0)
        camera.close()
    drops = runtime.core.stats.drops_total()
    assert drops['sync'] == 3 and runtime.core.stats.sets_total == 0  # --no-flush: counted, not lost


def test_run_command_options_become_parameters_and_ros_arguments(tmp_path, monkeypatch):
    import argparse

    from nitedr_ros.commands import run as run_command
    from nitedr_ros.errors import ConfigError

    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    args = parser.parse_args(['--mode', 'single', '--model', 'derain=/models/m.onnx', '--param', 'threads=2',
                              '--param', 'qos_overrides./rgb/image.subscription.depth=3', '--use-sim-time',
                              '--namespace', 'car', '--remap', 'rgb/image:=/cam', '--domain', '7'])
    params, ros = run_command.load_parameters(args)
    assert (params['mode'], params['models.derain'], params['threads']) == ('single', '/models/m.onnx', 2)
    assert ros['use_sim_time'] is True and ros['qos_overrides./rgb/image.subscription.depth'] == 3
    monkeypatch.setenv('ROS_DOMAIN_ID', '0')  # restored after the test
    ros_args = run_command.ros_arguments(args)
    assert ros_args[:2] == ['nitedr_node', '--ros-args']
    for pair in (['-r', '__ns:=/car'], ['-p', 'models.derain:=/models/m.onnx'], ['-p', 'threads:=2'],
                 ['-p', 'use_sim_time:=true'], ['-r', 'rgb/image:=/cam']):
        assert any(ros_args[i:i + 2] == pair for i in range(len(ros_args))), pair
    assert os.environ['ROS_DOMAIN_ID'] == '7'
    bad = parser.parse_args(['--param', 'slop'])
    with pytest.raises(ConfigError, match='NAME=VALUE'):
        run_command.load_parameters(bad)
    bad = parser.parse_args(['--param', 'sync.slop=-1.0'])
    with pytest.raises(ConfigError, match=r'sync\.slop'):
        run_command.load_parameters(bad)
