"""A ROS-2-compatible DDS participant on Eclipse Cyclone DDS, without rclpy.

``DdsNode`` creates publishers and subscriptions by ROS topic name and ROS message type, with the ROS 2
wire conventions: DDS topic ``rt/<fully qualified name>``, type ``pkg::msg::dds_::Type_``, XCDR1 payloads
from :mod:`.cdr` written and taken raw (no per-element Python work), ROS QoS profiles, and the RIHS01
type hash in USER_DATA. Received samples are dispatched to callbacks from one reader thread.

The raw write/take uses ``cyclonedds._clayer`` (``ddspy_write`` takes any buffer, ``ddspy_take`` returns
the serialized sample with its encapsulation header): private API of cyclonedds-python, pinned by the
package's tests; the IDL classes from :mod:`.idl` only give the topics their type.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclonedds import _clayer
from cyclonedds.core import (
    GuardCondition,
    InstanceState,
    Listener,
    ReadCondition,
    SampleState,
    ViewState,
    WaitSet,
)
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from ...errors import ConfigError
from ...paths import DDS_LOOPBACK_CONFIG
from .cdr import CodecCache
from .idl import IdlTypes, type_hash_user_data
from .names import NameResolver, dds_topic_name

log = logging.getLogger(__name__)

_ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 16
# DDS QoS policy ids (DDS 1.4, table 2.2.3) of the policies that can make endpoints incompatible
_POLICY_NAMES = {2: 'DURABILITY', 3: 'PRESENTATION', 4: 'DEADLINE', 5: 'LATENCY_BUDGET', 6: 'OWNERSHIP',
                 8: 'LIVELINESS', 11: 'RELIABILITY', 12: 'DESTINATION_ORDER', 23: 'DATA_REPRESENTATION',
                 24: 'TYPE_CONSISTENCY'}

QosEventCallback = Callable[[str, str], None]

# Cyclone's ports for domain d start at 7400 + 250 d; above domain 101 they fall into Linux's ephemeral port
# range (32768-60999), where any outgoing connection may already hold them.
MAX_SAFE_DOMAIN = 101


def private_domain_id(offset: int = 0) -> int:
    """A DDS domain in 1..101 derived from this process id (+ ``offset``): private to one demo or test run,
    never 0 (where real ROS 2 graphs live by default), never in the ephemeral port range."""
    return 1 + (os.getpid() + offset) % MAX_SAFE_DOMAIN


def _incompatible_listener(topic: str, side: str, callback: QosEventCallback | None) -> Listener | None:
    """A Cyclone listener reporting incompatible-QoS events of one endpoint as (topic, description)."""
    if callback is None:
        return None

    def report(_entity: Any, status: Any) -> None:
        policy = _POLICY_NAMES.get(int(status.last_policy_id), f'policy {status.last_policy_id}')
        peer = 'publisher' if side == 'subscription' else 'subscription'
        callback(topic, f'{side} and a {peer} disagree on {policy} '
                        f'({status.total_count} incompatible peer(s) so far)')

    if side == 'subscription':
        return Listener(on_requested_incompatible_qos=report)
    return Listener(on_offered_incompatible_qos=report)


def select_dds_config(config: str | os.PathLike[str] | None = None) -> str:
    """Choose the Cyclone configuration before the first participant exists and return it.

    An explicit file wins; else an existing ``CYCLONEDDS_URI`` is kept; else the shipped loopback-only,
    large-sample configuration is used.
    """
    if config:
        path = Path(config).expanduser()
        if not path.is_file():
            raise ConfigError(f'Cyclone DDS configuration file not found: {path}')
        os.environ['CYCLONEDDS_URI'] = path.resolve().as_uri()
    elif not os.environ.get('CYCLONEDDS_URI'):
        os.environ['CYCLONEDDS_URI'] = DDS_LOOPBACK_CONFIG.as_uri()
    return os.environ['CYCLONEDDS_URI']


def default_typestore() -> Any:
    """The message definitions the runtime speaks by default (ROS 2 Jazzy; same hashes as Iron/Kilted)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


@dataclass(frozen=True)
class QosProfile:
    """The ROS QoS settings a DDS endpoint needs here (history is always KEEP_LAST)."""

    reliability: str = 'reliable'  # reliable | best_effort
    depth: int = 10
    durability: str = 'volatile'  # volatile | transient_local

    def __post_init__(self) -> None:
        if self.reliability not in ('reliable', 'best_effort'):
            raise ConfigError(f'QoS reliability must be reliable or best_effort, got {self.reliability!r}')
        if self.durability not in ('volatile', 'transient_local'):
            raise ConfigError(f'QoS durability must be volatile or transient_local, got {self.durability!r}')
        if self.depth < 1:
            raise ConfigError(f'QoS depth must be at least 1, got {self.depth}')

    def to_cyclone(self, user_data: bytes | None = None) -> Qos:
        reliability = (Policy.Reliability.Reliable(max_blocking_time=100_000_000)
                       if self.reliability == 'reliable' else Policy.Reliability.BestEffort)
        durability = (Policy.Durability.TransientLocal if self.durability == 'transient_local'
                      else Policy.Durability.Volatile)
        policies = [reliability, durability, Policy.History.KeepLast(self.depth),
                    Policy.DataRepresentation(use_cdrv0_representation=True)]
        if user_data:
            policies.append(Policy.Userdata(user_data))
        return Qos(*policies)


SENSOR_DATA = QosProfile('best_effort', 5)  # rmw_qos_profile_sensor_data
RELIABLE = QosProfile('reliable', 10)  # rmw_qos_profile_default
CLOCK = QosProfile('best_effort', 1)  # rclcpp ClockQoS


def qos_from_name(name: str, depth: int | None = None) -> QosProfile:
    """``sensor_data`` | ``default`` | ``reliable`` | ``best_effort`` (+ optional depth) -> profile."""
    base = {'sensor_data': SENSOR_DATA, 'default': RELIABLE, 'system_default': RELIABLE,
            'reliable': RELIABLE, 'best_effort': SENSOR_DATA}.get(name)
    if base is None:
        raise ConfigError(f'unknown QoS profile {name!r}; '
                          'choose sensor_data, default, reliable or best_effort')
    return QosProfile(base.reliability, depth or base.depth, base.durability)


def _ros_endpoint(entity_type: Any, node: DdsNode, topic: str, msgtype: str, qos: QosProfile,
                  side: str) -> tuple[Any, Listener | None]:
    """A DataWriter or DataReader on ``rt/<topic>`` with the type hash in USER_DATA, and its incompatible-QoS
    listener (kept by the caller, so that it lives as long as the entity)."""
    listener = _incompatible_listener(topic, side, node.qos_event_callback)
    user_data = type_hash_user_data(node.typestore, msgtype)
    entity = entity_type(node.participant, node.dds_topic(topic, msgtype), qos=qos.to_cyclone(user_data),
                         listener=listener)
    return entity, listener


class RosPublisher:
    """A DDS writer on ``rt/<topic>`` for one ROS message type."""

    def __init__(self, node: DdsNode, topic: str, msgtype: str, qos: QosProfile) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self._codec = node.codecs.get(msgtype)
        self._writer, self._listener = _ros_endpoint(DataWriter, node, topic, msgtype, qos, 'publisher')
        self._ref = self._writer._ref

    def publish(self, msg: Any) -> None:
        self.publish_raw(self._codec.encode(msg))

    def publish_raw(self, payload: bytes | bytearray | memoryview) -> None:
        """Write an already serialized XCDR1 payload (encapsulation header included)."""
        ret = _clayer.ddspy_write(self._ref, payload)
        if ret < 0:
            raise RuntimeError(f'DDS write on {self.topic} failed with return code {ret}')

    def matched_count(self) -> int:
        return len(self._writer.get_matched_subscriptions())


Callback = Callable[[Any, int], None]  # (message or raw payload, receive time ns)
BadPayloadCallback = Callable[[str], None]  # (what is wrong with a sample that could not be decoded)


class RosSubscription:
    """A DDS reader on ``rt/<topic>``; its callback gets (message or raw payload, receive time ns).

    A sample that cannot be decoded is counted (``bad_payloads``), logged and handed to ``on_bad_payload``
    (problem text) so that the node can count it in its diagnostics.
    """

    def __init__(self, node: DdsNode, topic: str, msgtype: str, qos: QosProfile, callback: Callback,
                 raw: bool = False, on_bad_payload: BadPayloadCallback | None = None) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self.callback = callback
        self.raw = raw
        self.on_bad_payload = on_bad_payload
        self.received = 0
        self.bad_payloads = 0
        self.callback_errors = 0
        self._codec = node.codecs.get(msgtype)
        self._reader, self._listener = _ros_endpoint(DataReader, node, topic, msgtype, qos, 'subscription')
        self._ref = self._reader._ref
        self.condition = ReadCondition(self._reader, _ANY_STATE)

    def matched_count(self) -> int:
        return len(self._reader.get_matched_publications())

    def take_and_dispatch(self) -> int:
        samples = _clayer.ddspy_take(self._ref, _ANY_STATE, _TAKE_BATCH)
        if isinstance(samples, int):
            raise RuntimeError(f'DDS take on {self.topic} failed with return code {samples}')
        now = time.time_ns()
        for payload, info in samples:
            if not info.valid_data:  # dispose/unregister: key-only, no message
                continue
            self.received += 1
            if self.raw:
                msg = payload
            else:
                try:
                    msg = self._codec.decode(payload)
                except Exception as exc:  # noqa: BLE001 - a bad sample never stops the reader thread
                    self.bad_payloads += 1
                    log.warning('dropped an undecodable sample on %s: %s', self.topic, exc)
                    self._report_bad(f'undecodable {self.msgtype} sample ({len(payload)} bytes): {exc}')
                    continue
            try:
                self.callback(msg, now)
            except Exception:  # a failing callback is logged and counted; the reader thread goes on
                self.callback_errors += 1
                log.exception('callback for %s failed', self.topic)
        return len(samples)

    def _report_bad(self, problem: str) -> None:
        if self.on_bad_payload is None:
            return
        try:
            self.on_bad_payload(problem)
        except Exception:  # reporting must not stop the reader thread either
            self.callback_errors += 1
            log.exception('bad-payload report for %s failed', self.topic)


class DdsNode:
    """One DDS participant speaking ROS 2: publishers, subscriptions, a reader thread."""

    def __init__(self, name: str = 'nitedr', namespace: str = '/', *, domain_id: int | None = None,
                 remaps: list[str] | tuple[str, ...] = (), typestore: Any = None,
                 dds_config: str | None = None, qos_event_callback: QosEventCallback | None = None) -> None:
        select_dds_config(dds_config)
        if domain_id is None:
            domain_id = int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
        if not 0 <= domain_id <= 232:
            raise ConfigError(f'DDS domain id must be 0..232, got {domain_id}')
        self.names = NameResolver.from_rules(namespace, name, remaps)
        self.typestore = typestore or default_typestore()
        self.codecs = CodecCache(self.typestore)
        self.idl = IdlTypes(self.typestore)
        self.domain_id = domain_id
        self.qos_event_callback = qos_event_callback  # (topic, description) on incompatible QoS
        self.participant = DomainParticipant(domain_id)
        self._topics: dict[str, tuple[Topic, str]] = {}
        self._subscriptions: list[RosSubscription] = []
        self._waitset = WaitSet(self.participant)
        self._wakeup = GuardCondition(self.participant)
        self._waitset.attach(self._wakeup)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- entities ---------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        return self.names.resolve(name)

    def dds_topic(self, ros_name: str, msgtype: str) -> Topic:
        dds_name = dds_topic_name(ros_name)
        known = self._topics.get(dds_name)
        if known is not None:
            if known[1] != msgtype:
                raise ConfigError(f'topic {ros_name} is already used with type {known[1]}, not {msgtype}')
            return known[0]
        topic = Topic(self.participant, dds_name, self.idl.get(msgtype))
        self._topics[dds_name] = (topic, msgtype)
        return topic

    def create_publisher(self, name: str, msgtype: str, qos: QosProfile = RELIABLE) -> RosPublisher:
        return RosPublisher(self, self.resolve(name), msgtype, qos)

    def create_subscription(self, name: str, msgtype: str, callback: Callback,
                            qos: QosProfile = SENSOR_DATA, raw: bool = False,
                            on_bad_payload: BadPayloadCallback | None = None) -> RosSubscription:
        subscription = RosSubscription(self, self.resolve(name), msgtype, qos, callback, raw, on_bad_payload)
        with self._lock:
            self._subscriptions.append(subscription)
            self._waitset.attach(subscription.condition)
        self._wakeup.set(True)
        return subscription

    # -- reader thread ----------------------------------------------------------------------------
    def spin_once(self, timeout_s: float = 0.1) -> int:
        """Wait up to ``timeout_s`` for samples and dispatch them; returns how many were taken."""
        self._waitset.wait(int(timeout_s * 1e9))
        self._wakeup.set(False)
        with self._lock:
            subscriptions = list(self._subscriptions)
        taken = 0
        for subscription in subscriptions:
            while True:
                count = subscription.take_and_dispatch()
                taken += count
                if count < _TAKE_BATCH:
                    break
        return taken

    def start(self) -> None:
        """Dispatch received samples from a background thread until ``close``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._spin, name='nitedr-dds-reader', daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.spin_once(0.2)

    def wait_for_matches(self, endpoints: list[RosPublisher | RosSubscription], timeout_s: float) -> bool:
        """Wait until each endpoint has at least one matched peer (discovery); True if all did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(endpoint.matched_count() > 0 for endpoint in endpoints):
                return True
            time.sleep(0.02)
        return all(endpoint.matched_count() > 0 for endpoint in endpoints)

    def close(self) -> None:
        self._stop.set()
        self._wakeup.set(True)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
