"""The core's logging: one call site per severity, and throttling by key.

rclpy's logger (``RcutilsLogger``) remembers the severity used at each call site (function, file, line,
bytecode offset of the caller) and raises ``ValueError('Logger severity cannot be changed between calls.')``
when the same site logs with another severity. A single ``getattr(logger, level)(message)`` line therefore
kills the node at its first warning after an info. :class:`CoreLog` calls the target's ``info``,
``warning`` and ``error`` each from its own line, so every severity has its own call site; everything in
the core and its transports logs through it. Targets: an rclpy logger, a :class:`logging.Logger`, or any
object with those three methods.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

SEVERITIES: tuple[str, ...] = ('info', 'warning', 'error')


class CoreLog:
    """``info``/``warning``/``error`` on a target logger, each from a call site of its own, and
    :meth:`throttled` (at most once per ``period_s`` per key)."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._by_severity: dict[str, Callable[[str], None]] = {
            'info': self.info, 'warning': self.warning, 'error': self.error,
        }

    def info(self, message: str) -> None:
        self._target.info(message)

    def warning(self, message: str) -> None:
        self._target.warning(message)

    def error(self, message: str) -> None:
        self._target.error(message)

    def throttled(self, key: str, severity: str, message: str, period_s: float = 5.0) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``period_s`` ago; True when it was logged."""
        log = self._by_severity[severity]  # KeyError for an unknown severity: a bug, not input
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -period_s) < period_s:
                return False
            self._last[key] = now
        log(message)
        return True
