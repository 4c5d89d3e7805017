"""Fit an image tensor to what an engine accepts, and undo it on the output.

Order of preference: reflect-pad (OpenCV ``BORDER_REFLECT_101``, torch's ``reflect``) the bottom and right
edges up to the model's ``multiple_of`` and up to the engine's minimum size; downscale (keeping the aspect
ratio) only when the image exceeds the engine's maximum; resize to the exact size for a static engine.
Outputs are cropped back (a view, no copy) and resized back when the input was resized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..engines.base import ShapeLimits


@dataclass(frozen=True)
class FitPlan:
    """Source size, size after resizing (equal to the source when not resized) and padded size."""

    source_hw: tuple[int, int]
    scaled_hw: tuple[int, int]
    padded_hw: tuple[int, int]

    @property
    def identity(self) -> bool:
        return self.source_hw == self.scaled_hw == self.padded_hw


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def plan_fit(height: int, width: int, multiple_of: int = 1, limits: ShapeLimits | None = None) -> FitPlan:
    """How to bring an ``height x width`` image to a size the engine accepts."""
    limits = limits or ShapeLimits()
    multiple = max(1, int(multiple_of))
    if limits.fixed is not None:
        fixed = (int(limits.fixed[0]), int(limits.fixed[1]))
        return FitPlan((height, width), fixed, fixed)
    sh, sw = height, width
    if limits.maximum is not None:
        max_h = max(multiple, limits.maximum[0] // multiple * multiple)
        max_w = max(multiple, limits.maximum[1] // multiple * multiple)
        if _round_up(sh, multiple) > max_h or _round_up(sw, multiple) > max_w:
            scale = min(max_h / sh, max_w / sw)
            sh = max(1, min(max_h, int(sh * scale)))
            sw = max(1, min(max_w, int(sw * scale)))
    ph, pw = _round_up(sh, multiple), _round_up(sw, multiple)
    if limits.minimum is not None:
        ph = max(ph, _round_up(limits.minimum[0], multiple))
        pw = max(pw, _round_up(limits.minimum[1], multiple))
    return FitPlan((height, width), (sh, sw), (ph, pw))


def _resize_chw(chw: np.ndarray, hw: tuple[int, int], interpolation: int) -> np.ndarray:
    out = np.empty((chw.shape[0], hw[0], hw[1]), np.float32)
    for c in range(chw.shape[0]):
        cv2.resize(chw[c], (hw[1], hw[0]), dst=out[c], interpolation=interpolation)
    return out


def _reflect_pad(chw: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    c, h, w = chw.shape
    ph, pw = hw
    if ph - h >= h or pw - w >= w:  # tiny image: numpy repeats the reflection as often as needed
        return np.pad(chw, ((0, 0), (0, ph - h), (0, pw - w)), mode='reflect')[None]
    out = np.empty((1, c, ph, pw), np.float32)
    body = out[0]
    body[:, :h, :w] = chw
    if ph > h:  # row h + i mirrors row h - 2 - i
        body[:, h:, :w] = chw[:, h - 2:2 * h - ph - 2:-1, :] if 2 * h - ph - 2 >= 0 else chw[:, h - 2::-1, :]
    if pw > w:
        cols = body[:, :, w - 2:2 * w - pw - 2:-1] if 2 * w - pw - 2 >= 0 else body[:, :, w - 2::-1]
        body[:, :, w:] = cols
    return out


def fit(chw: np.ndarray, plan: FitPlan) -> np.ndarray:
    """``(C, H, W)`` float32 -> ``(1, C, H', W')`` contiguous, per the plan (no copy when nothing changes)."""
    if chw.shape[1:] != plan.source_hw:
        raise ValueError(f'tensor size {chw.shape[1:]} does not match the plan {plan.source_hw}')
    if plan.scaled_hw != plan.source_hw:
        shrinking = plan.scaled_hw[0] < plan.source_hw[0]
        chw = _resize_chw(chw, plan.scaled_hw, cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if plan.padded_hw != plan.scaled_hw:
        return _reflect_pad(chw, plan.padded_hw)
    return np.ascontiguousarray(chw)[None]


def unfit(nchw: np.ndarray, plan: FitPlan) -> np.ndarray:
    """An engine output ``(1, C, H', W')`` back to ``(C, H, W)`` of the source (a view unless resized)."""
    out = nchw[0]
    if out.shape[1:] != plan.padded_hw:
        raise ValueError(f'engine output size {out.shape[1:]} differs from its input {plan.padded_hw}')
    out = out[:, :plan.scaled_hw[0], :plan.scaled_hw[1]]
    if plan.scaled_hw != plan.source_hw:
        out = _resize_chw(np.ascontiguousarray(out), plan.source_hw, cv2.INTER_LINEAR)
    return out
