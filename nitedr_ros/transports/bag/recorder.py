"""``nitedr bag record``: write what arrives on ROS 2 topics over DDS into a rosbag2, as ``ros2 bag record``.

Topics are discovered: the recorder watches DDS publications (``rt/<topic>``, type ``pkg::msg::dds_::T_``)
and subscribes to each requested topic (or all, with ``topics=()``) with the type its publisher announces
and, as ``ros2 bag record`` does, the reliability and durability that publisher offers (a reliable reader
never matches a best-effort writer); a fixed ``qos`` overrides that, and a publisher it cannot match is
reported (logged, ``RecordStats.qos_mismatches``) instead of being missed silently.
Payloads are stored exactly as received (ROS 2 CDR); the bag time of a message is its receive time (wall
clock), as rosbag2 does. The bag is written under a temporary name and renamed when recording stops
(``stop()``, a signal, ``duration_s`` or ``idle_s``), so an interrupted process leaves no partial bag.
When a requested topic first has a publisher matched, ``on_matched(topic)`` is called (the demo and the
end-to-end test wait for these before they start the player).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
from cyclonedds.qos import Policy

from ..dds.idl import ros_type_from_dds
from ..dds.names import ros_topic_name
from ..dds.participant import SENSOR_DATA, DdsNode, QosProfile
from .writer import AtomicBagWriter, ros2_typestore

log = logging.getLogger(__name__)

# deep reader history: the recorder must not lose samples that arrive while it writes to disk
RECORD_DEPTH = 100
RECORD_QOS = QosProfile('reliable', RECORD_DEPTH)


def offered_qos(endpoint_qos: Any, depth: int = RECORD_DEPTH) -> QosProfile:
    """The reader QoS that matches a discovered publication: its reliability and durability."""
    reliability = 'reliable'
    durability = 'volatile'
    try:
        if Policy.Reliability in endpoint_qos and \
                endpoint_qos[Policy.Reliability] == Policy.Reliability.BestEffort:
            reliability = 'best_effort'
        durable = Policy.Durability
        lasting = (durable.TransientLocal, durable.Transient, durable.Persistent)
        if Policy.Durability in endpoint_qos and endpoint_qos[Policy.Durability] in lasting:
            durability = 'transient_local'
    except TypeError:  # no QoS announced: DDS defaults for a writer (reliable, volatile)
        pass
    return QosProfile(reliability, depth, durability)


@dataclass
class RecordStats:
    received: dict[str, int] = field(default_factory=dict)
    skipped_types: dict[str, str] = field(default_factory=dict)
    qos: dict[str, str] = field(default_factory=dict)  # topic -> reliability it was subscribed with
    qos_mismatches: dict[str, str] = field(default_factory=dict)  # topic -> incompatible-QoS report
    wall_s: float = 0.0
    path: str = ''

    @property
    def total(self) -> int:
        return sum(self.received.values())


class BagRecorder:
    """Records ROS 2 topics from DDS into a rosbag2 file. ``qos``: None = as each publisher offers."""

    def __init__(self, out: str | Path, topics: Sequence[str] = (), *, storage: str = 'sqlite3',
                 force: bool = False, domain_id: int | None = None, qos: QosProfile | None = None,
                 duration_s: float = 0.0, idle_s: float = 0.0, dds_config: str | None = None,
                 on_matched: Callable[[str], None] | None = None) -> None:
        self.output = AtomicBagWriter(out, storage=storage, force=force)
        self.topics = {'/' + topic.strip('/') for topic in topics}
        self.domain_id = domain_id
        self.qos = qos
        self.duration_s = duration_s
        self.idle_s = idle_s
        self.dds_config = dds_config
        self.on_matched = on_matched
        self.stats = RecordStats()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> RecordStats:
        typestore = ros2_typestore()
        node = DdsNode('nitedr_recorder', domain_id=self.domain_id, typestore=typestore,
                       dds_config=self.dds_config, qos_event_callback=self._on_incompatible_qos)
        discovery = BuiltinDataReader(node.participant, BuiltinTopicDcpsPublication)
        writer = self.output.open()
        connections: dict[str, Any] = {}
        subscriptions: dict[str, Any] = {}
        matched: set[str] = set()
        start = time.monotonic()
        last_message = start

        def make_callback(topic: str) -> Callable[[Any, int], None]:
            def on_payload(payload: bytes, receive_ns: int) -> None:
                nonlocal last_message
                writer.write(connections[topic], receive_ns, payload)
                self.stats.received[topic] += 1
                last_message = time.monotonic()
            return on_payload

        try:
            while not self._stop.is_set():
                for endpoint in discovery.take(N=64):
                    topic = ros_topic_name(getattr(endpoint, 'topic_name', '') or '')
                    if topic is None or topic in subscriptions or (self.topics and topic not in self.topics):
                        continue
                    msgtype = ros_type_from_dds(getattr(endpoint, 'type_name', '') or '')
                    if msgtype is None or msgtype not in typestore.fielddefs:
                        self.stats.skipped_types[topic] = endpoint.type_name
                        continue
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
                    self.stats.received[topic] = 0
                    if self.qos is None:
                        qos = offered_qos(getattr(endpoint, 'qos', None))
                    else:
                        qos = SENSOR_DATA if topic == '/clock' else self.qos
                    self.stats.qos[topic] = qos.reliability
                    subscriptions[topic] = node.create_subscription(topic, msgtype, make_callback(topic),
                                                                    qos=qos, raw=True)
                node.spin_once(0.05)
                for topic, subscription in subscriptions.items():
                    if topic not in matched and subscription.matched_count() > 0:
                        matched.add(topic)
                        if self.on_matched is not None:
                            self.on_matched(topic)
                now = time.monotonic()
                if self.duration_s and now - start >= self.duration_s:
                    break
                if self.idle_s and self.stats.total and now - last_message >= self.idle_s:
                    break
            node.spin_once(0.0)  # what already arrived is kept
        except BaseException as exc:
            explained = self.output.abort(exc)
            node.close()
            if explained is not None:
                raise explained from exc
            raise
        self.stats.wall_s = time.monotonic() - start
        node.close()
        self.stats.path = str(self.output.commit())
        return self.stats

    def _on_incompatible_qos(self, topic: str, description: str) -> None:
        if topic not in self.stats.qos_mismatches:
            log.warning('%s: a publisher cannot be recorded: %s (record with the QoS it offers: qos=None, '
                        '--qos auto)', topic, description)
        self.stats.qos_mismatches[topic] = description
