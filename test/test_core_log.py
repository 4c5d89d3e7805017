"""The core logs the way rclpy allows: one severity per call site (else rclpy raises and the node dies)."""

from __future__ import annotations

import logging

import pytest

from nitedr_ros.core.clock import ManualClock
from nitedr_ros.core.log import CoreLog
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.testing import PassthroughPipeline, RecordingSink, StrictSeverityLogger

MS = 1_000_000


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.getMessage()))


def test_the_stand_in_refuses_a_second_severity_at_one_call_site_as_rclpy_does() -> None:
    strict = StrictSeverityLogger(logging.getLogger('strict-test'))

    def one_site(level: str) -> None:
        getattr(strict, level)('message')  # the pattern that killed the node on a real graph

    one_site('info')
    with pytest.raises(ValueError, match='severity cannot be changed'):
        one_site('warning')


def test_core_log_gives_each_severity_its_own_call_site() -> None:
    handler = _Collect()
    target = logging.getLogger('core-log-test')
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    log = CoreLog(StrictSeverityLogger(target))
    for severity in ('info', 'warning', 'error', 'info', 'error'):
        log.throttled(f'key-{severity}', severity, f'{severity} message', period_s=0.0)
    log.info('plain info')
    log.warning('plain warning')
    assert [level for level, _ in handler.records] == [
        'INFO', 'WARNING', 'ERROR', 'INFO', 'ERROR', 'INFO', 'WARNING']


def test_throttled_logs_a_key_once_per_period() -> None:
    handler = _Collect()
    target = logging.getLogger('core-log-throttle')
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    log = CoreLog(target)
    assert log.throttled('k', 'warning', 'first', period_s=60.0)
    assert not log.throttled('k', 'warning', 'second', period_s=60.0)
    assert log.throttled('other', 'error', 'third', period_s=60.0)
    assert [m for _, m in handler.records] == ['first', 'third']


def test_a_node_without_thermal_logs_info_then_warnings_and_keeps_running() -> None:
    """The real-graph crash: 'pipeline ready' (info), then the thermal timeout (warning) from the timer."""
    clock = ManualClock(1_000 * MS)
    sink = RecordingSink()
    core = NodeCore({'mode': 'nitedr', 'ir_timeout_ms': 100.0}, sink=sink, clock=clock,
                    pipeline=PassthroughPipeline(), own_timer=False,
                    logger=StrictSeverityLogger(logging.getLogger('node-under-rclpy-rules')))
    core.start()
    try:
        for step in range(1, 6):
            clock.set_ns((1_000 + 300 * step) * MS)
            core.tick()  # the diagnostics timer: thermal silence -> warning
        assert core.degraded
        assert sink.diagnostics, 'diagnostics kept flowing'
    finally:
        core.stop()
