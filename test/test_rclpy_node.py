"""The rclpy node (nitedr_node).

Everywhere: the module parses, imports only rclpy/ROS message packages besides nitedr_ros and the standard
library, declares exactly the core schema, and its wiring works against minimal stand-ins of the rclpy API
(this checks our code paths, not rclpy itself). Where rclpy is installed: a real in-process node test
(publish synthetic frames, outputs keep the input stamps, diagnostics appear, parameter changes are
validated as a whole). The launch_testing test of the installed executable is test_launch_node_ros.py.
"""

from __future__ import annotations

import ast
import importlib
import logging
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from nitedr_ros.core.clock import ManualClock
from nitedr_ros.core.parameters import SCHEMA, SCHEMA_BY_NAME, TYPES, descriptor_fields
from nitedr_ros.core.testing import PassthroughPipeline, make_image, pattern_image

NODE_FILE = Path(__file__).resolve().parents[1] / 'nitedr_ros' / 'transports' / 'rclpy_node.py'
ROS_PACKAGES = {'rclpy', 'rcl_interfaces', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs'}
STDLIB = {'__future__', 'signal', 'sys', 'typing'}
PARAMETER_TYPE_CONSTANTS = {
    'PARAMETER_BOOL',
    'PARAMETER_INTEGER',
    'PARAMETER_DOUBLE',
    'PARAMETER_STRING',
    'PARAMETER_INTEGER_ARRAY',
    'PARAMETER_DOUBLE_ARRAY',
    'PARAMETER_STRING_ARRAY',
}


def _tree() -> ast.Module:
    return ast.parse(NODE_FILE.read_text(), filename=str(NODE_FILE))


def test_node_module_parses_and_imports_only_ros_stdlib_and_nitedr():
    roots = set()
    for node in ast.walk(_tree()):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or '').split('.')[0])
    assert roots <= ROS_PACKAGES | STDLIB | {'nitedr_ros'}, roots
    assert {'rclpy', 'sensor_msgs', 'diagnostic_msgs', 'std_msgs', 'rcl_interfaces'} <= roots


def test_parameters_are_declared_from_the_core_schema_only():
    tree = _tree()
    declare_calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == 'declare_parameter'
    ]
    assert len(declare_calls) == 1
    (call,) = declare_calls
    assert ast.unparse(call.args[0]) == 'spec.name' and ast.unparse(call.args[1]) == 'spec.default'
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For) and ast.unparse(n.iter) == 'SCHEMA']
    assert any(call in list(ast.walk(loop)) for loop in loops)


def test_descriptor_fields_cover_every_schema_parameter():
    assert {f'PARAMETER_{t.upper()}' for t in TYPES} == PARAMETER_TYPE_CONSTANTS
    for spec in SCHEMA:
        fields = descriptor_fields(spec)
        assert fields['type'] in PARAMETER_TYPE_CONSTANTS
        assert fields['read_only'] == (not spec.dynamic)
        assert fields['description'] == spec.description
        if spec.range is not None and spec.type in ('integer', 'double'):
            assert ('integer_range' in fields) == (spec.type == 'integer')
            assert ('floating_point_range' in fields) == (spec.type == 'double')
    assert descriptor_fields(SCHEMA_BY_NAME['sync.slop'])['floating_point_range'] == (0.0, 10.0)
    assert descriptor_fields(SCHEMA_BY_NAME['sync.queue_size'])['integer_range'] == (1, 1000)


# -- wiring against stand-ins of the rclpy API ----------------------------------------------------------
class _Recorder:
    def __init__(self, kind, msg_type, topic, qos, kwargs):
        self.kind, self.msg_type, self.topic, self.qos, self.kwargs = kind, msg_type, topic, qos, kwargs
        self.published = []

    def publish(self, msg):
        self.published.append(msg)


def _message_class(name, fields):
    def init(self, **kwargs):
        for field, default in fields.items():
            setattr(self, field, kwargs.get(field, default() if callable(default) else default))

    cls = type(name, (), {'__init__': init})
    cls.get_fields_and_field_types = classmethod(lambda c: dict.fromkeys(fields, 'x'))
    return cls


def _stub_modules(clock: ManualClock) -> dict[str, types.ModuleType]:
    mods = {
        name: types.ModuleType(name)
        for name in [
            'rclpy',
            'rclpy.node',
            'rclpy.callback_groups',
            'rclpy.executors',
            'rclpy.qos',
            'rclpy.qos_overriding_options',
            'rclpy.time',
            'rclpy.event_handler',
            'rclpy.signals',
            'rcl_interfaces',
            'rcl_interfaces.msg',
            'sensor_msgs',
            'sensor_msgs.msg',
            'std_msgs',
            'std_msgs.msg',
            'diagnostic_msgs',
            'diagnostic_msgs.msg',
        ]
    }

    class Node:
        def __init__(self, name, parameter_overrides=(), **kwargs):
            self._name = name
            self._overrides = dict(parameter_overrides)
            self.params, self.descriptors, self.entities, self.timers = {}, {}, [], []
            self.qos_params = {}
            self.on_set, self.post_set = [], []

        def declare_parameter(self, name, value, descriptor):
            self.params[name] = self._overrides.get(name, value)
            self.descriptors[name] = descriptor

        def get_parameter(self, name):
            return types.SimpleNamespace(value=self.params[name])

        def get_name(self):
            return self._name

        def get_logger(self):
            return logging.getLogger('stub_node')

        def get_clock(self):
            return types.SimpleNamespace(now=lambda: types.SimpleNamespace(nanoseconds=clock.now_ns()))

        events_supported = True  # False: the RMW has no QoS events (rclpy raises after declaring)

        def _declare_qos_overrides(self, kind, topic, qos, kwargs):
            """What rclpy's _declare_qos_parameters does: declare the overrides, write them into ``qos``."""
            if kwargs.get('qos_overriding_options') is None:
                return
            for policy in ('reliability', 'depth'):
                name = f'qos_overrides.{self.resolve_topic_name(topic)}.{kind}.{policy}'
                if name in self.qos_params:
                    raise RuntimeError(f'parameter {name} already declared')
                self.qos_params[name] = self._overrides.get(name, getattr(qos, policy))
                setattr(qos, policy, self.qos_params[name])  # in place, as rclpy does
            if kwargs.get('event_callbacks') is not None and not self.events_supported:
                raise mods['rclpy.event_handler'].UnsupportedEventTypeError('no QoS events here')

        def create_publisher(self, msg_type, topic, qos, **kwargs):
            if not isinstance(qos, int):
                self._declare_qos_overrides('publisher', topic, qos, kwargs)
            self.entities.append(_Recorder('pub', msg_type, topic, qos, kwargs))
            return self.entities[-1]

        def create_subscription(self, msg_type, topic, callback, qos, **kwargs):
            self._declare_qos_overrides('subscription', topic, qos, kwargs)
            self.entities.append(_Recorder('sub', msg_type, topic, qos, dict(kwargs, callback=callback)))
            return self.entities[-1]

        def create_timer(self, period, callback, callback_group=None):
            self.timers.append((period, callback))

        def add_on_set_parameters_callback(self, callback):
            self.on_set.append(callback)

        def add_post_set_parameters_callback(self, callback):
            self.post_set.append(callback)

        def resolve_topic_name(self, topic):
            return '/' + topic

        def set(self, **changes):  # what rclpy does on `ros2 param set`
            params = [types.SimpleNamespace(name=k, value=v) for k, v in changes.items()]
            result = self.on_set[0](params)
            if result.successful:
                self.params.update(changes)
                for callback in self.post_set:
                    callback(params)
            return result

    mods['rclpy.node'].Node = Node
    mods['rclpy'].init = mods['rclpy'].try_shutdown = lambda **kwargs: None
    mods['rclpy.callback_groups'].MutuallyExclusiveCallbackGroup = object
    mods['rclpy.callback_groups'].ReentrantCallbackGroup = object
    mods['rclpy.executors'].ExternalShutdownException = type('ExternalShutdownException', (Exception,), {})
    mods['rclpy.executors'].MultiThreadedExecutor = object
    qos = mods['rclpy.qos']
    qos.QoSProfile = lambda **kwargs: types.SimpleNamespace(**kwargs)
    qos.QoSReliabilityPolicy = types.SimpleNamespace(
        BEST_EFFORT='best_effort', RELIABLE='reliable', SYSTEM_DEFAULT='system_default'
    )
    qos.QoSHistoryPolicy = types.SimpleNamespace(KEEP_LAST='keep_last')
    qos.QoSDurabilityPolicy = types.SimpleNamespace(VOLATILE='volatile')
    qos.qos_policy_name_from_kind = lambda kind: f'POLICY_{kind}'
    mods['rclpy.qos_overriding_options'].QoSOverridingOptions = types.SimpleNamespace(
        with_default_policies=lambda: 'default-policies'
    )
    mods['rclpy.time'].Time = lambda nanoseconds: types.SimpleNamespace(to_msg=lambda: nanoseconds)
    mods['rclpy.signals'].SignalHandlerOptions = types.SimpleNamespace(NO=0, ALL=1)
    handlers = mods['rclpy.event_handler']
    handlers.PublisherEventCallbacks = handlers.SubscriptionEventCallbacks = lambda incompatible_qos: (
        types.SimpleNamespace(incompatible_qos=incompatible_qos)
    )
    handlers.UnsupportedEventTypeError = type('UnsupportedEventTypeError', (Exception,), {})
    msg = mods['rcl_interfaces.msg']
    msg.ParameterDescriptor = _message_class(
        'ParameterDescriptor',
        {
            'name': '',
            'type': 0,
            'description': '',
            'additional_constraints': '',
            'read_only': False,
            'integer_range': list,
            'floating_point_range': list,
        },
    )
    msg.ParameterType = types.SimpleNamespace(**{c: c for c in PARAMETER_TYPE_CONSTANTS})
    msg.IntegerRange = _message_class('IntegerRange', {'from_value': 0, 'to_value': 0, 'step': 0})
    msg.FloatingPointRange = _message_class(
        'FloatingPointRange', {'from_value': 0.0, 'to_value': 0.0, 'step': 0.0}
    )
    msg.SetParametersResult = _message_class('SetParametersResult', {'successful': False, 'reason': ''})
    header = lambda: types.SimpleNamespace(stamp=None, frame_id='')  # noqa: E731
    sensor = mods['sensor_msgs.msg']
    sensor.Image = _message_class(
        'Image',
        {
            'header': header,
            'height': 0,
            'width': 0,
            'encoding': '',
            'is_bigendian': 0,
            'step': 0,
            'data': b'',
        },
    )
    sensor.CompressedImage = _message_class('CompressedImage', {'header': header, 'format': '', 'data': b''})
    sensor.CameraInfo = _message_class('CameraInfo', {'header': header, 'height': 0, 'width': 0, 'k': list})
    mods['std_msgs.msg'].Float64 = _message_class('Float64', {'data': 0.0})
    diag = mods['diagnostic_msgs.msg']
    diag.DiagnosticArray = _message_class('DiagnosticArray', {'header': header, 'status': list})
    diag.DiagnosticStatus = _message_class(
        'DiagnosticStatus', {'level': b'\x00', 'name': '', 'message': '', 'hardware_id': '', 'values': list}
    )
    diag.KeyValue = _message_class('KeyValue', {'key': '', 'value': ''})
    return mods


@pytest.fixture
def stub_node_module(monkeypatch):
    clock = ManualClock(5_000_000_000)
    for name, module in _stub_modules(clock).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, 'nitedr_ros.transports.rclpy_node', raising=False)
    module = importlib.import_module('nitedr_ros.transports.rclpy_node')
    yield module, clock
    sys.modules.pop('nitedr_ros.transports.rclpy_node', None)


def test_node_wiring_with_rclpy_stand_ins(stub_node_module):
    module, clock = stub_node_module
    pipeline = PassthroughPipeline()
    node = module.NitedrNode(
        pipeline=pipeline, parameter_overrides=[('mode', 'single'), ('max_input_age_ms', 0.0)]
    )
    assert set(node.params) == set(SCHEMA_BY_NAME)
    slop = node.descriptors['sync.slop']
    assert slop.read_only is False and slop.floating_point_range[0].to_value == 10.0
    assert node.descriptors['mode'].read_only is True
    node.start()
    subs = {e.topic: e for e in node.entities if e.kind == 'sub'}
    pubs = {e.topic: e for e in node.entities if e.kind == 'pub'}
    assert set(subs) == {'rgb/image', 'rgb/camera_info'}
    assert subs['rgb/image'].qos.reliability == 'best_effort' and subs['rgb/image'].qos.depth == 1
    assert subs['rgb/image'].kwargs['qos_overriding_options'] == 'default-policies'
    assert {
        'derained/rgb/image',
        'derained/rgb/camera_info',
        '/diagnostics',
        '~/debug/processing_time_ms',
    } <= set(pubs)
    assert pubs['derained/rgb/image'].qos.reliability == 'reliable'
    assert node.timers and node.timers[0][0] == 1.0

    info = module.CameraInfo(k=[1.0] * 9)
    subs['rgb/camera_info'].kwargs['callback'](info)
    image = make_image(pattern_image(4, 6, 'rgb8'), 'rgb8', 4_990_000_000, 'cam')
    subs['rgb/image'].kwargs['callback'](image)
    assert node.core.wait_idle(10)
    (out,) = pubs['derained/rgb/image'].published
    assert out.header is image.header and out.encoding == 'rgb8'
    assert bytes(out.data) == bytes(image.data)
    (out_info,) = pubs['derained/rgb/camera_info'].published
    assert out_info.header is image.header and out_info.k == info.k and info.header is not image.header

    node.timers[0][1]()  # diagnostics timer
    (array,) = pubs['/diagnostics'].published
    assert array.header.stamp == clock.now_ns()
    assert [s.name for s in array.status][:2] == ['nitedr_node: input rgb', 'nitedr_node: sync']
    assert all(isinstance(s.level, bytes) and len(s.level) == 1 for s in array.status)

    sub_events = subs['rgb/image'].kwargs['event_callbacks']
    sub_events.incompatible_qos(types.SimpleNamespace(last_policy_kind=7, total_count=1))
    assert node.core.stats.qos_events == {'/rgb/image': (1, 'POLICY_7 (total 1)')}

    rejected = node.set(**{'sync.slop': 0.02, 'max_input_age_ms': -1.0})
    assert not rejected.successful and 'max_input_age_ms' in rejected.reason
    assert node.core.params['sync.slop'] == 0.015  # nothing half-applied
    assert not node.set(mode='stereo').successful
    assert node.set(**{'sync.slop': 0.02, 'use_sim_time': True}).successful
    assert node.core.params['sync.slop'] == 0.02
    node.shutdown()


# -- real rclpy ---------------------------------------------------------------------------------------
def _ros_or_skip():
    pytest.importorskip('rclpy')
    pytest.importorskip('sensor_msgs.msg')
    pytest.importorskip('diagnostic_msgs.msg')


def test_real_node_keeps_input_stamps_and_publishes_diagnostics():
    _ros_or_skip()
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from nitedr_ros.transports.rclpy_node import NitedrNode

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = NitedrNode(
            pipeline=PassthroughPipeline(),
            context=context,
            parameter_overrides=[
                Parameter('mode', value='single'),
                Parameter('diagnostics.period', value=0.2),
            ],
        )
        node.start()
        tester = rclpy.create_node('nitedr_tester', context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        publisher = tester.create_publisher(Image, 'rgb/image', reliable)
        received, diagnostics = [], []
        tester.create_subscription(Image, 'derained/rgb/image', received.append, reliable)
        tester.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        executor = MultiThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(tester)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        sent = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (len(received) < 3 or not diagnostics):
            stamp_ns = tester.get_clock().now().nanoseconds
            msg = make_image(pattern_image(8, 8, 'rgb8'), 'rgb8', 0)
            ros_msg = Image(
                height=msg.height, width=msg.width, encoding=msg.encoding, step=msg.step, data=msg.data
            )
            ros_msg.header.stamp.sec, ros_msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            ros_msg.header.frame_id = 'camera'
            publisher.publish(ros_msg)
            sent.append((ros_msg.header.stamp.sec, ros_msg.header.stamp.nanosec))
            time.sleep(0.05)
        assert len(received) >= 3, 'no derained images received'
        for out in received:
            assert (out.header.stamp.sec, out.header.stamp.nanosec) in sent
            assert out.header.frame_id == 'camera' and out.encoding == 'rgb8'
        assert diagnostics, 'no /diagnostics received'
        names = {s.name for array in diagnostics for s in array.status}
        assert {'nitedr_node: input rgb', 'nitedr_node: latency', 'nitedr_node: pipeline'} <= names
        result = node.set_parameters_atomically(
            [Parameter('sync.slop', value=0.02), Parameter('max_input_age_ms', value=-1.0)]
        )
        assert not result.successful
        assert node.core.params['sync.slop'] == 0.015  # nothing half-applied
        assert node.set_parameters_atomically([Parameter('sync.slop', value=0.02)]).successful
        assert node.core.params['sync.slop'] == 0.02
        executor.shutdown()
        node.shutdown()
        node.destroy_node()
        tester.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_every_entity_has_its_own_qos_profile_so_overrides_stay_per_topic(stub_node_module):
    module, _ = stub_node_module
    overrides = [
        ('mode', 'nitedr'),
        ('qos_overrides./rgb/image.subscription.reliability', 'reliable'),
        ('qos_overrides./rgb/image.subscription.depth', 5),
        ('qos_overrides./derained/rgb/image.publisher.depth', 7),
    ]
    node = module.NitedrNode(pipeline=PassthroughPipeline(), parameter_overrides=overrides)
    node.start()
    made = [e for e in node.entities if not isinstance(e.qos, int)]
    assert len({id(e.qos) for e in made}) == len(made) == 8  # 4 publishers, 4 subscriptions
    qos = {(e.kind, e.topic): (e.qos.reliability, e.qos.depth) for e in made}
    assert qos[('sub', 'rgb/image')] == ('reliable', 5)
    assert qos[('sub', 'thermal/image')] == ('best_effort', 1)  # created after rgb/image: unaffected
    assert qos[('sub', 'rgb/camera_info')] == qos[('sub', 'thermal/camera_info')] == ('best_effort', 1)
    assert qos[('pub', 'derained/rgb/image')] == ('reliable', 7)
    assert qos[('pub', 'fused/image')] == qos[('pub', 'derained/rgb/camera_info')] == ('reliable', 1)
    node.shutdown()


def test_an_rmw_without_qos_events_still_gets_the_overrides(stub_node_module):
    module, _ = stub_node_module
    module.NitedrNode.events_supported = False  # the stub class (the module is reloaded per test)
    overrides = [('mode', 'single'), ('qos_overrides./rgb/image.subscription.depth', 3)]
    node = module.NitedrNode(pipeline=PassthroughPipeline(), parameter_overrides=overrides)
    node.start()
    subs = {e.topic: e for e in node.entities if e.kind == 'sub'}
    assert subs['rgb/image'].qos.depth == 3 and 'event_callbacks' not in subs['rgb/image'].kwargs
    # what the node knows (not a log record: launch stops loggers from propagating under ROS)
    assert {'rgb/image', 'derained/rgb/image'} <= set(node.topics_without_qos_events)
    node.shutdown()


def test_input_diagnostics_name_the_resolved_topics(stub_node_module):
    module, clock = stub_node_module
    node = module.NitedrNode(pipeline=PassthroughPipeline(), parameter_overrides=[('mode', 'stereo')])
    node.start()
    statuses = {s.name: s for s in node.core.statuses(clock.now_ns())}
    assert statuses['nitedr_node: input left'].value('topic') == '/stereo/left/image'
    assert statuses['nitedr_node: input right'].value('topic') == '/stereo/right/image'
    node.shutdown()
