"""Thermal IR to the ``infrared`` tensor: one float32 plane in [0, 1].

8-bit thermal images are divided by 255. 16-bit ones (``mono16``/``16UC1``, raw sensor counts) and float
ones (``32FC1``, radiometric cameras: kelvin, degrees or counts) are mapped linearly from a range
``(low, high)`` to [0, 1] and clipped (non-finite float pixels count as ``low``). The range is either
fixed (e.g. the counts of the scene temperatures that matter on a given camera) or automatic: per frame the
1st and 99th percentiles of a subsampled image (every 4th pixel in each direction, robust to a few hot or
dead pixels), smoothed over time with an exponential moving average (weight 0.9 on the previous range) so
that the brightness of the fused image does not flicker from frame to frame. The first frame sets the range
directly. Colour-encoded thermal images are reduced to their luma first.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .frames import ImageFrame, to_grey


class ThermalNormalizer:
    """Maps thermal frames to [0, 1]; keeps the smoothed automatic range between frames."""

    def __init__(self, value_range: tuple[float, float] | None = None, *,
                 percentiles: tuple[float, float] = (1.0, 99.0), smoothing: float = 0.9,
                 sample_stride: int = 4) -> None:
        if value_range is not None:
            low, high = (float(v) for v in value_range)
            if not high > low:
                raise ConfigError(f'thermal range must have low < high, got {value_range}')
            value_range = (low, high)
        if not 0.0 <= percentiles[0] < percentiles[1] <= 100.0:
            raise ConfigError(f'thermal percentiles must satisfy 0 <= low < high <= 100, got {percentiles}')
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError(f'thermal smoothing must be in [0, 1), got {smoothing}')
        self.fixed_range = value_range
        self.percentiles = (float(percentiles[0]), float(percentiles[1]))
        self.smoothing = float(smoothing)
        self.sample_stride = max(1, int(sample_stride))
        self._range: tuple[float, float] | None = None

    @property
    def current_range(self) -> tuple[float, float] | None:
        """The range used for the last 16-bit frame (fixed or smoothed automatic)."""
        return self.fixed_range or self._range

    def reset(self) -> None:
        """Forget the automatic range (e.g. after a camera restart)."""
        self._range = None

    def _auto_range(self, plane: np.ndarray) -> tuple[float, float]:
        sample = plane[::self.sample_stride, ::self.sample_stride]
        if sample.dtype.kind == 'f':
            sample = sample[np.isfinite(sample)]
            if sample.size == 0:
                return self._range or (0.0, 1.0)
        low, high = (float(v) for v in np.percentile(sample, self.percentiles))
        if self._range is not None:
            a = self.smoothing
            low = a * self._range[0] + (1.0 - a) * low
            high = a * self._range[1] + (1.0 - a) * high
        self._range = (low, high)
        return low, high

    def range_of(self, plane: np.ndarray) -> tuple[float, float]:
        """The ``(low, high)`` that maps this 16-bit or float plane to [0, 1]: fixed, or the smoothed
        automatic range (updated by this call)."""
        return self.fixed_range or self._auto_range(plane)

    def __call__(self, stream: str, frame: ImageFrame) -> np.ndarray:
        """The frame as a C-contiguous float32 ``(H, W)`` plane in [0, 1]."""
        plane, spec = to_grey(stream, frame)
        if spec.dtype == np.uint8:
            return np.multiply(plane, np.float32(1.0 / 255.0), dtype=np.float32)
        low, high = self.range_of(plane)
        span = max(high - low, 1.0 if spec.dtype.kind in 'ui' else 1e-6)
        out = plane.astype(np.float32)
        if spec.dtype.kind == 'f':
            np.nan_to_num(out, copy=False, nan=low, posinf=high, neginf=low)
        out -= np.float32(low)
        out *= np.float32(1.0 / span)
        np.clip(out, 0.0, 1.0, out=out)
        return out
