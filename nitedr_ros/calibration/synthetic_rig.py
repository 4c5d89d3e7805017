"""A thermal + RGB camera rig rendered with known geometry, for tests and the misaligned sample bag.

Both cameras look at planes: a calibration target (a checkerboard, cold/warm squares in thermal where the
RGB camera sees dark/light ones) at chosen poses, or a scene of shapes on a plane at a chosen distance. The
RGB frame is ``K_rgb [R_target | t_target]``; the thermal frame adds the rig's pose
``p_thermal = R p_rgb + t`` and its own intrinsics and resolution, so the true homography at any plane
distance is known exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..pipeline.registration import homography_from_extrinsics
from .thermal_rgb import TargetSpec


@dataclass(frozen=True)
class SyntheticRig:
    """Two pinhole cameras: RGB and thermal (its own size, focal length and pose)."""

    rgb_hw: tuple[int, int] = (360, 640)
    thermal_hw: tuple[int, int] = (256, 320)
    rgb_focal: float = 520.0
    thermal_focal: float = 330.0
    rotation_deg: tuple[float, float, float] = (0.6, -1.2, 0.4)  # rotation vector of R, degrees
    translation_m: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def k_rgb(self) -> np.ndarray:
        h, w = self.rgb_hw
        return np.array([[self.rgb_focal, 0, (w - 1) / 2], [0, self.rgb_focal, (h - 1) / 2], [0, 0, 1]])

    def k_thermal(self) -> np.ndarray:
        h, w = self.thermal_hw
        f = self.thermal_focal
        return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])

    def rotation(self) -> np.ndarray:
        return cv2.Rodrigues(np.radians(np.asarray(self.rotation_deg, np.float64)))[0]

    def homography(self, distance_m: float) -> np.ndarray:
        """The true thermal -> RGB homography for a fronto-parallel plane at ``distance_m``."""
        return homography_from_extrinsics(self.k_rgb(), self.k_thermal(), self.rotation(), self.translation_m,
                                          distance_m)

    def extrinsics(self) -> tuple[float, ...]:
        from ..pipeline.registration import matrix_quaternion

        return (*self.translation_m, *matrix_quaternion(self.rotation()))


def board_texture(target: TargetSpec, square_px: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(checkerboard texture, 0 = dark square / 1 = light / 0.5 = margin, float32; texture px -> target
    metres 3x3). The inner corners are the target's object points; one square of margin all round."""
    squares_x, squares_y = target.columns + 1, target.rows + 1
    height, width = (squares_y + 2) * square_px, (squares_x + 2) * square_px
    texture = np.full((height, width), 1.0, np.float32)
    for j in range(squares_y):
        for i in range(squares_x):
            value = 0.0 if (i + j) % 2 == 0 else 1.0
            y0, x0 = (j + 1) * square_px, (i + 1) * square_px
            texture[y0:y0 + square_px, x0:x0 + square_px] = value
    scale = target.square_m / square_px
    to_metres = np.array([[scale, 0, -2 * target.square_m], [0, scale, -2 * target.square_m], [0, 0, 1]])
    return texture, to_metres


Pose = tuple[Sequence[float], Sequence[float]]  # rotation vector (degrees), translation (metres)


def target_views(rig: SyntheticRig, target: TargetSpec, poses: Sequence[Pose],
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(RGB uint8 HxWx3, thermal uint16 HxW)`` of the target at each pose (rotation vector in degrees,
    translation in metres, in the RGB camera frame). Thermal: inverted polarity (dark squares warm), the
    blur of thermal optics, sensor noise."""
    rng = np.random.default_rng(seed)
    texture, to_metres = board_texture(target)
    views = []
    for rotation_deg, translation in poses:
        r_target = cv2.Rodrigues(np.radians(np.asarray(rotation_deg, np.float64)))[0]
        t_target = np.asarray(translation, np.float64)
        r_thermal = rig.rotation() @ r_target
        t_thermal = rig.rotation() @ t_target + np.asarray(rig.translation_m)
        rgb = _render_plane(texture, to_metres, rig.k_rgb(), r_target, t_target, rig.rgb_hw, background=0.5)
        thermal = _render_plane(1.0 - texture, to_metres, rig.k_thermal(), r_thermal, t_thermal,
                                rig.thermal_hw, background=0.4)
        rgb8 = np.clip(40 + rgb * 180 + rng.normal(0, 2.0, rgb.shape), 0, 255).astype(np.uint8)
        thermal = cv2.GaussianBlur(thermal, (0, 0), 0.7)
        counts = np.clip(7000 + thermal * 1500 + rng.normal(0, 8.0, thermal.shape), 0, 65535)
        counts = counts.astype(np.uint16)
        views.append((np.repeat(rgb8[..., None], 3, axis=2), counts))
    return views


def _render_plane(texture: np.ndarray, to_metres: np.ndarray, k: np.ndarray, rotation: np.ndarray,
                  translation: np.ndarray, size_hw: tuple[int, int], background: float) -> np.ndarray:
    """The textured plane z = 0 of the target frame, seen by camera ``k`` at pose (rotation, translation)."""
    plane_to_image = k @ np.column_stack([rotation[:, 0], rotation[:, 1], translation])
    homography = plane_to_image @ to_metres
    return cv2.warpPerspective(texture, homography, (size_hw[1], size_hw[0]), flags=cv2.INTER_AREA,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=background)


def scene_pair(rig: SyntheticRig, distance_m: float,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visible RGB uint8, thermal uint16 from the thermal camera, the thermal image as the RGB camera would
    see it) of a plane of shapes at ``distance_m``: warm objects are the shapes, so edges coincide."""
    rng = np.random.default_rng(seed)
    height, width = rig.rgb_hw
    visible = np.full((height, width, 3), 35, np.uint8)
    warm = np.zeros((height, width), np.float32)
    for _ in range(14):
        colour = tuple(int(v) for v in rng.integers(70, 230, 3))
        heat = float(rng.uniform(0.4, 1.0))
        x, y = int(rng.integers(20, width - 60)), int(rng.integers(20, height - 60))
        if rng.random() < 0.5:
            w, h = int(rng.integers(20, 70)), int(rng.integers(30, 90))
            cv2.rectangle(visible, (x, y), (x + w, y + h), colour, -1)
            cv2.rectangle(warm, (x, y), (x + w, y + h), heat, -1)
        else:
            radius = int(rng.integers(12, 40))
            cv2.circle(visible, (x, y), radius, colour, -1)
            cv2.circle(warm, (x, y), radius, heat, -1)
    thermal_in_rgb = (6000 + warm * 4000).astype(np.float32)
    to_thermal = np.linalg.inv(rig.homography(distance_m))
    thermal = cv2.warpPerspective(thermal_in_rgb, to_thermal, (rig.thermal_hw[1], rig.thermal_hw[0]),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return visible, thermal.astype(np.uint16), thermal_in_rgb.astype(np.uint16)
