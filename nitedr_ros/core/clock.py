"""Clocks the core reads time from, and header-stamp helpers (integer nanoseconds everywhere).

A transport hands the core an object with ``now_ns() -> int``: the node clock. ``0`` means "not started"
(ROS sim time before the first ``/clock`` message); the core then never drops a frame as stale, never
declares a stream silent and reports diagnostics as STALE. The bag tool uses :class:`ManualClock` and sets
it to each message's bag time, so a replay is stamped exactly like the live node.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol, runtime_checkable

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


@runtime_checkable
class Clock(Protocol):
    """The node clock: ``now_ns()`` in integer nanoseconds; 0 while sim time has not started."""

    def now_ns(self) -> int: ...


class SystemClock:
    """Wall clock (``time.time_ns``), the ROS 2 system/ROS clock without sim time."""

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock set by its owner: tests, and the bag tool (bag time as node time). Thread-safe."""

    def __init__(self, now_ns: int = 0) -> None:
        self._now = int(now_ns)
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        with self._lock:
            return self._now

    def set_ns(self, now_ns: int) -> None:
        with self._lock:
            self._now = int(now_ns)

    def advance_ns(self, delta_ns: int) -> int:
        with self._lock:
            self._now += int(delta_ns)
            return self._now

    def advance_ms(self, delta_ms: float) -> int:
        return self.advance_ns(round(delta_ms * NS_PER_MS))


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header_stamp_ns(msg: Any) -> int:
    """Header stamp of a stamped message in integer nanoseconds (AttributeError without a header)."""
    return stamp_to_ns(msg.header.stamp)


def ns_to_sec_nanosec(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) as in ``builtin_interfaces/Time``."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return sec, nanosec


def ns_to_ms(delta_ns: int) -> float:
    return delta_ns / NS_PER_MS
