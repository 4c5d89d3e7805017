"""The node over Cyclone DDS without ROS: :class:`NodeCore` + ROS 2 wire conventions (``nitedr run``).

Subscribes the mode's image topics (``sensor_msgs/Image``, or ``CompressedImage`` on ``<topic>/compressed``
with ``image_transport: compressed``) and their ``camera_info``, and publishes the outputs, their
``camera_info``, ``/diagnostics`` and ``~/debug/*_ms``, all under the node's namespace and remaps, exactly as
the rclpy node names them. QoS comes from ``qos.input.*`` / ``qos.output.*`` (sensor data in, reliable out)
with ``qos_overrides./<topic>.{subscription,publisher}.{reliability,depth,durability}`` on top. With
``use_sim_time`` true the node clock is ``/clock`` (0 until the first message, so nothing is dropped as
stale); false: the system clock; unset: the system clock until a ``/clock`` message arrives (a bag played
with ``--clock``), then ``/clock``, with a warning saying so (:class:`AutoSimClock`).

Callbacks run on the DDS reader thread and only hand messages to the core; the core's worker publishes.
A sample that cannot be decoded is reported to the core (``bad_message`` in the stream's diagnostics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...core.clock import SystemClock, stamp_to_ns
from ...core.node_core import NodeCore
from ...core.parameters import DEFAULT_NODE_NAME
from ...core.topics import DEBUG_VALUES, DIAGNOSTICS_TOPIC, STATUS_VALUES, debug_topic
from ..bag.ros2_messages import CAMERA_INFO, DIAGNOSTIC_ARRAY, FLOAT64, IMAGE, Ros2Messages
from .participant import CLOCK, RELIABLE, DdsNode, QosProfile, RosPublisher

log = logging.getLogger('nitedr_ros.dds')

COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CLOCK_TYPE = 'rosgraph_msgs/msg/Clock'


class SimClock:
    """Node clock from ``/clock`` (rosgraph_msgs/Clock): 0 until the first message."""

    def __init__(self) -> None:
        self._now = 0
        self._lock = threading.Lock()
        self.received = 0

    def on_clock(self, msg: Any, _receive_ns: int) -> None:
        with self._lock:
            self._now = stamp_to_ns(msg.clock)
            self.received += 1

    def now_ns(self) -> int:
        with self._lock:
            return self._now


class AutoSimClock:
    """``use_sim_time`` unset: the system clock until the first ``/clock`` message, then ``/clock`` for
    good (a bag started playing with ``--clock``; its stamps are hours or days old on the system clock, so
    every set would be dropped as stale). ``on_switch`` is called once, at the switch."""

    def __init__(self, on_switch: Callable[[], None]) -> None:
        self.system = SystemClock()
        self.sim = SimClock()
        self.on_switch = on_switch
        self.switched = False

    def on_clock(self, msg: Any, receive_ns: int) -> None:
        self.sim.on_clock(msg, receive_ns)
        if not self.switched:
            self.switched = True
            self.on_switch()

    def now_ns(self) -> int:
        return self.sim.now_ns() if self.switched else self.system.now_ns()


def _reliability(value: str) -> str:
    return 'best_effort' if value == 'best_effort' else 'reliable'


class DdsNodeRuntime:
    """One nitedr node on DDS. ``start()`` builds the pipeline and the endpoints; ``shutdown()`` ends it."""

    def __init__(self, params: Mapping[str, Any], *, ros_params: Mapping[str, Any] | None = None,
                 node_name: str = DEFAULT_NODE_NAME, namespace: str = '/', remaps: Sequence[str] = (),
                 domain_id: int | None = None, dds_config: str | None = None,
                 use_sim_time: bool | None = None, pipeline: Any = None) -> None:
        self.params = dict(params)
        self.ros_params = dict(ros_params or {})
        if use_sim_time is None and 'use_sim_time' in self.ros_params:
            use_sim_time = bool(self.ros_params['use_sim_time'])
        self.use_sim_time = use_sim_time  # None: automatic (system time until /clock is published)
        self.node = DdsNode(node_name, namespace, domain_id=domain_id, remaps=list(remaps),
                            dds_config=dds_config, qos_event_callback=self._on_qos_event)
        self.messages = Ros2Messages(self.node.typestore)
        self.clock: Any = (SimClock() if use_sim_time else SystemClock() if use_sim_time is False
                           else AutoSimClock(self._on_sim_time_started))
        self.core = NodeCore(self.params, sink=self, clock=self.clock, node_name=node_name, pipeline=pipeline,
                             logger=log)
        self._image_publishers: dict[str, RosPublisher] = {}
        self._info_publishers: dict[str, RosPublisher] = {}
        self._debug_publishers: dict[str, RosPublisher] = {}
        self._diagnostics: RosPublisher | None = None
        self.subscriptions: list[Any] = []
        self.started = False

    def clock_description(self) -> str:
        if self.use_sim_time is None:
            return 'sim time' if self.clock.switched else 'system time until /clock is published'
        return 'sim time' if self.use_sim_time else 'system time'

    def _on_sim_time_started(self) -> None:
        log.warning('a /clock publisher appeared (a bag playing with --clock?): the node clock is /clock '
                    'from now on, so the bag\'s old stamps are not dropped as stale; pass --use-sim-time or '
                    '--no-sim-time (use_sim_time) to choose yourself')

    # -- QoS --------------------------------------------------------------------------------------------
    def _on_qos_event(self, topic: str, description: str) -> None:
        core = getattr(self, 'core', None)
        if core is not None:
            core.report_qos_event(topic, description)

    def _qos(self, topic: str, kind: str) -> QosProfile:
        """``kind`` 'subscription' | 'publisher': node parameters, then qos_overrides for the topic."""
        prefix = 'qos.input' if kind == 'subscription' else 'qos.output'
        reliability = _reliability(self.params[f'{prefix}.reliability'])
        depth = int(self.params[f'{prefix}.depth'])
        durability = 'volatile'
        base = f'qos_overrides.{topic}.{kind}.'
        reliability = _reliability(str(self.ros_params.get(base + 'reliability', reliability)))
        depth = int(self.ros_params.get(base + 'depth', depth))
        durability = str(self.ros_params.get(base + 'durability', durability))
        return QosProfile(reliability, depth, durability)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Create publishers, build the pipeline (may raise ConfigError), then subscribe and spin."""
        node, core = self.node, self.core
        for output, topic in core.output_topics().items():
            name = node.resolve(topic)
            self._image_publishers[output] = node.create_publisher(name, IMAGE, self._qos(name, 'publisher'))
        if self.params['publish_camera_info']:
            for output, topic in core.output_camera_info_topics().items():
                name = node.resolve(topic)
                self._info_publishers[output] = node.create_publisher(name, CAMERA_INFO,
                                                                      self._qos(name, 'publisher'))
        self._diagnostics = node.create_publisher(DIAGNOSTICS_TOPIC, DIAGNOSTIC_ARRAY, RELIABLE)
        for name in (*DEBUG_VALUES, *STATUS_VALUES):
            self._debug_publishers[name] = node.create_publisher(debug_topic(name), FLOAT64, RELIABLE)
        core.start()  # builds the pipeline in the worker thread; raises its errors here
        if self.use_sim_time is not False:
            self.subscriptions.append(node.create_subscription('/clock', CLOCK_TYPE, self.clock.on_clock,
                                                               qos=CLOCK))
        resolved = {}
        for stream, topic in core.input_topics().items():
            name = resolved[stream] = node.resolve(topic)
            msgtype = COMPRESSED_IMAGE if topic.endswith('/compressed') else IMAGE
            self.subscriptions.append(node.create_subscription(
                name, msgtype, self._image_callback(stream), qos=self._qos(name, 'subscription'),
                on_bad_payload=self._bad_payload_callback(stream, name, image=True)))
        core.set_input_topic_names(resolved)
        for stream, topic in core.camera_info_topics().items():
            name = node.resolve(topic)
            self.subscriptions.append(node.create_subscription(
                name, CAMERA_INFO, self._info_callback(stream), qos=self._qos(name, 'subscription'),
                on_bad_payload=self._bad_payload_callback(stream, name, image=False)))
        node.start()
        self.started = True

    def _image_callback(self, stream: str):
        on_image = self.core.on_image

        def callback(msg: Any, _receive_ns: int) -> None:
            on_image(stream, msg)
        return callback

    def _info_callback(self, stream: str):
        on_info = self.core.on_camera_info

        def callback(msg: Any, _receive_ns: int) -> None:
            on_info(stream, msg)
        return callback

    def _bad_payload_callback(self, stream: str, topic: str, image: bool):
        report = self.core.report_bad_message

        def callback(problem: str) -> None:
            report(stream, f'{topic}: {problem}', counts_as_frame=image)
        return callback

    def describe_topics(self) -> dict[str, list[str]]:
        publishers = [*self._image_publishers.values(), *self._info_publishers.values(),
                      *([self._diagnostics] if self._diagnostics else []), *self._debug_publishers.values()]
        return {'subscribes': [s.topic for s in self.subscriptions],
                'publishes': [p.topic for p in publishers]}

    def shutdown(self, flush: bool = True, linger_s: float = 0.3) -> None:
        """End of run: flush the synchronizer (pending inputs become sets or counted drops), or with
        ``flush=False`` drop what it holds (counted, ``sync``), publish a last DiagnosticArray with the final
        totals, then stop the core and DDS."""
        if self.started:
            self.node.close()  # no more input callbacks
            if flush:
                self.core.flush(timeout=30.0)
            else:
                self.core.discard_pending()
                self.core.wait_idle(30.0)
            self.core.publish_diagnostics()
            time.sleep(linger_s)  # reliable writers deliver before the participant goes away
        self.core.stop()
        self.started = False

    # -- OutputSink (called from the core's worker thread) ----------------------------------------------
    def publish_image(self, output: str, header: Any, image: Any) -> None:
        self._image_publishers[output].publish(self.messages.image(header, image))

    def publish_camera_info(self, output: str, header: Any, camera_info: Any) -> None:
        publisher = self._info_publishers.get(output)
        if publisher is not None:
            publisher.publish(self.messages.camera_info(camera_info, header))

    def publish_diagnostics(self, statuses: list[Any], stamp_ns: int) -> None:
        if self._diagnostics is not None:
            self._diagnostics.publish(self.messages.diagnostic_array(statuses, stamp_ns))

    def publish_debug(self, name: str, value: float) -> None:
        publisher = self._debug_publishers.get(name)
        if publisher is not None:
            publisher.publish(self.messages.float64(value))


def run_until(runtime: DdsNodeRuntime, stop: threading.Event, duration_s: float = 0.0) -> None:
    """Block until ``stop`` is set (signal) or ``duration_s`` passed (0 = no limit)."""
    deadline = time.monotonic() + duration_s if duration_s > 0 else None
    while not stop.is_set():
        timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
        stop.wait(timeout)
        if deadline is not None and time.monotonic() >= deadline:
            break
