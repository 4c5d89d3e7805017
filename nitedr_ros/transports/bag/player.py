"""``nitedr bag play``: publish a bag over DDS (ROS 2 wire conventions) with its recorded timing.

Each message is published at ``start + (record_time - first_record_time) / rate`` (wall clock), unchanged
(rosbag2 payloads are already ROS 2 CDR; ROS 1 messages are converted). With ``clock`` the player also
publishes ``/clock`` (rosgraph_msgs/Clock, bag time) like ``ros2 bag play --clock``, so a node with
``use_sim_time`` runs on bag time. ``on_publish`` (optional) is told (topic, header stamp ns or None,
wall time ns) for every message, which the demo uses to measure end-to-end latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.clock import ns_to_sec_nanosec
from ...errors import ConfigError
from ..dds.participant import CLOCK, RELIABLE, DdsNode, QosProfile, RosPublisher
from .reader import BagError, iter_raw, open_bag
from .writer import Ros2PayloadConverter, output_typestore

CLOCK_TYPE = 'rosgraph_msgs/msg/Clock'


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    loops: int = 0
    wall_s: float = 0.0
    late_ms_max: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.published.values())


def _header_stamp_ns(payload: bytes | memoryview, has_header: bool) -> int | None:
    """The header stamp of a CDR payload whose type starts with std_msgs/Header (sec, nanosec at 4..12)."""
    if not has_header or len(payload) < 12:
        return None
    view = memoryview(payload)
    if bytes(view[:2]) != b'\x00\x01':
        return None
    sec = int.from_bytes(view[4:8], 'little', signed=True)
    nanosec = int.from_bytes(view[8:12], 'little')
    return sec * 1_000_000_000 + nanosec


class BagPlayer:
    """Publishes one bag over DDS; ``run()`` blocks until done (or ``stop()``)."""

    def __init__(self, bag: str | Path, *, rate: float = 1.0, loop: bool = False, clock: bool = False,
                 clock_hz: float = 100.0, topics: Sequence[str] = (), domain_id: int | None = None,
                 qos: QosProfile = RELIABLE, wait_for: Sequence[str] = (), wait_timeout_s: float = 30.0,
                 delay_s: float = 0.0, dds_config: str | None = None,
                 on_publish: Callable[[str, int | None, int], None] | None = None) -> None:
        if not 0.01 <= rate <= 100:
            raise ConfigError(f'play rate must be 0.01..100, got {rate}')
        if clock and not 1 <= clock_hz <= 1000:
            raise ConfigError(f'clock rate must be 1..1000 Hz, got {clock_hz}')
        self.bag = Path(bag)
        self.rate = rate
        self.loop = loop
        self.clock = clock
        self.clock_period_ns = int(1e9 / clock_hz)
        self.topics = {'/' + topic.strip('/') for topic in topics}
        self.domain_id = domain_id
        self.qos = qos
        self.wait_for = ['/' + topic.strip('/') for topic in wait_for]
        self.wait_timeout_s = wait_timeout_s
        self.delay_s = delay_s
        self.dds_config = dds_config
        self.on_publish = on_publish
        self._stop = threading.Event()
        self.stats = PlayStats()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> PlayStats:
        with open_bag(self.bag) as reader:
            typestore = output_typestore(reader)
            convert = Ros2PayloadConverter(reader, typestore)
            node = DdsNode('nitedr_player', domain_id=self.domain_id, typestore=typestore,
                           dds_config=self.dds_config)
            try:
                return self._play(reader, node, convert)
            finally:
                node.close()

    def _play(self, reader: Any, node: DdsNode, convert: Ros2PayloadConverter) -> PlayStats:
        connections = [conn for conn in reader.connections
                       if not self.topics or '/' + conn.topic.strip('/') in self.topics]
        if not connections:
            raise BagError(f'none of the topics {", ".join(sorted(self.topics))} is in {self.bag}')
        publishers: dict[str, RosPublisher] = {}
        has_header: dict[str, bool] = {}
        for conn in connections:
            topic = '/' + conn.topic.strip('/')
            if topic not in publishers:
                msgtype = convert.prepare(conn)
                publishers[topic] = node.create_publisher(topic, msgtype, self.qos)
                fields = node.typestore.fielddefs[msgtype][1]
                has_header[topic] = bool(fields) and tuple(fields[0][1]) == (2, 'std_msgs/msg/Header')
                self.stats.published[topic] = 0
        ticker = _ClockTicker(node, self.clock_period_ns) if self.clock else None
        if self.wait_for:
            missing = [topic for topic in self.wait_for if topic not in publishers]
            if missing:
                raise BagError(f'--wait-for topic {missing[0]} is not played from {self.bag}')
            if not node.wait_for_matches([publishers[topic] for topic in self.wait_for], self.wait_timeout_s):
                unmatched = [t for t in self.wait_for if publishers[t].matched_count() == 0]
                raise BagError(f'no subscriber appeared on {", ".join(unmatched)} within '
                               f'{self.wait_timeout_s:g} s')
            if ticker is not None:  # a sim-time node subscribes /clock too: let it hear the first tick
                node.wait_for_matches([ticker.publisher], CLOCK_MATCH_WAIT_S)
        if self.delay_s:
            time.sleep(self.delay_s)

        wall_start = time.monotonic()
        while not self._stop.is_set():
            self.stats.loops += 1
            first_ns: int | None = None
            loop_start = time.monotonic()
            for conn, record_ns, raw in iter_raw(reader, connections, self.bag):
                if self._stop.is_set():
                    break
                if first_ns is None:
                    first_ns = record_ns
                    if ticker is not None:  # the bag time goes out a moment before the first message, so a
                        ticker.restart(first_ns)  # node that switches to /clock has it when that arrives
                        ticker.tick(first_ns)
                        time.sleep(CLOCK_LEAD_S)
                        loop_start = time.monotonic()
                due = loop_start + (record_ns - first_ns) / 1e9 / self.rate
                self._wait_until(due, ticker, loop_start, first_ns, record_ns)
                self.stats.late_ms_max = max(self.stats.late_ms_max, (time.monotonic() - due) * 1e3)
                topic = '/' + conn.topic.strip('/')
                payload = convert(conn, raw)
                stamp = _header_stamp_ns(payload, has_header[topic])
                wall_ns = time.time_ns()
                publishers[topic].publish_raw(payload)
                self.stats.published[topic] += 1
                if self.on_publish is not None:
                    self.on_publish(topic, stamp, wall_ns)
            if not self.loop or first_ns is None:
                break
        if ticker is not None:
            self.stats.clock_messages = ticker.count
        self.stats.wall_s = time.monotonic() - wall_start
        time.sleep(0.2)  # let reliable writers flush before the participant goes away
        return self.stats

    def _wait_until(self, due: float, ticker: _ClockTicker | None, loop_start: float, first_ns: int,
                    record_ns: int) -> None:
        """Sleep until ``due`` (monotonic s), publishing /clock ticks (bag time, never past ``record_ns``)."""
        while True:
            now = time.monotonic()
            wake = due
            if ticker is not None:
                bag_now = min(record_ns, first_ns + int((now - loop_start) * self.rate * 1e9))
                ticker.tick(bag_now)
                wake = min(due, loop_start + (ticker.next_ns - first_ns) / 1e9 / self.rate)
            if now >= due or self._stop.is_set():
                return
            time.sleep(max(0.0005, min(wake - now, 0.05)))


# with --clock and --wait-for: how long to wait for a /clock subscriber once the awaited topics matched
# (discovered together with them when there is one; a node on system time has none)
CLOCK_MATCH_WAIT_S = 1.0
# with --clock: the first /clock message of a loop goes out this long before the loop's first message
CLOCK_LEAD_S = 0.1


class _ClockTicker:
    """Publishes rosgraph_msgs/Clock at a fixed bag-time period."""

    def __init__(self, node: DdsNode, period_ns: int) -> None:
        self.publisher = node.create_publisher('/clock', CLOCK_TYPE, CLOCK)
        self.codec = node.codecs.get(CLOCK_TYPE)
        self.types = node.typestore.types
        self.period_ns = period_ns
        self.next_ns = 0
        self.count = 0

    def restart(self, bag_ns: int) -> None:
        self.next_ns = bag_ns

    def tick(self, bag_ns: int) -> None:
        if bag_ns < self.next_ns:
            return
        sec, nanosec = ns_to_sec_nanosec(bag_ns)
        msg = self.types[CLOCK_TYPE](self.types['builtin_interfaces/msg/Time'](sec, nanosec))
        self.publisher.publish_raw(self.codec.encode(msg))
        self.count += 1
        self.next_ns = bag_ns + self.period_ns
