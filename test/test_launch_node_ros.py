"""launch_testing: the installed ``nitedr_node`` started by ``nitedr.launch.py`` (identity backend, no GPU).

Runs where ROS 2 (Jazzy or Humble) and the package are installed (``colcon test``, or ``launch_test`` /
``pytest`` with the launch_testing plugin after ``source install/setup.bash``); skipped elsewhere.
Publishes synthetic RGB + thermal frames with one stamp per set and checks that ``derained/rgb/image``
and ``fused/image`` keep the input stamps, frame ids and encodings, and that ``/diagnostics`` carries the
node's statuses.
"""

from __future__ import annotations

import os
import time
import unittest

import pytest

pytest.importorskip('launch_testing')
pytest.importorskip('rclpy')
pytest.importorskip('launch_ros')
pytest.importorskip('sensor_msgs.msg')
pytest.importorskip('diagnostic_msgs.msg')

import launch
import launch_testing.actions
import launch_testing.asserts
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from launch.launch_description_sources import PythonLaunchDescriptionSource
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from nitedr_ros.core.testing import make_image, pattern_image

LAUNCH_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'launch', 'nitedr.launch.py'
)


@pytest.mark.launch_test
def generate_test_description():
    node = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(LAUNCH_FILE),
        launch_arguments={'mode': 'nitedr', 'backend': 'identity', 'input_reliability': 'reliable'}.items(),
    )
    return launch.LaunchDescription([node, launch_testing.actions.ReadyToTest()])


def _ros_image(pixels, encoding, stamp_ns, frame_id):
    fake = make_image(pixels, encoding, stamp_ns, frame_id)
    msg = Image(
        height=fake.height,
        width=fake.width,
        encoding=fake.encoding,
        is_bigendian=fake.is_bigendian,
        step=fake.step,
        data=fake.data,
    )
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


class TestNitedrNode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node('nitedr_launch_tester')

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_outputs_keep_stamps_and_diagnostics_appear(self):
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        rgb_pub = self.node.create_publisher(Image, 'rgb/image', reliable)
        ir_pub = self.node.create_publisher(Image, 'thermal/image', reliable)
        derained, fused, diagnostics = [], [], []
        self.node.create_subscription(Image, 'derained/rgb/image', derained.append, reliable)
        self.node.create_subscription(Image, 'fused/image', fused.append, reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        rgb, ir = pattern_image(48, 64, 'rgb8'), pattern_image(48, 64, 'mono16')
        sent = set()
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and (len(derained) < 3 or len(fused) < 3 or not diagnostics):
            stamp_ns = self.node.get_clock().now().nanoseconds
            rgb_pub.publish(_ros_image(rgb, 'rgb8', stamp_ns, 'camera'))
            ir_pub.publish(_ros_image(ir, 'mono16', stamp_ns, 'thermal'))
            sent.add(divmod(stamp_ns, 1_000_000_000))
            rclpy.spin_once(self.node, timeout_sec=0.05)
        self.assertGreaterEqual(len(derained), 3, 'no derained/rgb/image received')
        self.assertGreaterEqual(len(fused), 3, 'no fused/image received')
        for msg in derained + fused:
            self.assertIn((msg.header.stamp.sec, msg.header.stamp.nanosec), sent)
            self.assertEqual((msg.header.frame_id, msg.encoding), ('camera', 'rgb8'))
        names = {status.name for array in diagnostics for status in array.status}
        for task in ('input rgb', 'input thermal', 'sync', 'latency', 'pipeline'):
            self.assertIn(f'nitedr_node: {task}', names)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_exit_code(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
