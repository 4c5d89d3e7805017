"""Per-call stage timings and a rolling latency window with percentiles (standalone, numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

STAGES: tuple[str, ...] = ('preprocess_ms', 'inference_ms', 'transfer_ms', 'postprocess_ms', 'total_ms')


@dataclass
class StageTimings:
    """Milliseconds spent in one pipeline call, per stage; ``inference_by_role`` splits inference per model.

    - ``inference_ms``: what the engines measured (CUDA events around the TensorRT execution; wall clock
      around ``session.run`` for ONNX Runtime, which on its GPU providers includes their copies);
    - ``transfer_ms``: the rest of the engine calls: host<->device copies and pinned-buffer staging on
      TensorRT (and torch-cuda), ~0 on CPU backends;
    - ``total_ms``: wall clock for the whole call, so
      ``preprocess_ms + inference_ms + transfer_ms + postprocess_ms <= total_ms`` (the rest is bookkeeping).
    """

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    transfer_ms: float = 0.0
    postprocess_ms: float = 0.0
    total_ms: float = 0.0
    inference_by_role: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        data = asdict(self)
        data.pop('inference_by_role')
        return data


def percentile_summary(values: Sequence[float] | np.ndarray,
                       percentiles: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``p<q>`` for each percentile ``q`` (linear interpolation, numpy's default), ``max``, ``mean`` and
    ``count`` of ``values`` (ms). No samples summarise to zeros with ``count`` 0."""
    array = np.asarray(values, np.float64).ravel()
    keys = [f'p{q:g}' for q in percentiles]
    if array.size == 0:
        return {**dict.fromkeys(keys, 0.0), 'max': 0.0, 'mean': 0.0, 'count': 0}
    summary = {key: float(value) for key, value in zip(keys, np.percentile(array, percentiles), strict=True)}
    summary.update(max=float(array.max()), mean=float(array.mean()), count=int(array.size))
    return summary


class LatencyWindow:
    """The last ``size`` samples in a ring buffer; O(1) ``add``, percentiles on demand.

    :meth:`summary` is :func:`percentile_summary` of the samples in the window.
    """

    def __init__(self, size: int = 100) -> None:
        if size < 1:
            raise ValueError(f'LatencyWindow size must be >= 1, got {size}')
        self.size = int(size)
        self._values = np.zeros(self.size, np.float64)
        self._next = 0
        self._count = 0
        self.total_count = 0

    def add(self, ms: float) -> None:
        self._values[self._next] = ms
        self._next = (self._next + 1) % self.size
        self._count = min(self._count + 1, self.size)
        self.total_count += 1

    def __len__(self) -> int:
        return self._count

    def values(self) -> np.ndarray:
        """The samples in the window, oldest first (a copy)."""
        if self._count < self.size:
            return self._values[:self._count].copy()
        return np.concatenate((self._values[self._next:], self._values[:self._next]))

    def clear(self) -> None:
        self._next = 0
        self._count = 0

    def summary(self) -> dict[str, float]:
        """``p50``, ``p95``, ``p99``, ``max``, ``mean`` (ms) and ``count`` of the samples in the window."""
        return percentile_summary(self._values[:self._count])
