"""message_filters-style wrappers around :class:`~nitedr_ros.core.sync.Synchronizer`; imports no ROS.

Drop-in shape of ``message_filters.ApproximateTimeSynchronizer`` / ``TimeSynchronizer`` for rclpy code::

    subs = [message_filters.Subscriber(node, Image, 'rgb/image', qos_profile=qos), ...]
    sync = ApproximateTimeFilter(subs, queue_size=5, slop=0.015, exact_groups=[(1, 2)], clock=node_clock)
    sync.registerCallback(on_set)            # on_set(rgb_msg, left_msg, right_msg, *args)

Any object with ``registerCallback(callback, *args)`` works as an input (message_filters ``Subscriber``,
``Cache``, or :class:`SimpleFilter` here). Differences from message_filters' Python synchronizer: the C++
ApproximateTime guarantees (see ``sync.py``), slop inclusive, equal stamps never overwrite each other, the
callback runs outside any lock, dropped messages are reported (``registerDropCallback``), and headerless
messages (``allow_headerless``) are stamped with the given node clock, so sim time works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .clock import NS_PER_S, Clock, SystemClock, header_stamp_ns
from .sync import DROP_OUT_OF_ORDER, Dropped, SyncedSet, Synchronizer

_LOG = logging.getLogger(__name__)


class SimpleFilter:
    """Callback fan-out with message_filters' ``registerCallback`` / ``signalMessage`` conventions."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        self._next_connection = 0

    def registerCallback(self, callback: Callable[..., Any], *args: Any) -> int:  # noqa: N802
        """Call ``callback(*messages, *args)`` for every output; returns a connection id."""
        connection = self._next_connection
        self._next_connection += 1
        self.callbacks[connection] = (callback, args)
        return connection

    def disconnect(self, connection: int) -> None:
        self.callbacks.pop(connection, None)

    def signalMessage(self, *messages: Any) -> None:  # noqa: N802
        for callback, args in list(self.callbacks.values()):
            callback(*(messages + args))


class ApproximateTimeFilter(SimpleFilter):
    """Approximate-time synchronization of ``fs`` (inputs) with maximum spread ``slop`` seconds.

    ``exact_groups``: tuples of input indices whose stamps must be equal. ``min_interval``: lower bound on
    the stamp spacing of every input in seconds (lets sets out without waiting for the next message).
    """

    def __init__(
        self,
        fs: Sequence[Any] | None,
        queue_size: int,
        slop: float | None,
        allow_headerless: bool = False,
        *,
        exact_groups: Iterable[Sequence[int]] = (),
        min_interval: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.queue_size = queue_size
        self.slop = slop
        self.allow_headerless = allow_headerless
        self._exact_groups = [tuple(g) for g in exact_groups]
        self._min_interval_ns = round(min_interval * NS_PER_S)
        self._clock = clock or SystemClock()
        self._drop_callbacks: list[Callable[[int, Any, str], None]] = []
        self.dropped: dict[str, int] = {}
        self._sync: Synchronizer | None = None
        self.input_connections: list[Any] = []
        if fs is not None:
            self.connectInput(fs)

    def connectInput(self, fs: Sequence[Any]) -> None:  # noqa: N802
        """Register on every input; may be called once per filter (rebuilds the synchronizer)."""
        count = len(fs)
        names = [str(i) for i in range(count)]
        groups = [[names[i] for i in group] for group in self._exact_groups]
        slop_ns = None if self.slop is None else round(self.slop * NS_PER_S)
        self._sync = Synchronizer(
            names,
            queue_size=self.queue_size,
            slop_ns=slop_ns,
            exact_groups=groups,
            min_interval_ns=self._min_interval_ns,
            callback=self._on_set,
            drop_callback=self._on_drop,
        )
        self.input_connections = [f.registerCallback(self.add, i) for i, f in enumerate(fs)]

    def registerDropCallback(self, callback: Callable[[int, Any, str], None]) -> None:  # noqa: N802
        """``callback(input_index, message, reason)`` for every message that will never be signalled."""
        self._drop_callbacks.append(callback)

    def set_slop(self, slop: float | None) -> None:
        self.slop = slop
        if self._sync is not None:
            self._sync.set_slop_ns(None if slop is None else round(slop * NS_PER_S))

    def add(self, msg: Any, my_queue_index: int) -> None:
        """Input callback: stamp from ``msg.header.stamp`` (or the clock when headerless is allowed)."""
        if self._sync is None:
            raise RuntimeError('connectInput() was not called')
        try:
            stamp = header_stamp_ns(msg)
        except AttributeError:
            if not self.allow_headerless:
                self._count('headerless')
                _LOG.warning(
                    'message without header on input %d dropped (allow_headerless is False)', my_queue_index
                )
                self._signal_drop(my_queue_index, msg, 'headerless')
                return
            stamp = self._clock.now_ns()
        self._sync.add(str(my_queue_index), stamp, msg)

    def flush(self) -> None:
        """End of input: signal every set still possible, report the rest as dropped."""
        if self._sync is not None:
            self._sync.flush()

    def _on_set(self, synced: SyncedSet) -> None:
        self.signalMessage(*synced.messages.values())

    def _on_drop(self, dropped: Dropped) -> None:
        self._count(dropped.reason)
        if dropped.reason == DROP_OUT_OF_ORDER:
            _LOG.warning('input %s: message older than its predecessor refused', dropped.topic)
        self._signal_drop(int(dropped.topic), dropped.message, dropped.reason)

    def _count(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _signal_drop(self, index: int, msg: Any, reason: str) -> None:
        for callback in list(self._drop_callbacks):
            callback(index, msg, reason)


class ExactTimeFilter(ApproximateTimeFilter):
    """All inputs must carry the same stamp (message_filters ``TimeSynchronizer`` semantics)."""

    def __init__(self, fs: Sequence[Any] | None, queue_size: int) -> None:
        super().__init__(fs, queue_size, 0.0)

    def connectInput(self, fs: Sequence[Any]) -> None:  # noqa: N802
        self._exact_groups = [tuple(range(len(fs)))] if len(fs) > 1 else []
        super().connectInput(fs)
