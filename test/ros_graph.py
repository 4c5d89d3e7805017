"""Helpers of the tests that run against a real ROS 2 graph (``test_ros_graph.py``, ``test_ros_interop.py``).

They need a ROS 2 installation (``source /opt/ros/<distro>/setup.bash``) and this package in a colcon
workspace (``scripts/test.sh`` builds it into ``build/ros_install`` and sources it). Every test runs in a
private DDS domain (1..101) on the loopback Cyclone configuration, with its own rclpy context.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def require_installed_package() -> None:
    """Skip unless ROS 2 and this package (in a sourced colcon workspace) are there."""
    if shutil.which('ros2') is None:
        pytest.skip('ROS 2 is not sourced (no ros2 command): source /opt/ros/<distro>/setup.bash')
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        pytest.skip('ament_index_python is not importable (ROS 2 not sourced)')
    try:
        get_package_share_directory('nitedr_ros')
    except PackageNotFoundError:
        pytest.skip('nitedr_ros is not in a sourced colcon workspace (scripts/test.sh builds it)')


def private_domain() -> int:
    return random.SystemRandom().randint(1, 101)


def graph_env(domain: int) -> dict[str, str]:
    from nitedr_ros.paths import DDS_LOOPBACK_CONFIG

    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION='rmw_cyclonedds_cpp',
               CYCLONEDDS_URI=DDS_LOOPBACK_CONFIG.as_uri(), PYTHONUNBUFFERED='1')
    return env


class Launched:
    """A ``ros2 launch`` (or any command) in its own process group, output captured to a file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command = command
        self.log_path = log
        self._log = open(log, 'w')  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=ROOT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        """Signal the whole group (as Ctrl-C in a terminal does) and wait; returns the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return int(self.process.returncode)


class Probe:
    """An rclpy node of its own context: publishes test images, records what the node publishes."""

    def __init__(self, domain: int, name: str = 'nitedr_test_probe') -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.received: dict[str, list] = {}
        self.publishers: dict[str, object] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.rclpy.ok(context=self.context):
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - the context went down while spinning
                return

    def subscribe(self, msg_type: type, topic: str, reliable: bool = True, depth: int = 50) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        self.received.setdefault(topic, [])

        def store(msg: object, topic: str = topic) -> None:
            with self.lock:
                self.received[topic].append(msg)

        self.node.create_subscription(msg_type, topic, store, qos)

    def publisher(self, msg_type: type, topic: str, depth: int = 10) -> object:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        if topic not in self.publishers:
            self.publishers[topic] = self.node.create_publisher(
                msg_type, topic, QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))
        return self.publishers[topic]

    def messages(self, topic: str) -> list:
        with self.lock:
            return list(self.received.get(topic, []))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')
            time.sleep(0.05)

    def wait_for_subscribers(self, topic: str, timeout: float = 30.0) -> None:
        publisher = self.publisher_of(topic)
        self.wait_for(lambda: publisher.get_subscription_count() > 0, timeout, f'a subscriber of {topic}')

    def publisher_of(self, topic: str):
        return self.publishers[topic]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self._thread.join(2)


def ros_image(pixels, encoding: str, stamp_ns: int, frame_id: str):
    """A real ``sensor_msgs/Image`` from numpy pixels."""
    from sensor_msgs.msg import Image

    from nitedr_ros.core.testing import make_image

    fake = make_image(pixels, encoding, stamp_ns, frame_id)
    msg = Image(height=fake.height, width=fake.width, encoding=fake.encoding,
                is_bigendian=fake.is_bigendian, step=fake.step, data=fake.data)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def diagnostic_values(array_msg, task: str) -> dict[str, str] | None:
    """Key/values of the status ``'<node>: <task>'`` in a DiagnosticArray (None if absent)."""
    for status in array_msg.status:
        if status.name.endswith(f': {task}'):
            return {kv.key: kv.value for kv in status.values} | {'_level': str(status.level[0])
                                                                     if isinstance(status.level, bytes)
                                                                     else str(status.level),
                                                                     '_message': status.message}
    return None
