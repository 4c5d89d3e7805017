"""Test-wide setup: loopback-only DDS, small thread counts, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nitedr_ros.paths import DDS_LOOPBACK_CONFIG, shared_data_dir

# Every test and every process it starts keeps DDS on this host.
os.environ['CYCLONEDDS_URI'] = DDS_LOOPBACK_CONFIG.as_uri()
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(autouse=True)
def rclpy_logging_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every core logger in every test enforces rclpy's one-severity-per-call-site rule (a stand-in that
    logs one call site with two severities fails the test, as the real rclpy kills the node)."""
    from nitedr_ros.core.log import CoreLog
    from nitedr_ros.core.testing import StrictSeverityLogger

    original = CoreLog.__init__

    def strict_init(self: CoreLog, target: object) -> None:
        original(self, StrictSeverityLogger(target))

    monkeypatch.setattr(CoreLog, '__init__', strict_init)


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """``../shared/data`` (or ``$NITEDR_DATA``); tests that need it skip where it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip('shared data folder not present (set NITEDR_DATA)')
    return path
