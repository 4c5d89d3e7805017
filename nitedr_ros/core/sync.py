"""Approximate-time synchronizer with a maximum spread (slop) and exact-match groups; plain Python, no ROS.

Algorithm: the ROS 1 C++ ``message_filters::sync_policies::ApproximateTime`` policy, re-implemented from
its published description (see ``ros2-node-conventions.md`` section 3.2), with integer-nanosecond stamps
and an age penalty of 0. Its guarantees hold for every set this class emits:

1. each message is used in at most one set;
2. sets never cross: for sets S before T, ``S[t] <= T[t]`` on every topic t;
3. sets are contiguous: messages dropped between two sets cannot form a set of their own;
4. each set has minimal size (latest stamp - earliest stamp) among the sets contiguous to the previous one;
5. the output depends only on the stamps, not on the arrival order across topics (given in-order stamps
   per topic and a queue large enough for the arrival skew).

Additions to the C++ policy:

- ``slop_ns``: maximum spread of a set, **inclusive** (a set exactly ``slop_ns`` wide matches); this is
  the C++ ``setMaxIntervalDuration``. Changeable live (:meth:`Synchronizer.set_slop_ns`).
- ``exact_groups``: topics that must carry identical stamps (hardware-triggered stereo). Each group is
  matched exactly first and enters the approximate search as one compound input.
- ``min_interval_ns``: a lower bound on the stamp spacing per topic (C++ ``setInterMessageLowerBound``).
  With it a set is emitted as soon as its optimality is provable instead of waiting for the next
  message; a set whose stamps are all equal is always emitted at once. The bound is a promise about the
  input: two stamps of one topic closer than it void guarantee 5 (a set may have been emitted before a
  better partner arrived). Such spacings are counted per topic (:meth:`Synchronizer.interval_violations`)
  and warned about once per topic (as the C++ ``checkInterMessageBound`` does).
- Out-of-order messages (stamp older than the previous one on that topic) are refused, not reordered.
- Nothing is lost silently: every message ends in exactly one emitted set or one drop event
  (reason ``unmatched``, ``queue_overflow``, ``out_of_order`` or ``reset``), or is still pending.

Threading: ``add`` may be called from several threads. The matching runs under a lock; set and drop
callbacks run **outside** it, in the order the events were produced (one thread at a time delivers; the
others only enqueue), so a slow callback never blocks producers and a failing one never leaves a lock held.
Work per message is O(topics x queue_size) in the worst case (amortised O(topics)).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

DROP_UNMATCHED = 'unmatched'
DROP_QUEUE_OVERFLOW = 'queue_overflow'
DROP_OUT_OF_ORDER = 'out_of_order'
DROP_RESET = 'reset'
DROP_REASONS = (DROP_UNMATCHED, DROP_QUEUE_OVERFLOW, DROP_OUT_OF_ORDER, DROP_RESET)

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncedSet:
    """One synchronized set: a message and its stamp per topic (topics in the synchronizer's order)."""

    messages: dict[str, Any]
    stamps: dict[str, int]

    @property
    def earliest_ns(self) -> int:
        return min(self.stamps.values())

    @property
    def latest_ns(self) -> int:
        return max(self.stamps.values())

    @property
    def spread_ns(self) -> int:
        return self.latest_ns - self.earliest_ns


@dataclass(frozen=True)
class Dropped:
    """A message that will never be part of a set, and why."""

    topic: str
    stamp_ns: int
    message: Any
    reason: str


# An approximate-layer item: (stamp_ns, ((topic, message), ...)); one part per topic of its channel.
_Item = tuple[int, tuple[tuple[str, Any], ...]]


class _ExactGroup:
    """Exact-stamp matching of a few topics (C++ ExactTime semantics, in-order per topic)."""

    def __init__(self, members: tuple[str, ...], queue_size: int) -> None:
        self.members = members
        self.queue_size = queue_size
        self.queues: dict[str, deque[tuple[int, Any]]] = {m: deque() for m in members}

    def add(self, topic: str, stamp: int, msg: Any, dropped: list[tuple[str, int, Any, str]]) -> list[_Item]:
        self.queues[topic].append((stamp, msg))
        matched: list[_Item] = []
        queues = [self.queues[m] for m in self.members]
        while all(queues):
            heads = [q[0][0] for q in queues]
            top = max(heads)
            if min(heads) == top:
                matched.append((top, tuple((m, q.popleft()[1]) for m, q in zip(self.members, queues))))
                continue
            for member, q in zip(self.members, queues):
                while q and q[0][0] < top:  # the other members are past this stamp: it can never match
                    old_stamp, old_msg = q.popleft()
                    dropped.append((member, old_stamp, old_msg, DROP_UNMATCHED))
        q = self.queues[topic]
        if len(q) > self.queue_size:
            old_stamp, old_msg = q.popleft()
            dropped.append((topic, old_stamp, old_msg, DROP_QUEUE_OVERFLOW))
        return matched

    def drain(self) -> list[tuple[str, int, Any]]:
        out = [(m, stamp, msg) for m in self.members for stamp, msg in self.queues[m]]
        for q in self.queues.values():
            q.clear()
        return out

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())


class _ApproximateTime:
    """The C++ ApproximateTime search over ``n`` channels (age penalty 0), integer stamps."""

    def __init__(
        self, n: int, queue_size: int, max_interval: int | None, lower_bounds: Sequence[int]
    ) -> None:
        self.n = n
        self.queue_size = queue_size
        self.max_interval = max_interval
        self.lower_bounds = list(lower_bounds)
        self.deques: list[deque[_Item]] = [deque() for _ in range(n)]
        self.past: list[list[_Item]] = [[] for _ in range(n)]
        self.has_dropped = [False] * n
        self.candidate: list[_Item] | None = None
        self.cand_start = 0
        self.cand_end = 0
        self.pivot = -1
        self.pivot_time = 0
        self.non_empty = 0
        self.steps = 0  # search iterations, for tests and benchmarks of the cost bound

    # -- bookkeeping ------------------------------------------------------------------------------------
    def _count_non_empty(self) -> None:
        self.non_empty = sum(1 for d in self.deques if d)

    def _move_front_to_past(self, i: int) -> None:
        d = self.deques[i]
        self.past[i].append(d.popleft())
        if not d:
            self.non_empty -= 1

    def _delete_front(self, i: int, dropped: list[tuple[_Item, str]], reason: str) -> None:
        d = self.deques[i]
        dropped.append((d.popleft(), reason))
        if not d:
            self.non_empty -= 1

    def _recover_all(self) -> None:
        for d, p in zip(self.deques, self.past):
            if p:
                d.extendleft(reversed(p))
                p.clear()
        self._count_non_empty()

    def _make_candidate(self, start: int, end: int, dropped: list[tuple[_Item, str]]) -> None:
        self.candidate = [d[0] for d in self.deques]
        for p in self.past:  # messages before a better candidate can never be used (contiguity)
            for item in p:
                dropped.append((item, DROP_UNMATCHED))
            p.clear()
        self.cand_start = start
        self.cand_end = end

    def _publish(self, out: list[list[_Item]]) -> None:
        candidate = self.candidate
        assert candidate is not None
        out.append(candidate)
        self.candidate = None
        self.pivot = -1
        self.non_empty = 0
        for i, (d, p) in enumerate(zip(self.deques, self.past)):
            if p:
                d.extendleft(reversed(p))
                p.clear()
            used = d.popleft()
            assert used is candidate[i]
            if d:
                self.non_empty += 1

    def _cancel_candidate(self) -> None:
        self._recover_all()
        self.candidate = None
        self.pivot = -1

    # -- entry points -----------------------------------------------------------------------------------
    def add(self, i: int, item: _Item, out: list[list[_Item]], dropped: list[tuple[_Item, str]]) -> None:
        d = self.deques[i]
        d.append(item)
        if len(d) == 1:
            self.non_empty += 1
            if self.non_empty == self.n:
                self._process(out, dropped)
        if len(d) + len(self.past[i]) > self.queue_size:
            had_pivot = self.pivot >= 0
            self._recover_all()
            self._delete_front(i, dropped, DROP_QUEUE_OVERFLOW)
            self.has_dropped[i] = True
            if had_pivot:
                self.candidate = None
                self.pivot = -1
                self._process(out, dropped)

    def set_max_interval(
        self, max_interval: int | None, out: list[list[_Item]], dropped: list[tuple[_Item, str]]
    ) -> None:
        self.max_interval = max_interval
        if self.pivot >= 0:  # the candidate was chosen under the old bound: search again
            self._cancel_candidate()
        self._process(out, dropped)

    def flush(self, out: list[list[_Item]], dropped: list[tuple[_Item, str]]) -> None:
        """End of input: the pending candidate is optimal (no message can beat it); emit it and any set
        the remaining messages still form."""
        while self.pivot >= 0:
            self._publish(out)
            self._process(out, dropped)

    def drain(self) -> list[_Item]:
        items = [item for d, p in zip(self.deques, self.past) for item in (*p, *d)]
        for d, p in zip(self.deques, self.past):
            d.clear()
            p.clear()
        self.candidate = None
        self.pivot = -1
        self.non_empty = 0
        self.has_dropped = [False] * self.n
        return items

    def pending(self) -> int:
        return sum(len(d) + len(p) for d, p in zip(self.deques, self.past))

    # -- the search -------------------------------------------------------------------------------------
    def _virtual_time(self, i: int) -> int:
        d = self.deques[i]
        if d:
            return d[0][0]
        bound = self.past[i][-1][0] + self.lower_bounds[i]
        return bound if bound > self.pivot_time else self.pivot_time

    def _process(self, out: list[list[_Item]], dropped: list[tuple[_Item, str]]) -> None:
        n = self.n
        deques = self.deques
        while self.non_empty == n:
            self.steps += 1
            start_t = end_t = deques[0][0][0]
            start_i = end_i = 0
            for i in range(1, n):
                t = deques[i][0][0]
                if t > end_t:
                    end_t, end_i = t, i
                if t < start_t:
                    start_t, start_i = t, i
            for i in range(n):
                if i != end_i:
                    self.has_dropped[i] = False
            if self.pivot < 0:
                too_wide = self.max_interval is not None and end_t - start_t > self.max_interval
                if too_wide or self.has_dropped[end_i]:
                    self._delete_front(start_i, dropped, DROP_UNMATCHED)
                    continue
                self._make_candidate(start_t, end_t, dropped)
                self.pivot, self.pivot_time = end_i, end_t
                self._move_front_to_past(start_i)
            else:
                if end_t - self.cand_end < start_t - self.cand_start:  # strictly smaller: better
                    self._make_candidate(start_t, end_t, dropped)
                self._move_front_to_past(start_i)
            if (
                start_i == self.pivot or end_t - self.cand_end >= self.pivot_time - self.cand_start
            ):  # every candidate for this pivot has been tried
                self._publish(out)
            elif self.non_empty < n:
                self._virtual_search(out)

    def _virtual_search(self, out: list[list[_Item]]) -> None:
        n = self.n
        moves = [0] * n
        while True:
            self.steps += 1
            start_t = end_t = self._virtual_time(0)
            start_i = 0
            for i in range(1, n):
                t = self._virtual_time(i)
                if t > end_t:
                    end_t = t
                if t < start_t:
                    start_t, start_i = t, i
            if end_t - self.cand_end >= self.pivot_time - self.cand_start:
                self._publish(out)  # optimality proven; recovers the virtual moves too
                return
            if end_t - self.cand_end < start_t - self.cand_start:
                # an optimistic future candidate would be better: undo the virtual moves and wait
                for i, count in enumerate(moves):
                    for _ in range(count):
                        self.deques[i].appendleft(self.past[i].pop())
                self._count_non_empty()
                return
            self._move_front_to_past(start_i)
            moves[start_i] += 1


class Synchronizer:
    """Approximate-time synchronizer over named topics; see the module docstring for the guarantees.

    ``topics``: input names in output order. ``queue_size``: pending messages per input. ``slop_ns``: maximum
    set spread, inclusive (``None`` = unbounded, as the C++ policy). ``exact_groups``: groups of topics that
    must match exactly. ``min_interval_ns``: stamp-spacing lower bound, one value or one per topic.
    ``callback(SyncedSet)`` and ``drop_callback(Dropped)`` run outside the lock, in event order.
    ``interval_warning(topic, gap_ns, bound_ns)`` is called once per topic, outside the lock, for the first
    spacing below its bound (default: a warning on this module's logger).
    """

    def __init__(
        self,
        topics: Sequence[str],
        *,
        queue_size: int = 5,
        slop_ns: int | None = None,
        exact_groups: Iterable[Sequence[str]] = (),
        min_interval_ns: int | dict[str, int] = 0,
        callback: Callable[[SyncedSet], None] | None = None,
        drop_callback: Callable[[Dropped], None] | None = None,
        interval_warning: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.topics = tuple(topics)
        if not self.topics or len(set(self.topics)) != len(self.topics):
            raise ValueError(f'topics must be unique and non-empty, got {list(topics)}')
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        if slop_ns is not None and slop_ns < 0:
            raise ValueError(f'slop must be >= 0, got {slop_ns} ns')
        self.queue_size = int(queue_size)
        groups = _check_groups(self.topics, exact_groups)
        self.exact_groups = tuple(groups)
        bounds = (
            min_interval_ns
            if isinstance(min_interval_ns, dict)
            else dict.fromkeys(self.topics, min_interval_ns)
        )
        self._bounds = {t: max(0, int(bounds.get(t, 0))) for t in self.topics}
        self._violations = dict.fromkeys(self.topics, 0)
        self._interval_warning = interval_warning or _warn_interval
        # channels: a lone topic or an exact group, ordered by first member in ``topics``
        self._channel_of: dict[str, int] = {}
        self._group_of: dict[str, _ExactGroup] = {}
        lower_bounds: list[int] = []
        for topic in self.topics:
            if topic in self._channel_of:
                continue
            members = next((g for g in groups if topic in g), (topic,))
            index = len(lower_bounds)
            lower_bounds.append(max(0, min(int(bounds.get(m, 0)) for m in members)))
            group = _ExactGroup(members, self.queue_size) if len(members) > 1 else None
            for member in members:
                self._channel_of[member] = index
                if group is not None:
                    self._group_of[member] = group
        self._search = _ApproximateTime(
            len(lower_bounds), self.queue_size, None if slop_ns is None else int(slop_ns), lower_bounds
        )
        self._last_stamp: dict[str, int] = {}
        self._lock = threading.Lock()
        self._events: deque[SyncedSet | Dropped] = deque()
        self._delivering = False
        self._callbacks: list[Callable[[SyncedSet], None]] = [callback] if callback else []
        self._drop_callbacks: list[Callable[[Dropped], None]] = [drop_callback] if drop_callback else []

    # -- configuration ----------------------------------------------------------------------------------
    def register_callback(self, callback: Callable[[SyncedSet], None]) -> None:
        self._callbacks.append(callback)

    def register_drop_callback(self, callback: Callable[[Dropped], None]) -> None:
        self._drop_callbacks.append(callback)

    @property
    def slop_ns(self) -> int | None:
        return self._search.max_interval

    def set_slop_ns(self, slop_ns: int | None) -> None:
        """Change the maximum spread live; a candidate chosen under the old value is searched again."""
        if slop_ns is not None and slop_ns < 0:
            raise ValueError(f'slop must be >= 0, got {slop_ns} ns')
        out: list[list[_Item]] = []
        dropped: list[tuple[_Item, str]] = []
        with self._lock:
            self._search.set_max_interval(None if slop_ns is None else int(slop_ns), out, dropped)
            self._queue_search_events(out, dropped)
            if not self._claim_delivery():
                return
        self._deliver()

    # -- data path --------------------------------------------------------------------------------------
    def add(self, topic: str, stamp_ns: int, message: Any) -> bool:
        """Offer a message; False if it was refused (out of order). Callbacks run before this returns
        unless another thread is delivering already (then that thread delivers, in order)."""
        channel = self._channel_of[topic]  # KeyError for an unknown topic: a programming error
        stamp_ns = int(stamp_ns)
        out: list[list[_Item]] = []
        dropped: list[tuple[_Item, str]] = []
        warning = None
        with self._lock:
            last = self._last_stamp.get(topic)
            accepted = last is None or stamp_ns >= last
            if accepted and last is not None and stamp_ns - last < self._bounds[topic]:
                self._violations[topic] += 1
                if self._violations[topic] == 1:
                    warning = (topic, stamp_ns - last, self._bounds[topic])
            if not accepted:
                self._events.append(Dropped(topic, stamp_ns, message, DROP_OUT_OF_ORDER))
            else:
                self._last_stamp[topic] = stamp_ns
                group = self._group_of.get(topic)
                if group is None:
                    self._search.add(channel, (stamp_ns, ((topic, message),)), out, dropped)
                else:
                    group_dropped: list[tuple[str, int, Any, str]] = []
                    items = group.add(topic, stamp_ns, message, group_dropped)
                    self._events.extend(Dropped(*d) for d in group_dropped)
                    for item in items:
                        self._search.add(channel, item, out, dropped)
                self._queue_search_events(out, dropped)
            deliver = self._claim_delivery()
        if warning is not None:
            self._interval_warning(*warning)
        if deliver:
            self._deliver()
        return accepted

    def reset(self) -> None:
        """Discard every pending message (each reported as a ``reset`` drop) and the per-topic order."""
        with self._lock:
            for stamp, parts in self._search.drain():
                self._events.extend(Dropped(t, stamp, m, DROP_RESET) for t, m in parts)
            for group in {id(g): g for g in self._group_of.values()}.values():
                self._events.extend(Dropped(t, s, m, DROP_RESET) for t, s, m in group.drain())
            self._last_stamp.clear()
            if not self._claim_delivery():
                return
        self._deliver()

    def take_pending(self) -> list[tuple[str, int, Any]]:
        """Remove and return every message still waiting for partners, as ``(topic, stamp, message)`` in
        stamp order, without reporting them as drops: the caller hands them to another synchronizer (or
        counts them). Stamp order per topic is kept, so they can be added to a fresh synchronizer."""
        with self._lock:
            held = [(t, stamp, m) for stamp, parts in self._search.drain() for t, m in parts]
            for group in {id(g): g for g in self._group_of.values()}.values():
                held.extend(group.drain())
        held.sort(key=lambda item: item[1])
        return held

    def flush(self) -> None:
        """End of input (bag end): emit every set that can still form, drop the rest as ``unmatched``."""
        out: list[list[_Item]] = []
        dropped: list[tuple[_Item, str]] = []
        with self._lock:
            self._search.flush(out, dropped)
            self._queue_search_events(out, dropped)
            for stamp, parts in self._search.drain():
                self._events.extend(Dropped(t, stamp, m, DROP_UNMATCHED) for t, m in parts)
            for group in {id(g): g for g in self._group_of.values()}.values():
                self._events.extend(Dropped(t, s, m, DROP_UNMATCHED) for t, s, m in group.drain())
            if not self._claim_delivery():
                return
        self._deliver()

    def interval_violations(self) -> dict[str, int]:
        """Per topic: how many stamps came closer than ``min_interval_ns`` after their predecessor."""
        with self._lock:
            return dict(self._violations)

    @property
    def search_steps(self) -> int:
        """Search iterations so far (each O(topics)); tests bound the cost per message with it."""
        return self._search.steps

    def pending(self) -> int:
        """Messages held (waiting for partners), across all topics."""
        with self._lock:
            groups = {id(g): g for g in self._group_of.values()}.values()
            held = sum(
                len(parts) for d, p in zip(self._search.deques, self._search.past) for _, parts in (*d, *p)
            )
            return held + sum(g.pending() for g in groups)

    # -- internals --------------------------------------------------------------------------------------
    def _queue_search_events(self, out: list[list[_Item]], dropped: list[tuple[_Item, str]]) -> None:
        for (stamp, parts), reason in dropped:
            self._events.extend(Dropped(t, stamp, m, reason) for t, m in parts)
        for items in out:
            messages: dict[str, Any] = {}
            stamps: dict[str, int] = {}
            for stamp, parts in items:
                for t, m in parts:
                    messages[t] = m
                    stamps[t] = stamp
            order = self.topics
            self._events.append(SyncedSet({t: messages[t] for t in order}, {t: stamps[t] for t in order}))

    def _claim_delivery(self) -> bool:
        """Under the lock: True if this thread should deliver the queued events now."""
        if self._delivering or not self._events:
            return False
        self._delivering = True
        return True

    def _deliver(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._events:
                        self._delivering = False
                        return
                    event = self._events.popleft()
                if isinstance(event, SyncedSet):
                    for callback in self._callbacks:
                        callback(event)
                else:
                    for callback in self._drop_callbacks:
                        callback(event)
        except BaseException:
            with self._lock:
                self._delivering = False
            raise


def _warn_interval(topic: str, gap_ns: int, bound_ns: int) -> None:
    _LOG.warning(
        '%s: stamps %.3f ms apart, below the declared lower bound of %.3f ms; sets may now depend on '
        'arrival order (lower min_interval, or 0 to turn it off). Warned once per topic.',
        topic, gap_ns / 1e6, bound_ns / 1e6,
    )


def _check_groups(topics: tuple[str, ...], exact_groups: Iterable[Sequence[str]]) -> list[tuple[str, ...]]:
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for group in exact_groups:
        members = tuple(group)
        unknown = [m for m in members if m not in topics]
        if unknown:
            raise ValueError(f'exact group {list(members)} names unknown topics {unknown}')
        if len(set(members)) != len(members) or seen.intersection(members):
            raise ValueError(f'exact groups must be disjoint without repeats, got {list(members)}')
        seen.update(members)
        if len(members) > 1:
            # members in topic order, so outputs do not depend on how the group was written
            groups.append(tuple(t for t in topics if t in members))
    return groups
