"""Rain intensity from the derain residual: the rain layer is what the derain network took away.

``rain_intensity(rainy, derained)`` is the mean absolute difference of their luminance (BT.601 weights),
in 8-bit levels (0-255 whatever the encoding), over a grid of every ``step``-th pixel (the residual is
smooth at that scale and 1/16 of the pixels cost ~0.3 ms at 720p). A clean frame gives about the network's
own change to a clean image (near 0); the value rises with rain density. What counts as a blinded camera is
calibrated on rendered rain of known density (``benchmarks/calibrate_rain_intensity.py``) and set by the
``rain.*`` node parameters.
"""

from __future__ import annotations

import numpy as np

from .frames import ENCODINGS, ImageFrame

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
GRID_STEP = 4


def luma8(frame: ImageFrame, step: int = GRID_STEP) -> np.ndarray:
    """Luminance of every ``step``-th pixel, float32 on the 0-255 scale."""
    spec = ENCODINGS[frame.encoding]
    data = frame.data[::step, ::step]
    scale = np.float32(255.0 / np.iinfo(spec.dtype).max) if spec.dtype.kind in 'ui' else np.float32(255.0)
    if spec.channels == 1:
        plane = data if data.ndim == 2 else data[..., 0]
        return plane.astype(np.float32) * scale
    weights = LUMA if spec.order in ('rgb', 'rgba') else LUMA[::-1]
    return (data[..., :3].astype(np.float32) @ weights) * scale


def rain_intensity(rainy: ImageFrame, derained: ImageFrame, step: int = GRID_STEP) -> float:
    """Mean |Y(rainy) - Y(derained)| in 8-bit levels."""
    return float(np.abs(luma8(rainy, step) - luma8(derained, step)).mean())
