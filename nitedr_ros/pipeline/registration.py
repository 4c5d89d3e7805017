"""Thermal-to-RGB registration: the thermal frame warped into the RGB camera's pixels before fusion.

On a car the thermal camera is a separate sensor (its own resolution, field of view and mount). Its frame is
mapped onto the RGB frame by a 3x3 homography ``H`` (thermal pixel -> RGB pixel, ``x_rgb ~ H x_thermal``),
exact for a plane and good for scenes far compared with the baseline (a car beyond a few metres):

- ``identity``: pre-registered pairs (datasets, co-axial rigs): the thermal frame is resized to the RGB
  size, as before;
- ``homography``: ``H`` given (``nitedr calibrate-thermal`` measures it);
- ``extrinsics``: ``H`` from both cameras' intrinsics (their ``camera_info``), the rigid transform between
  them (``p_thermal = R p_rgb + t``, metres) and a plane at ``plane_distance_m`` in front of the RGB camera:
  ``x_thermal ~ K_t (R + t n^T / d) K_rgb^-1 x_rgb`` with ``n = (0, 0, 1)``; until both camera_info have
  arrived the thermal frame is resized (and the diagnostics say so).

The warp is a precomputed remap map per (thermal size, RGB size, H), so each frame costs one ``cv2.remap``.
RGB pixels the thermal camera does not see get a weight below 1: a coverage map, feathered over a few
pixels, with which the fused image is blended back to the derained visible image, so they are fused as
visible only and no seam marks the thermal frame's border.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .registration_spec import RegistrationSpec

# the coverage weight ramps from 0 to 1 over this fraction of the RGB frame's shorter side (at least 2 px)
FEATHER_FRACTION = 0.05


def quaternion_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    """Rotation matrix of a (normalised) quaternion."""
    q = np.array([qx, qy, qz, qw], np.float64)
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(qx, qy, qz, qw) of a rotation matrix (qw >= 0)."""
    r = np.asarray(rotation, np.float64)
    qw = np.sqrt(max(0.0, 1.0 + np.trace(r))) / 2.0
    if qw > 1e-6:
        q = np.array([(r[2, 1] - r[1, 2]) / (4 * qw), (r[0, 2] - r[2, 0]) / (4 * qw),
                      (r[1, 0] - r[0, 1]) / (4 * qw), qw])
    else:  # 180 degree rotation: from the largest diagonal element
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = np.sqrt(max(0.0, 1.0 + r[i, i] - r[j, j] - r[k, k])) * 2.0
        q = np.zeros(4)
        q[i] = s / 4.0
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
        q[3] = (r[k, j] - r[j, k]) / s
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


def homography_from_extrinsics(k_rgb: np.ndarray, k_thermal: np.ndarray, rotation: np.ndarray,
                               translation: Sequence[float], plane_distance_m: float) -> np.ndarray:
    """``H`` (thermal pixel -> RGB pixel) for a fronto-parallel plane ``plane_distance_m`` in front of the
    RGB camera, with ``p_thermal = rotation p_rgb + translation``."""
    normal = np.array([0.0, 0.0, 1.0])
    thermal_from_rgb = np.asarray(k_thermal, np.float64) @ (
        np.asarray(rotation, np.float64) + np.outer(np.asarray(translation, np.float64), normal)
        / plane_distance_m) @ np.linalg.inv(np.asarray(k_rgb, np.float64))
    homography = np.linalg.inv(thermal_from_rgb)
    return homography / homography[2, 2]


@dataclass(frozen=True)
class Intrinsics:
    """A camera's K for images of ``(height, width)`` (from its camera_info)."""

    k: tuple[float, ...]
    height: int
    width: int

    def scaled_to(self, height: int, width: int) -> np.ndarray:
        """K for images of another size (binning, a resized stream)."""
        k = np.asarray(self.k, np.float64).reshape(3, 3).copy()
        if (height, width) != (self.height, self.width) and self.height > 0 and self.width > 0:
            k[0] *= width / self.width
            k[1] *= height / self.height
            k[2] = (0.0, 0.0, 1.0)
        return k


@dataclass
class _Warp:
    map1: np.ndarray
    map2: np.ndarray
    weight: np.ndarray | None  # None: every RGB pixel is covered
    coverage: float


class ThermalRegistrar:
    """Warps thermal planes into the RGB frame (thread-safe; settings change live)."""

    def __init__(self, spec: RegistrationSpec | None = None) -> None:
        self._lock = threading.Lock()
        self._spec = spec or RegistrationSpec()
        self._intrinsics: dict[str, Intrinsics] = {}
        self._cache: dict[tuple, _Warp] = {}
        self.coverage = 1.0  # of the last warped frame

    @property
    def spec(self) -> RegistrationSpec:
        return self._spec

    def set_spec(self, spec: RegistrationSpec) -> None:
        with self._lock:
            self._spec = spec
            self._cache.clear()

    def set_intrinsics(self, stream: str, k: Sequence[float], height: int, width: int) -> None:
        """A camera's K (``rgb`` or ``thermal``, from its camera_info); used by ``extrinsics``."""
        intrinsics = Intrinsics(tuple(float(v) for v in k), int(height), int(width))
        if len(intrinsics.k) != 9 or intrinsics.k[0] <= 0 or intrinsics.k[4] <= 0:
            return  # an uncalibrated camera_info (K all zeros) says nothing
        with self._lock:
            if self._intrinsics.get(stream) != intrinsics:
                self._intrinsics[stream] = intrinsics
                self._cache.clear()

    def homography(self, thermal_hw: tuple[int, int], rgb_hw: tuple[int, int]) -> np.ndarray | None:
        """``H`` in use for these frame sizes; None: resize only (identity, or intrinsics missing)."""
        spec = self._spec
        if spec.mode == 'homography':
            return np.asarray(spec.homography, np.float64).reshape(3, 3)
        if spec.mode == 'extrinsics' and {'rgb', 'thermal'} <= set(self._intrinsics):
            k_rgb = self._intrinsics['rgb'].scaled_to(*rgb_hw)
            k_thermal = self._intrinsics['thermal'].scaled_to(*thermal_hw)
            tx, ty, tz, *quaternion = spec.extrinsics
            return homography_from_extrinsics(k_rgb, k_thermal, quaternion_matrix(*quaternion), (tx, ty, tz),
                                              spec.plane_distance_m)
        return None

    def describe(self) -> dict[str, str]:
        """For diagnostics: the registration in use and the thermal coverage of the last RGB frame."""
        spec = self._spec
        if spec.mode == 'extrinsics':
            missing = sorted({'rgb', 'thermal'} - set(self._intrinsics))
            source = (f'extrinsics + camera_info, plane {spec.plane_distance_m:g} m' if not missing else
                      f'extrinsics: waiting for camera_info of {", ".join(missing)} (resizing meanwhile)')
        else:
            source = {'identity': 'identity (pre-registered: thermal resized to the RGB size)',
                      'homography': 'homography parameter'}[spec.mode]
        return {'registration': source, 'thermal_coverage': f'{self.coverage:.3f}'}

    def warp(self, plane: np.ndarray, rgb_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(plane in the RGB frame at rgb_hw, coverage weight (H, W) float32 or None when all covered)``.
        Any dtype cv2.remap takes (uint8, uint16, float32)."""
        thermal_hw = (int(plane.shape[0]), int(plane.shape[1]))
        with self._lock:
            homography = self.homography(thermal_hw, rgb_hw)
            if homography is None:
                self.coverage = 1.0
                if thermal_hw == rgb_hw:
                    return plane, None
                return cv2.resize(plane, (rgb_hw[1], rgb_hw[0]), interpolation=cv2.INTER_LINEAR), None
            key = (thermal_hw, rgb_hw, homography.tobytes())
            warp = self._cache.get(key)
            if warp is None:
                warp = self._cache[key] = _build_warp(homography, thermal_hw, rgb_hw)
            self.coverage = warp.coverage
        warped = cv2.remap(plane, warp.map1, warp.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return warped, warp.weight


def _build_warp(homography: np.ndarray, thermal_hw: tuple[int, int], rgb_hw: tuple[int, int]) -> _Warp:
    """Remap maps (RGB pixel -> thermal pixel) and the feathered coverage weight."""
    height, width = rgb_hw
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    inverse = np.linalg.inv(homography)
    denominator = inverse[2, 0] * cols + inverse[2, 1] * rows + inverse[2, 2]
    behind = denominator <= 1e-12  # points the plane maps behind the thermal camera
    denominator = np.where(behind, 1.0, denominator)
    map_x = ((inverse[0, 0] * cols + inverse[0, 1] * rows + inverse[0, 2]) / denominator).astype(np.float32)
    map_y = ((inverse[1, 0] * cols + inverse[1, 1] * rows + inverse[1, 2]) / denominator).astype(np.float32)
    inside = (~behind & (map_x >= -0.5) & (map_x <= thermal_hw[1] - 0.5) & (map_y >= -0.5)
              & (map_y <= thermal_hw[0] - 0.5))
    map_x[behind] = -1.0
    map_y[behind] = -1.0
    map1, map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    coverage = float(inside.mean())
    if coverage >= 1.0:
        return _Warp(map1, map2, None, 1.0)
    feather = max(2.0, FEATHER_FRACTION * min(height, width))
    distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    weight = np.clip(distance / np.float32(feather), 0.0, 1.0).astype(np.float32)
    return _Warp(map1, map2, weight, coverage)


def blend_covered(fused: np.ndarray, visible: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """``weight * fused + (1 - weight) * visible`` per pixel, in the layout of ``fused`` (CHW float or
    (1, H, W, C) uint8); ``weight`` (H, W); None returns ``fused`` unchanged."""
    if weight is None:
        return fused
    if fused.dtype == np.uint8:
        w = weight[None, :, :, None]
        out = fused.astype(np.float32) * w + visible.astype(np.float32) * (1.0 - w)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    w = weight[None] if fused.ndim == 3 else weight
    return fused * w + visible * (1.0 - w)
