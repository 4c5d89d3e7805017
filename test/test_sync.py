"""Synchronizer: one test per message_filters Python defect (notes section 3), exact groups, slop, threads."""

from __future__ import annotations

import itertools
import threading

import pytest

from nitedr_ros.core.sync import (
    DROP_OUT_OF_ORDER,
    DROP_QUEUE_OVERFLOW,
    DROP_RESET,
    DROP_UNMATCHED,
    Synchronizer,
)

MS = 1_000_000


class Recorder:
    """Feeds (topic, stamp_ms[, tag]) events and records sets as {topic: (stamp_ms, tag)} and drops."""

    def __init__(self, topics: str | list[str], **kwargs) -> None:
        self.sets: list[dict[str, tuple[int, object]]] = []
        self.drops: list[tuple[str, int, object, str]] = []
        self.sync = Synchronizer(list(topics), callback=self._on_set, drop_callback=self._on_drop, **kwargs)

    def _on_set(self, synced) -> None:
        self.sets.append({t: (synced.stamps[t] // MS, m[1]) for t, m in synced.messages.items()})

    def _on_drop(self, d) -> None:
        self.drops.append((d.topic, d.stamp_ns // MS, d.message[1], d.reason))

    def feed(self, events) -> Recorder:
        for event in events:
            topic, stamp = event[0], event[1]
            tag = event[2] if len(event) > 2 else f'{topic}{stamp}'
            self.sync.add(topic, stamp * MS, (topic, tag))
        return self

    def stamps(self) -> list[tuple[int, ...]]:
        return [tuple(s[t][0] for t in self.sync.topics) for s in self.sets]


# -- message_filters Python defects ----------------------------------------------------------------------
def test_greedy_stealing_defect_absent_the_closer_pair_wins():
    # message_filters: A0 pairs with B40 at once, A45 (5 ms from B40) stays unmatched.
    rec = Recorder('AB', slop_ns=50 * MS).feed([('A', 0), ('B', 40), ('A', 45)])
    assert rec.stamps() == [(45, 40)]
    assert rec.drops == [('A', 0, 'A0', DROP_UNMATCHED)]


def test_pairs_exactly_at_slop_match_inclusive_boundary():
    # message_filters filters with <= then checks < : A0/B50 with slop 50 never match.
    rec = Recorder('AB', slop_ns=50 * MS).feed([('A', 0), ('B', 50), ('A', 100), ('B', 150), ('A', 200)])
    assert rec.stamps() == [(0, 50), (100, 150)]
    just_over = Recorder('AB', slop_ns=50 * MS - 1)
    just_over.feed([('A', 0), ('B', 50), ('A', 100), ('B', 150), ('A', 200)])
    assert just_over.stamps() == []


def test_equal_stamps_on_one_topic_are_not_overwritten():
    # message_filters keys its queues by stamp: the second A@0 silently replaces the first.
    rec = Recorder('AB', slop_ns=50 * MS).feed(
        [('A', 0, 'first'), ('A', 0, 'second'), ('B', 0, 'b0'), ('B', 0, 'b0bis')]
    )
    assert rec.sets == [{'A': (0, 'first'), 'B': (0, 'b0')}, {'A': (0, 'second'), 'B': (0, 'b0bis')}]
    assert rec.drops == []


def test_sets_come_out_in_order_and_a_late_message_is_refused_not_reordered():
    # message_filters (slop 15): A0, A33, B33, B1 -> (A33,B33) then (A0,B1): out of order, crossing.
    rec = Recorder('AB', slop_ns=15 * MS).feed([('A', 0), ('A', 33), ('B', 33), ('B', 1)])
    assert rec.stamps() == [(33, 33)]
    assert ('B', 1, 'B1', DROP_OUT_OF_ORDER) in rec.drops
    assert ('A', 0, 'A0', DROP_UNMATCHED) in rec.drops
    in_order = Recorder('AB', slop_ns=15 * MS).feed([('A', 0), ('B', 1), ('A', 33), ('B', 33)])
    assert in_order.stamps() == [(0, 1), (33, 33)]


def _adversarial_four_inputs(queue: int):
    """Notes 3.3 cost case: 4 inputs, full queues, candidates both sides of the pivot, nothing within slop.

    B sits 26..50 ms before the pivot stream A, C 26..50 ms after it: every B/C pair is wider than the
    50 ms slop, so no set can form while message_filters scans candidates^3 combinations per message.
    """
    events = []
    for k in range(queue):
        events.append(('B', 1000 + k * 24 // queue))
        events.append(('C', 1076 + k * 24 // queue))
        events.append(('D', 1050))
    events += [('A', 1050 + k) for k in range(queue)]
    return events


def test_four_inputs_queue_50_cost_is_linear_in_topics_times_queue():
    queue, topics = 50, 4
    rec = Recorder('ABCD', slop_ns=50 * MS, queue_size=queue)
    worst = 0
    for event in _adversarial_four_inputs(queue):
        before = rec.sync.search_steps
        rec.feed([event])
        worst = max(worst, rec.sync.search_steps - before)
    assert rec.sets == []
    # each search step is O(topics); message_filters does ~50^3 combinations for one message here
    assert worst <= 2 * topics * queue, worst


# -- behaviour -------------------------------------------------------------------------------------------
def test_equal_stamps_emit_immediately_without_waiting_for_the_next_message():
    rec = Recorder('ABCD', slop_ns=15 * MS).feed([('A', 0), ('B', 0), ('C', 0), ('D', 0)])
    assert rec.stamps() == [(0, 0, 0, 0)]


def test_min_interval_lets_a_provably_optimal_set_out_at_once():
    waiting = Recorder('AB', slop_ns=15 * MS).feed([('A', 100), ('B', 103)])
    assert waiting.stamps() == []  # without a bound a later A could be closer to B103
    bounded = Recorder('AB', slop_ns=15 * MS, min_interval_ns=10 * MS).feed([('A', 100), ('B', 103)])
    assert bounded.stamps() == [(100, 103)]


def test_spacing_below_the_declared_bound_is_counted_per_topic_and_warned_once():
    warnings = []

    def warn(topic, gap_ns, bound_ns):
        warnings.append((topic, gap_ns // MS, bound_ns // MS))

    rec = Recorder('AB', slop_ns=15 * MS, min_interval_ns={'A': 10 * MS, 'B': 30 * MS}, interval_warning=warn)
    # A: 10 ms apart (at the bound: fine), then 4 ms; B: 33, then 20 and 5 ms (both below its 30 ms)
    rec.feed([('A', 100), ('B', 100), ('A', 110), ('B', 133), ('A', 114), ('B', 153), ('B', 158)])
    assert rec.sync.interval_violations() == {'A': 1, 'B': 2}
    assert warnings == [('A', 4, 10), ('B', 20, 30)]  # the first violation of each topic only
    unbounded = Recorder('AB', slop_ns=15 * MS).feed([('A', 100), ('A', 100), ('B', 101)])
    assert unbounded.sync.interval_violations() == {'A': 0, 'B': 0}


def test_interval_violation_warns_through_the_module_logger_by_default(caplog):
    rec = Recorder('AB', slop_ns=15 * MS, min_interval_ns=20 * MS)
    with caplog.at_level('WARNING', logger='nitedr_ros.core.sync'):
        rec.feed([('A', 100), ('A', 105), ('A', 110)])
    assert caplog.text.count('below the declared lower bound') == 1


def test_exact_group_requires_identical_stamps_and_drops_unpaired():
    rec = Recorder(
        ['rgb', 'left', 'right'], slop_ns=20 * MS, exact_groups=[('left', 'right')], min_interval_ns=30 * MS
    )
    rec.feed([('left', 0), ('right', 1), ('rgb', 0), ('left', 33), ('right', 33), ('rgb', 34)])
    assert rec.stamps() == [(34, 33, 33)]
    reasons = {(t, s): r for t, s, _, r in rec.drops}
    assert reasons[('left', 0)] == DROP_UNMATCHED
    assert reasons[('right', 1)] == DROP_UNMATCHED
    assert reasons[('rgb', 0)] == DROP_UNMATCHED


def test_exact_groups_validation():
    with pytest.raises(ValueError, match='unknown'):
        Synchronizer(['a', 'b'], exact_groups=[('a', 'c')])
    with pytest.raises(ValueError, match='disjoint'):
        Synchronizer(['a', 'b', 'c'], exact_groups=[('a', 'b'), ('b', 'c')])
    with pytest.raises(ValueError, match='unique'):
        Synchronizer(['a', 'a'])


def test_all_topics_in_one_exact_group_is_exact_time():
    rec = Recorder('AB', exact_groups=[('A', 'B')])
    rec.feed([('A', 0), ('B', 0), ('A', 10), ('B', 11), ('A', 20), ('B', 20)])
    assert rec.stamps() == [(0, 0), (20, 20)]


def test_queue_overflow_drops_oldest_and_counts_it():
    rec = Recorder('AB', slop_ns=5 * MS, queue_size=3).feed([('A', t) for t in (0, 10, 20, 30, 40)])
    assert [(t, s, r) for t, s, _, r in rec.drops] == [
        ('A', 0, DROP_QUEUE_OVERFLOW),
        ('A', 10, DROP_QUEUE_OVERFLOW),
    ]
    assert rec.sync.pending() == 3


def test_single_topic_passes_every_message_through():
    rec = Recorder('A', slop_ns=0).feed([('A', 0), ('A', 5), ('A', 5)])
    assert rec.stamps() == [(0,), (5,), (5,)]


def test_live_slop_change_researches_the_pending_candidate():
    rec = Recorder('AB', slop_ns=50 * MS).feed([('A', 0), ('B', 40)])
    assert rec.stamps() == []  # candidate (0, 40) waits for proof of optimality
    rec.sync.set_slop_ns(10 * MS)
    assert rec.drops == [('A', 0, 'A0', DROP_UNMATCHED)]  # (0, 40) is now too wide
    rec.feed([('A', 45), ('B', 73)])
    assert rec.stamps() == [(45, 40)]
    assert all(s[1][0] - s[0][0] <= 10 for s in [(x['A'], x['B']) for x in rec.sets])
    with pytest.raises(ValueError):
        rec.sync.set_slop_ns(-1)


def test_flush_emits_the_last_provable_set_and_drops_the_rest():
    rec = Recorder('AB', slop_ns=15 * MS).feed([('A', 0), ('B', 5), ('B', 100)])
    assert rec.stamps() == []
    rec.sync.flush()
    assert rec.stamps() == [(0, 5)]
    assert rec.drops == [('B', 100, 'B100', DROP_UNMATCHED)]
    assert rec.sync.pending() == 0


def test_reset_reports_every_pending_message_and_forgets_order():
    rec = Recorder(['a', 'l', 'r'], slop_ns=15 * MS, exact_groups=[('l', 'r')])
    rec.feed([('a', 100), ('l', 100), ('a', 133)])
    rec.sync.reset()
    assert sorted((t, s) for t, s, _, r in rec.drops if r == DROP_RESET) == [
        ('a', 100),
        ('a', 133),
        ('l', 100),
    ]
    rec.feed([('a', 0), ('l', 0), ('r', 0)])  # stamps may restart after a reset (bag loop)
    assert rec.stamps() == [(0, 0, 0)]


# -- threads ---------------------------------------------------------------------------------------------
def test_callback_runs_outside_the_lock():
    sync = Synchronizer(['a', 'b'], slop_ns=0)
    other_thread_added = threading.Event()
    seen = []

    def on_set(synced):
        seen.append(synced.stamps['a'])
        if len(seen) == 1:
            worker = threading.Thread(target=lambda: (sync.add('a', 10, 'a10'), other_thread_added.set()))
            worker.start()
            seen.append(other_thread_added.wait(10))
            worker.join(10)

    sync.register_callback(on_set)
    sync.add('a', 0, 'a0')
    sync.add('b', 0, 'b0')
    assert seen == [0, True]  # another thread could add while this callback was running
    sync.add('b', 10, 'b10')
    assert seen[-1] == 10


def test_failing_callback_leaves_no_lock_held_and_later_events_are_delivered():
    sync = Synchronizer(['a', 'b'], slop_ns=0)
    seen = []

    def on_set(synced):
        seen.append(synced.stamps['a'])
        if len(seen) == 1:
            raise RuntimeError('boom')

    sync.register_callback(on_set)
    sync.add('a', 0, 'a0')
    with pytest.raises(RuntimeError):
        sync.add('b', 0, 'b0')
    sync.add('a', 1, 'a1')
    sync.add('b', 1, 'b1')
    assert seen == [0, 1]


def test_concurrent_producers_get_ordered_non_crossing_sets():
    topics = ['rgb', 'left', 'right', 'thermal']
    sets = []
    drops = []
    sync = Synchronizer(
        topics,
        slop_ns=5 * MS,
        queue_size=400,
        exact_groups=[('left', 'right')],
        callback=sets.append,
        drop_callback=drops.append,
    )
    frames = 300

    def produce(topic: str, offset_ms: int) -> None:
        for k in range(frames):
            sync.add(topic, (k * 33 + offset_ms) * MS, (topic, k))

    threads = [threading.Thread(target=produce, args=(t, o)) for t, o in zip(topics, (0, 1, 1, 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sync.flush()
    assert len(sets) == frames
    for earlier, later in itertools.pairwise(sets):
        assert all(earlier.stamps[t] < later.stamps[t] for t in topics)
    assert drops == []
