"""The ROS-free DDS runtime and real rclpy on one graph, both ways: a real rclpy publisher -> ``nitedr run``
(Cyclone DDS, no rclpy) -> a real rclpy subscriber, and ``nitedr bag play`` heard by rclpy with the type,
stamps and QoS ROS tools expect. Skipped (each test, with the reason) where rclpy is missing."""

from __future__ import annotations

import sys
import time

import pytest
from ros_graph import Launched, Probe, graph_env, private_domain, ros_image, stamp_ns

from nitedr_ros.core.testing import pattern_image

pytestmark = pytest.mark.rclpy


@pytest.fixture
def domain_and_probe():
    import rclpy  # noqa: F401 - skips (test by test) where rclpy is missing

    domain = private_domain()
    probe = Probe(domain, name='nitedr_interop_probe')
    yield domain, probe
    probe.close()


def test_rclpy_publisher_to_the_dds_runtime_node_to_an_rclpy_subscriber(domain_and_probe, tmp_path):
    from sensor_msgs.msg import Image

    domain, probe = domain_and_probe
    probe.publisher(Image, '/rgb/image')
    probe.subscribe(Image, '/derained/rgb/image')
    node = Launched([sys.executable, '-m', 'nitedr_ros', 'run', '--mode', 'single', '--backend', 'identity',
                     '--param', 'qos.input.reliability=reliable'], graph_env(domain), tmp_path / 'run.log')
    try:
        probe.wait_for_subscribers('/rgb/image', timeout=60)
        pixels = pattern_image(96, 128, 'bgr8', seed=3)
        stamps = []
        for _ in range(20):
            stamp = time.time_ns()
            probe.publisher_of('/rgb/image').publish(ros_image(pixels, 'bgr8', stamp, 'camera'))
            stamps.append(stamp)
            time.sleep(0.1)
        probe.wait_for(lambda: len(probe.messages('/derained/rgb/image')) >= 18, 20, 'outputs of nitedr run')
        out = probe.messages('/derained/rgb/image')
        assert {stamp_ns(m) for m in out} <= set(stamps)
        assert out[0].encoding == 'bgr8' and out[0].header.frame_id == 'camera'
        assert bytes(out[0].data) == pixels.tobytes()  # identity backend: the pixels come back unchanged
    finally:
        node.stop()
    assert 'Traceback' not in node.output()


def test_nitedr_bag_play_is_heard_by_rclpy_with_the_ros_type_and_stamps(domain_and_probe, tmp_path):
    from sensor_msgs.msg import Image

    from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

    domain, probe = domain_and_probe
    bag = tmp_path / 'sample'
    make_sample(bag, SampleSpec(duration_s=3.0, width=64, height=48, cameras=('rgb',)))
    probe.subscribe(Image, '/rgb/image', reliable=False)
    command = [sys.executable, '-m', 'nitedr_ros', 'bag', 'play', str(bag), '--wait-for', '/rgb/image']
    player = Launched(command, graph_env(domain), tmp_path / 'play.log')
    try:
        probe.wait_for(lambda: len(probe.messages('/rgb/image')) >= 50, 60, 'frames from nitedr bag play')
    finally:
        player.stop()
    frames = probe.messages('/rgb/image')
    assert frames[0].encoding == 'rgb8' and (frames[0].width, frames[0].height) == (64, 48)
    stamps = [stamp_ns(m) for m in frames]
    assert stamps == sorted(stamps)
    names_and_types = dict(probe.node.get_topic_names_and_types())
    assert names_and_types.get('/rgb/image', ['sensor_msgs/msg/Image']) == ['sensor_msgs/msg/Image']
