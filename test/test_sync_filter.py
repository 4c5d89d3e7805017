"""message_filters-compatible wrappers: driven like message_filters' own tests (MockFilter.signalMessage)."""

from __future__ import annotations

import ast
from pathlib import Path

from nitedr_ros.core import sync_filter
from nitedr_ros.core.clock import ManualClock
from nitedr_ros.core.sync_filter import ApproximateTimeFilter, ExactTimeFilter, SimpleFilter
from nitedr_ros.core.testing import make_header

MS = 1_000_000


class Msg:
    def __init__(self, name: str, stamp_ms: int) -> None:
        self.name = name
        self.header = make_header(stamp_ms * MS)

    def __repr__(self) -> str:
        return self.name


class Headerless:
    def __init__(self, name: str) -> None:
        self.name = name


def _wire(filter_cls, count, *args, **kwargs):
    inputs = [SimpleFilter() for _ in range(count)]
    sync = filter_cls(inputs, *args, **kwargs)
    received = []
    sync.registerCallback(lambda *msgs: received.append(tuple(m.name for m in msgs[:count]) + msgs[count:]))
    return inputs, sync, received


def test_approximate_filter_signals_in_input_order_with_extra_args():
    inputs = [SimpleFilter(), SimpleFilter()]
    sync = ApproximateTimeFilter(inputs, 5, 0.05)
    received = []
    sync.registerCallback(lambda a, b, tag: received.append((a.name, b.name, tag)), 'extra')
    inputs[1].signalMessage(Msg('b40', 40))
    inputs[0].signalMessage(Msg('a0', 0))
    inputs[0].signalMessage(Msg('a45', 45))
    assert received == [('a45', 'b40', 'extra')]
    assert sync.dropped == {'unmatched': 1}


def test_approximate_filter_exact_groups_by_input_index_and_live_slop():
    inputs, sync, received = _wire(
        ApproximateTimeFilter, 3, 5, 0.010, exact_groups=[(1, 2)], min_interval=0.03
    )
    for name, index, stamp in [('l0', 1, 0), ('r0', 2, 0), ('c3', 0, 3)]:
        inputs[index].signalMessage(Msg(name, stamp))
    assert received == [('c3', 'l0', 'r0')]
    sync.set_slop(0.001)
    for name, index, stamp in [('l33', 1, 33), ('r33', 2, 33), ('c36', 0, 36), ('c66', 0, 66)]:
        inputs[index].signalMessage(Msg(name, stamp))
    assert received == [('c3', 'l0', 'r0')]  # 3 ms spread no longer within the 1 ms slop


def test_exact_filter_is_time_synchronizer():
    inputs, _, received = _wire(ExactTimeFilter, 2, 10)
    for name, index, stamp in [('a0', 0, 0), ('b1', 1, 1), ('a1', 0, 1), ('b2', 1, 2)]:
        inputs[index].signalMessage(Msg(name, stamp))
    assert received == [('a1', 'b1')]


def test_headerless_messages_use_the_given_clock_or_are_dropped():
    clock = ManualClock(5 * MS)
    inputs, sync, received = _wire(ApproximateTimeFilter, 2, 5, 0.0, allow_headerless=True, clock=clock)
    inputs[0].signalMessage(Headerless('a'))
    inputs[1].signalMessage(Headerless('b'))
    assert received == [('a', 'b')]

    inputs, sync, received = _wire(ApproximateTimeFilter, 2, 5, 0.0)
    drops = []
    sync.registerDropCallback(lambda index, msg, reason: drops.append((index, msg.name, reason)))
    inputs[0].signalMessage(Headerless('a'))
    assert drops == [(0, 'a', 'headerless')]
    assert received == []


def test_flush_signals_the_pending_set():
    inputs, sync, received = _wire(ApproximateTimeFilter, 2, 5, 0.02)
    inputs[0].signalMessage(Msg('a0', 0))
    inputs[1].signalMessage(Msg('b5', 5))
    assert received == []
    sync.flush()
    assert received == [('a0', 'b5')]


def test_filter_module_does_not_import_ros():
    tree = ast.parse(Path(sync_filter.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or '' for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [m for m in imported if m.split('.')[0] in ('rclpy', 'message_filters', 'rosidl_runtime_py')]
