"""Thermal silence on the node clock: when to fuse, when to publish derained RGB alone, and the timeout.

A thermal frame counts as *current* when it arrived and its stamp is within the timeout of the node clock
(a stream lagging more than that cannot be fused in time). No current frame for the timeout -> degraded
(the node derains without fusion); the next current frame -> fusing again.

The timeout is ``ir_timeout_ms`` when that parameter is set (> 0). At 0 (the default) it follows the camera:
``AUTO_PERIODS`` times the median spacing of the last thermal stamps, at least ``AUTO_FLOOR_MS`` (thermal
cameras pause a few hundred ms for flat-field correction), and ``AUTO_START_MS`` until
``AUTO_MIN_SAMPLES`` spacings were seen. :meth:`ThermalWatch.timeout_source` says which was used
(diagnostics show it).

When the node clock goes back (a bag loops, or ``nitedr run`` switches to ``/clock`` when a bag starts
playing), the watch starts over on the new clock: what it saw on the old one says nothing about the new.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from dataclasses import dataclass

from .clock import NS_PER_MS

AUTO_PERIODS = 4.0
AUTO_FLOOR_MS = 500.0
AUTO_START_MS = 1000.0
AUTO_MIN_SAMPLES = 3
AUTO_WINDOW = 32


@dataclass(frozen=True)
class Transition:
    """What one update did: the state after it, and whether it entered or left degraded mode."""

    degraded: bool
    entered: bool = False
    left: bool = False


class ThermalWatch:
    """Thread-safe degradation state machine (see the module docstring)."""

    def __init__(self, timeout_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._parameter_ms = float(timeout_ms)
        self._spacings_ns: deque[int] = deque(maxlen=AUTO_WINDOW)
        self._last_stamp_ns: int | None = None
        self._degraded = False
        self._thermal_seen_ns: int | None = None
        self._clock_seen_ns: int | None = None
        self._silent_since_ns = 0

    # -- timeout ----------------------------------------------------------------------------------------
    def set_parameter(self, timeout_ms: float) -> None:
        """``ir_timeout_ms`` changed (0 = automatic)."""
        with self._lock:
            self._parameter_ms = float(timeout_ms)

    def timeout_ms(self) -> float:
        with self._lock:
            return self._timeout_ms_locked()

    def timeout_source(self) -> str:
        """'parameter', or how the automatic timeout was derived."""
        with self._lock:
            if self._parameter_ms > 0:
                return 'parameter ir_timeout_ms'
            period = self._period_ms_locked()
            if period is None:
                return f'automatic: {AUTO_START_MS:g} ms until the thermal rate is known'
            return (f'automatic: max({AUTO_PERIODS:g} x {period:.1f} ms thermal period, '
                    f'{AUTO_FLOOR_MS:g} ms)')

    def _period_ms_locked(self) -> float | None:
        if len(self._spacings_ns) < AUTO_MIN_SAMPLES:
            return None
        return statistics.median(self._spacings_ns) / NS_PER_MS

    def _timeout_ms_locked(self) -> float:
        if self._parameter_ms > 0:
            return self._parameter_ms
        period = self._period_ms_locked()
        return AUTO_START_MS if period is None else max(AUTO_FLOOR_MS, AUTO_PERIODS * period)

    # -- state ------------------------------------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        return self._degraded

    def degraded_for_ms(self, now_ns: int) -> float:
        with self._lock:
            return (now_ns - self._silent_since_ns) / NS_PER_MS if self._degraded else 0.0

    def is_current(self, now_ns: int, stamp_ns: int) -> bool:
        """Whether a thermal frame stamped ``stamp_ns`` is current at ``now_ns`` (always before the clock)."""
        with self._lock:
            return now_ns <= 0 or now_ns - stamp_ns <= self._timeout_ms_locked() * NS_PER_MS

    def thermal_stamp(self, stamp_ns: int) -> None:
        """A thermal frame's stamp: feeds the rate estimate of the automatic timeout."""
        with self._lock:
            last = self._last_stamp_ns
            if last is not None and stamp_ns > last:
                self._spacings_ns.append(stamp_ns - last)
            elif last is not None and stamp_ns < last:
                self._spacings_ns.clear()  # the clock went back (bag loop): measure again
            self._last_stamp_ns = stamp_ns

    def update(self, now_ns: int, thermal_arrived: bool = False) -> Transition:
        """Advance on the node clock; ``thermal_arrived``: a current thermal frame arrived now."""
        with self._lock:
            if now_ns <= 0:
                return Transition(self._degraded)
            if self._clock_seen_ns is not None and now_ns < self._clock_seen_ns:  # the clock went back:
                self._clock_seen_ns, self._thermal_seen_ns = now_ns, None  # start over on the new clock
                if self._degraded:
                    self._degraded = False
                    return Transition(False, left=True)
            if self._clock_seen_ns is None:
                self._clock_seen_ns = now_ns  # first reading
            if thermal_arrived:
                self._thermal_seen_ns = now_ns
                if self._degraded:
                    self._degraded = False
                    return Transition(False, left=True)
                return Transition(False)
            if self._degraded:
                return Transition(True)
            since = self._thermal_seen_ns if self._thermal_seen_ns is not None else self._clock_seen_ns
            if now_ns < since:
                self._thermal_seen_ns = now_ns
            elif now_ns - since > self._timeout_ms_locked() * NS_PER_MS:
                self._degraded = True
                self._silent_since_ns = since
                return Transition(True, entered=True)
            return Transition(False)
