"""The rain intensity of each derained camera over time: the last value and a smoothed one (thread-safe).

The pipeline measures each set's derain residual (:mod:`nitedr_ros.pipeline.rain_intensity`); the smoothed
value (an exponential average over about :data:`SMOOTHING_SETS` sets) decides the ``rain`` diagnostics level,
so one frame with a passing truck's spray does not flip the camera to degraded.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

SMOOTHING_SETS = 10
PRIMARY_OUTPUTS = ('derained_rgb', 'derained_left')  # whose intensity goes on ~/rain_intensity


class RainWatch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, float]] = {}

    def update(self, intensities: Mapping[str, float]) -> float | None:
        """Record a set's intensities; returns the primary camera's (the one ``~/rain_intensity`` carries)."""
        alpha = 2.0 / (SMOOTHING_SETS + 1)
        with self._lock:
            for output, value in intensities.items():
                previous = self._values.get(output)
                smoothed = value if previous is None else previous[1] + alpha * (value - previous[1])
                self._values[output] = (float(value), float(smoothed))
        return next((float(intensities[o]) for o in PRIMARY_OUTPUTS if o in intensities), None)

    def snapshot(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            return dict(self._values)
