"""``nitedr_node``: the thin rclpy node around :class:`nitedr_ros.core.node_core.NodeCore`.

Everything that decides something lives in the core; this module only speaks rclpy:

- declares every parameter of ``core.parameters.SCHEMA`` with a ``ParameterDescriptor`` (description,
  constraints, read-only flag, integer/floating-point range) and forwards live changes to the core, which
  validates the whole change set (``add_on_set_parameters_callback``) and applies it all or nothing
  (``add_post_set_parameters_callback`` where rclpy has it; on Humble inside the validation callback);
- subscribes the mode's image topics (``rgb/image``, ``stereo/left/image``, ``stereo/right/image``,
  ``thermal/image``, or ``<topic>/compressed``) and their ``camera_info``: sensor-data QoS by default
  (best effort, keep last 1, REP-2003), set by ``qos.input.*``; publishes ``derained/rgb/image``,
  ``derained/left/image``, ``derained/right/image``, ``fused/image`` (+ ``camera_info``), reliable depth 1
  by default (``qos.output.*``); both also through the standard ``qos_overrides.<topic>.<entity>.<policy>``
  parameters (``QoSOverridingOptions.with_default_policies()``; every entity gets its own ``QoSProfile``,
  since rclpy applies the overrides to the profile object it is given); incompatible-QoS events are logged
  as errors and raise the ``qos`` diagnostics status to WARN; the ``input <stream>`` diagnostics name the
  resolved (remapped) topics;
- publishes ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``) from a timer in its own callback group
  and ``~/debug/{processing_time,inference_time,pipeline_latency}_ms`` (``std_msgs/Float64``);
- spins a ``MultiThreadedExecutor``: subscription callbacks only hand messages to the core; its worker
  thread runs the pipeline and publishes.

The node clock is the core's clock, so ``use_sim_time`` works (stale drops, latency, thermal timeout and
diagnostics all follow ``/clock``; nothing is dropped while sim time reads 0).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from diagnostic_msgs.msg import DiagnosticStatus as RosDiagnosticStatus
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    qos_policy_name_from_kind,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64

try:  # rclpy >= Iron
    from rclpy.event_handler import (
        PublisherEventCallbacks,
        SubscriptionEventCallbacks,
        UnsupportedEventTypeError,
    )
except ImportError:  # Humble
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks, UnsupportedEventTypeError

from nitedr_ros.core.diagnostics import DiagnosticStatus
from nitedr_ros.core.images import ArrayBuffers, ImageFields
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.parameters import (
    DEFAULT_NODE_NAME,
    SCHEMA,
    SCHEMA_BY_NAME,
    descriptor_fields,
    from_ros_value,
)
from nitedr_ros.core.topics import DEBUG_VALUES, DIAGNOSTICS_TOPIC, STATUS_VALUES, debug_topic
from nitedr_ros.errors import NitedrError

_RELIABILITY = {
    'best_effort': QoSReliabilityPolicy.BEST_EFFORT,
    'reliable': QoSReliabilityPolicy.RELIABLE,
    'system_default': QoSReliabilityPolicy.SYSTEM_DEFAULT,
}


def qos_profile(reliability: str, depth: int) -> QoSProfile:
    """Keep-last ``depth``, volatile, with the given reliability (sensor data = best effort, depth 1)."""
    return QoSProfile(
        history=QoSHistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_RELIABILITY[reliability],
        durability=QoSDurabilityPolicy.VOLATILE,
    )


def parameter_descriptor(name: str) -> ParameterDescriptor:
    """The ROS descriptor of one schema parameter."""
    fields = descriptor_fields(SCHEMA_BY_NAME[name])
    descriptor = ParameterDescriptor(
        name=name,
        type=getattr(ParameterType, fields['type']),
        description=fields['description'],
        additional_constraints=fields['additional_constraints'],
        read_only=fields['read_only'],
    )
    if 'integer_range' in fields:
        low, high = fields['integer_range']
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    if 'floating_point_range' in fields:
        low, high = fields['floating_point_range']
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    return descriptor


class _NodeClock:
    """The core's clock: the node's ROS clock (sim time aware; 0 before the first /clock)."""

    def __init__(self, node: Node) -> None:
        self._clock = node.get_clock()

    def now_ns(self) -> int:
        return self._clock.now().nanoseconds


class _RclpySink:
    """The core's output sink: rclpy publishers created by :class:`NitedrNode`.

    The pipeline writes each output image straight into an ``array.array('B')`` of this sink
    (:meth:`allocate_image`), which rclpy takes for ``uint8[]`` without a per-element check or another copy;
    the arrays are reused frame after frame (``publish`` serializes synchronously, from the one worker).
    """

    def __init__(self) -> None:
        self.images: dict[str, Any] = {}
        self.camera_infos: dict[str, Any] = {}
        self.diagnostics: Any = None
        self.debug: dict[str, Any] = {}
        self._buffers = ArrayBuffers()

    def allocate_image(self, output: str, shape: tuple[int, ...], dtype: Any) -> Any:
        return self._buffers.allocate(output, shape, dtype)

    def subscriber_count(self, output: str) -> int | None:
        publisher = self.images.get(output)
        return None if publisher is None else int(publisher.get_subscription_count())

    def publish_image(self, output: str, header: Any, image: ImageFields) -> None:
        msg = Image()
        msg.header = header
        msg.height = image.height
        msg.width = image.width
        msg.encoding = image.encoding
        msg.is_bigendian = image.is_bigendian
        msg.step = image.step
        # array.array('B') is rclpy's fast path; as_array() returns the array the pipeline wrote into (no
        # copy), or the input's own buffer for a pass-through (benchmarks/bench_node_overhead.py measures)
        msg.data = image.as_array()
        self.images[output].publish(msg)

    def publish_camera_info(self, output: str, header: Any, camera_info: Any) -> None:
        msg = CameraInfo()
        for field in CameraInfo.get_fields_and_field_types():
            setattr(msg, field, getattr(camera_info, field))
        msg.header = header
        self.camera_infos[output].publish(msg)

    def publish_diagnostics(self, statuses: list[DiagnosticStatus], stamp_ns: int) -> None:
        array = DiagnosticArray()
        array.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
        for status in statuses:
            array.status.append(
                RosDiagnosticStatus(
                    level=bytes([int(status.level)]),
                    name=status.name,
                    message=status.message,
                    hardware_id=status.hardware_id,
                    values=[KeyValue(key=k, value=v) for k, v in status.values],
                )
            )
        self.diagnostics.publish(array)

    def publish_debug(self, name: str, value: float) -> None:
        self.debug[name].publish(Float64(data=float(value)))


class NitedrNode(Node):
    """Declares parameters, owns publishers/subscriptions/timer, forwards everything to the core.

    ``pipeline`` injects a ready pipeline (tests); otherwise the core builds one from the parameters.
    Construct, then :meth:`start` (builds the pipeline, then subscribes).
    """

    def __init__(
        self, node_name: str = DEFAULT_NODE_NAME, *, pipeline: Any = None, **node_kwargs: Any
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        for spec in SCHEMA:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec.name))
        values = {spec.name: from_ros_value(spec, self.get_parameter(spec.name).value) for spec in SCHEMA}
        self._sink = _RclpySink()
        self.core = NodeCore(
            values,
            sink=self._sink,
            clock=_NodeClock(self),
            node_name=self.get_name(),
            pipeline=pipeline,
            own_timer=False,
            logger=self.get_logger(),
        )
        self.build_only = bool(values['build_only'])
        self._input_group = ReentrantCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._subscriptions_made: list[Any] = []
        self.topics_without_qos_events: list[str] = []  # the RMW reports no QoS events for these
        self._timer = None
        self._create_publishers(values)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self._two_phase = hasattr(self, 'add_post_set_parameters_callback')
        if self._two_phase:
            self.add_post_set_parameters_callback(self._apply_parameters)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the pipeline (engines) first, then subscribe and start the diagnostics timer."""
        self.core.start()
        if self.build_only:
            return
        self._create_subscriptions(self.core.params)
        self._timer = self.create_timer(
            self.core.diagnostics_period_s, self.core.publish_diagnostics, callback_group=self._timer_group
        )

    def shutdown(self) -> None:
        self.core.stop()

    # -- entities ---------------------------------------------------------------------------------------
    def _create_publishers(self, values: dict[str, Any]) -> None:
        qos = (values['qos.output.reliability'], values['qos.output.depth'])
        for output, topic in self.core.output_topics().items():
            self._sink.images[output] = self._publisher(Image, topic, *qos)
        if values['publish_camera_info']:
            for output, topic in self.core.output_camera_info_topics().items():
                self._sink.camera_infos[output] = self._publisher(CameraInfo, topic, *qos)
        self._sink.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 1)
        for name in (*DEBUG_VALUES, *STATUS_VALUES):
            self._sink.debug[name] = self.create_publisher(Float64, debug_topic(name), 1)

    def _create_subscriptions(self, values: dict[str, Any]) -> None:
        qos = (values['qos.input.reliability'], values['qos.input.depth'])
        image_type = CompressedImage if values['image_transport'] == 'compressed' else Image
        resolved = {}
        for stream, topic in self.core.input_topics().items():
            sub = self._subscribe(image_type, topic, lambda msg, s=stream: self.core.on_image(s, msg), *qos)
            resolved[stream] = getattr(sub, 'topic_name', None) or self.resolve_topic_name(topic)
        self.core.set_input_topic_names(resolved)
        for stream, topic in self.core.camera_info_topics().items():
            self._subscribe(CameraInfo, topic, lambda msg, s=stream: self.core.on_camera_info(s, msg), *qos)

    def _publisher(self, msg_type: Any, topic: str, reliability: str, depth: int) -> Any:
        events = PublisherEventCallbacks(incompatible_qos=lambda event, t=topic: self._incompatible(t, event))
        # a profile of its own: rclpy writes this topic's qos_overrides into the object it is given
        qos = qos_profile(reliability, depth)
        return self._with_qos_events(self.create_publisher, topic, events, msg_type, topic, qos)

    def _subscribe(self, msg_type: Any, topic: str, callback: Any, reliability: str, depth: int) -> Any:
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda event, t=topic: self._incompatible(t, event)
        )
        qos = qos_profile(reliability, depth)  # its own profile, as for publishers
        sub = self._with_qos_events(self.create_subscription, topic, events, msg_type, topic, callback, qos,
                                    callback_group=self._input_group)
        self._subscriptions_made.append(sub)
        return sub

    def _with_qos_events(self, create: Any, topic: str, events: Any, *args: Any, **kwargs: Any) -> Any:
        """``create(*args, **kwargs)`` with QoS overriding and the incompatible-QoS event callbacks; where
        the RMW reports no QoS events, without the callbacks (and a warning).

        rclpy declares the ``qos_overrides`` parameters and writes them into the profile before it creates
        the event handlers, so the retry passes the already overridden profile without overriding options
        (declaring the parameters twice would fail)."""
        try:
            return create(*args, event_callbacks=events,
                          qos_overriding_options=QoSOverridingOptions.with_default_policies(), **kwargs)
        except UnsupportedEventTypeError:
            self.topics_without_qos_events.append(topic)
            self.get_logger().warning(f'{topic}: this RMW reports no QoS events; mismatches will be silent')
            return create(*args, **kwargs)

    def _incompatible(self, topic: str, event: Any) -> None:
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        resolved = self.resolve_topic_name(topic)
        self.core.report_qos_event(resolved, f'{policy} (total {event.total_count})')

    # -- parameters -------------------------------------------------------------------------------------
    def _changes(self, parameters: list[Any]) -> dict[str, Any]:
        return {
            p.name: from_ros_value(SCHEMA_BY_NAME[p.name], p.value)
            for p in parameters
            if p.name in SCHEMA_BY_NAME
        }

    def _validate_parameters(self, parameters: list[Any]) -> SetParametersResult:
        changes = self._changes(parameters)
        if not changes:
            return SetParametersResult(successful=True)
        if self._two_phase:
            ok, reason = self.core.check_parameters(changes)
        else:  # Humble: no post-set callback; the core validates the whole set before applying any of it
            ok, reason = self.core.set_parameters(changes)
        if not ok:
            self.get_logger().warning(f'parameter change rejected: {reason}')
        return SetParametersResult(successful=ok, reason=reason)

    def _apply_parameters(self, parameters: list[Any]) -> None:
        changes = self._changes(parameters)
        if changes:
            ok, reason = self.core.set_parameters(changes)
            if not ok:  # cannot happen after a successful validation of the same set; say so if it does
                self.get_logger().error(f'validated parameter change failed to apply: {reason}')


class _Interrupts:
    """SIGINT/SIGTERM handler: the first one stops spinning (KeyboardInterrupt); later ones (Ctrl-C in a
    terminal reaches ``ros2 launch`` and the node, and launch forwards one more) are ignored once shutdown
    has begun, so they cannot break the shutdown itself."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: Any) -> None:
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Console script ``nitedr_node`` (``ros2 run nitedr_ros nitedr_node --ros-args ...``).

    Shutdown order (Ctrl-C, SIGTERM from ``ros2 launch``, systemd or ``docker stop``): the node handles the
    signals itself instead of rclpy, so the core stops first (the worker finishes the sets already made and
    publishes them while the context is valid; what it cannot finish is counted), then the executor, the
    node and rclpy go down.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    interrupts = _Interrupts()
    previous = {sig: signal.signal(sig, interrupts) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = None
    executor = None
    code = 0
    try:
        node = NitedrNode()
        node.start()
        if node.build_only:
            node.get_logger().info('build_only: engines are built and cached; exiting')
            return 0
        executor = MultiThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except NitedrError as exc:
        message = f'nitedr_node: {exc}'
        if node is not None:
            node.get_logger().fatal(message)
        else:
            print(message, file=sys.stderr)
        code = 2
    finally:
        interrupts.stopping = True
        if node is not None:
            node.shutdown()  # publishes what is pending: the context is still valid here
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


if __name__ == '__main__':
    sys.exit(main())
