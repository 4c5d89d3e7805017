"""Seeing and measuring thermal-to-RGB alignment: thermal edges drawn over the RGB frame, and a score.

``edge_alignment`` is the correlation of the gradient magnitudes of the RGB frame and of the thermal frame
mapped into it (over the pixels the thermal camera covers): 1 when every edge lies on the other's edge, near
0 when they miss each other. It is what tells a person (and the tests) whether a registration helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..pipeline.registration import ThermalRegistrar
from ..pipeline.registration_spec import RegistrationSpec
from .thermal_rgb import to_grey8


def gradient_magnitude(grey: np.ndarray) -> np.ndarray:
    image = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
    dx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    return cv2.magnitude(dx, cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3))


def edge_alignment(rgb: np.ndarray, thermal_in_rgb: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Correlation of the gradient magnitudes over the covered pixels (weight > 0.5)."""
    a = gradient_magnitude(to_grey8(rgb))
    b = gradient_magnitude(to_grey8(thermal_in_rgb))
    mask = np.ones(a.shape, bool) if weight is None else weight > 0.5
    a, b = a[mask] - a[mask].mean(), b[mask] - b[mask].mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def warp_thermal(thermal: np.ndarray, rgb_hw: tuple[int, int], spec: RegistrationSpec,
                 intrinsics: dict[str, tuple] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The thermal frame in the RGB frame's pixels as the node would map it (same code path)."""
    registrar = ThermalRegistrar(spec)
    for stream, (k, height, width) in (intrinsics or {}).items():
        registrar.set_intrinsics(stream, k, height, width)
    plane = thermal if thermal.ndim == 2 else thermal[..., 0]
    return registrar.warp(np.ascontiguousarray(plane), rgb_hw)


def overlay(rgb: np.ndarray, thermal_in_rgb: np.ndarray) -> np.ndarray:
    """The RGB frame (dimmed) with the thermal frame's edges in magenta."""
    base = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
    out = (base[..., :3].astype(np.float32) * 0.75).astype(np.uint8)
    edges = cv2.Canny(to_grey8(thermal_in_rgb), 40, 120) > 0
    edges = cv2.dilate(edges.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    out[edges] = (255, 0, 255)
    return out


def write_check(path: str | Path, rows: Sequence[tuple[np.ndarray, np.ndarray]], spec: RegistrationSpec,
                intrinsics: dict[str, tuple] | None = None) -> dict[str, float]:
    """A PNG with one row per ``(rgb, thermal)`` pair: thermal edges over RGB without registration (resized)
    and with it; returns the mean edge alignment of both."""
    from ..figures import pyplot, save_figure

    plt = pyplot()
    figure, axes = plt.subplots(len(rows), 2, figsize=(10, 3.2 * len(rows)), squeeze=False)
    scores: dict[str, list[float]] = {'without': [], 'with': []}
    for row, (rgb, thermal) in enumerate(rows):
        hw = rgb.shape[:2]
        for column, (name, used) in enumerate((('without', RegistrationSpec()), ('with', spec))):
            warped, weight = warp_thermal(thermal, hw, used, intrinsics)
            score = edge_alignment(rgb, warped, weight)
            scores[name].append(score)
            axis = axes[row][column]
            axis.imshow(overlay(rgb, warped))
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f'{name} registration: edge alignment {score:.2f}', fontsize=9)
    figure.suptitle('thermal edges (magenta) over the RGB frame', fontsize=11)
    figure.tight_layout()
    save_figure(figure, Path(path), dpi=80)
    return {name: float(np.mean(values)) for name, values in scores.items()}
