"""Thermal-to-RGB calibration from frame pairs showing a calibration target in both cameras.

The target is what thermal-RGB rigs are calibrated with: a heated (or backlit) checkerboard or circle grid,
visible to both cameras. Its polarity usually differs between them (the dark squares are the warm ones), so
both polarities are tried in each image, and each thermal detection is matched to the RGB one in the corner
order (or the reversed order: a 180 degree ambiguity of symmetric boards) that fits the homography better.

- Homography ``H`` (thermal pixel -> RGB pixel): ``cv2.findHomography`` with RANSAC over the corners of all
  frames; the error is the RMS distance, in RGB pixels, between ``H`` applied to the thermal corners and the
  RGB corners (inliers), and per frame.
- Extrinsics (with both cameras' intrinsics and the target's square size): ``cv2.solvePnP`` of the target in
  each camera per frame; the relative pose ``p_thermal = R p_rgb + t`` averaged over the frames (quaternion
  mean); the error is the RMS reprojection, in thermal pixels, of the target through that pose.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError
from ..pipeline.registration import matrix_quaternion, quaternion_matrix

PATTERNS = ('chessboard', 'circles', 'acircles')
MIN_FRAMES = 3


@dataclass(frozen=True)
class TargetSpec:
    """The calibration target: inner corners (chessboard) or circles per row and column, and the spacing."""

    pattern: str = 'chessboard'
    columns: int = 9
    rows: int = 6
    square_m: float = 0.05  # corner (or circle centre) spacing; only the extrinsics need it

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ConfigError(f'target pattern must be one of {", ".join(PATTERNS)}, got {self.pattern!r}')
        if self.columns < 2 or self.rows < 2:
            raise ConfigError(f'the target needs at least 2x2 corners, got {self.columns}x{self.rows}')
        if not self.square_m > 0:
            raise ConfigError(f'the target spacing must be > 0 m, got {self.square_m}')

    def object_points(self) -> np.ndarray:
        """The target's points in its own frame (metres, z = 0), in OpenCV's detection order."""
        points = []
        for row in range(self.rows):
            for column in range(self.columns):
                x = (2 * column + row % 2) if self.pattern == 'acircles' else column
                points.append((x * self.square_m, row * self.square_m, 0.0))
        return np.array(points, np.float64)


def to_grey8(image: np.ndarray) -> np.ndarray:
    """Any camera image (8/16-bit, float, colour) as 8-bit grey, stretched between its 1st and 99th
    percentiles (thermal counts fill a small part of 16 bits)."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY) \
        if image.dtype == np.uint8 else image[..., 0]
    if grey.dtype == np.uint8:
        return np.ascontiguousarray(grey)
    values = np.nan_to_num(grey.astype(np.float32))
    low, high = np.percentile(values, (1, 99))
    return np.clip((values - low) / max(float(high - low), 1e-6) * 255.0, 0, 255).astype(np.uint8)


def find_target(image: np.ndarray, target: TargetSpec) -> np.ndarray | None:
    """The target's points ``(N, 2)`` float32 in the image (sub-pixel), trying both polarities; None if not
    found."""
    grey = to_grey8(image)
    for candidate in (grey, 255 - grey):
        if target.pattern == 'chessboard':
            found, corners = cv2.findChessboardCornersSB(candidate, (target.columns, target.rows),
                                                         flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        else:
            symmetric = target.pattern == 'circles'
            flags = cv2.CALIB_CB_SYMMETRIC_GRID if symmetric else cv2.CALIB_CB_ASYMMETRIC_GRID
            found, corners = cv2.findCirclesGrid(candidate, (target.columns, target.rows), flags=flags)
        if found:
            return corners.reshape(-1, 2).astype(np.float32)
    return None


@dataclass(frozen=True)
class Intrinsics:
    """K (3x3) and distortion of a camera, for images of ``(height, width)``."""

    k: np.ndarray
    distortion: np.ndarray
    height: int
    width: int

    @classmethod
    def from_camera_info(cls, msg: Any) -> Intrinsics | None:
        k = np.asarray(msg.k, np.float64).reshape(3, 3)
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            return None  # an uncalibrated camera_info
        return cls(k, np.asarray(msg.d, np.float64), int(msg.height), int(msg.width))

    @classmethod
    def from_values(cls, values: Sequence[float], height: int, width: int) -> Intrinsics:
        """``fx, fy, cx, cy`` (no distortion)."""
        if len(values) != 4:
            raise ConfigError(f'intrinsics need fx,fy,cx,cy, got {list(values)}')
        fx, fy, cx, cy = (float(v) for v in values)
        return cls(np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64), np.zeros(5), height, width)


@dataclass
class Calibration:
    """What ``calibrate`` measured."""

    homography: np.ndarray
    homography_rms_px: float
    homography_inliers: int
    points: int
    frames_used: int
    frames_seen: int
    detected: dict[str, int]
    per_frame_rms_px: list[float] = field(default_factory=list)
    extrinsics: tuple[float, ...] | None = None  # tx ty tz qx qy qz qw (p_thermal = R p_rgb + t)
    extrinsics_rms_px: float | None = None
    extrinsics_spread: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f'target found in {self.detected["rgb"]} RGB and {self.detected["thermal"]} thermal frames '
                 f'of {self.frames_seen}; {self.frames_used} pairs used ({self.points} corners)',
                 f'homography (thermal -> RGB): RMS error {self.homography_rms_px:.3f} px over '
                 f'{self.homography_inliers} RANSAC inliers; worst frame '
                 f'{max(self.per_frame_rms_px, default=0.0):.3f} px']
        if self.extrinsics is not None:
            tx, ty, tz = self.extrinsics[:3]
            lines.append(f'extrinsics: t = ({tx:.4f}, {ty:.4f}, {tz:.4f}) m, reprojection RMS '
                         f'{self.extrinsics_rms_px:.3f} px (thermal); spread over frames: '
                         f'{self.extrinsics_spread.get("translation_m", 0.0) * 100:.2f} cm, '
                         f'{self.extrinsics_spread.get("rotation_deg", 0.0):.3f} deg')
        return '\n'.join(lines)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1)))) if len(a) else 0.0


def _apply(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography).reshape(-1, 2)


def calibrate(pairs: Sequence[tuple[np.ndarray, np.ndarray]], target: TargetSpec, *,
              rgb_intrinsics: Intrinsics | None = None, thermal_intrinsics: Intrinsics | None = None,
              ransac_px: float = 3.0) -> Calibration:
    """Calibrate from ``(rgb image, thermal image)`` pairs; ConfigError naming the stream when the target
    is found in fewer than :data:`MIN_FRAMES` frames."""
    detections: list[tuple[np.ndarray, np.ndarray]] = []
    detected = {'rgb': 0, 'thermal': 0}
    for rgb, thermal in pairs:
        rgb_points, thermal_points = find_target(rgb, target), find_target(thermal, target)
        detected['rgb'] += rgb_points is not None
        detected['thermal'] += thermal_points is not None
        if rgb_points is not None and thermal_points is not None:
            detections.append((rgb_points, thermal_points))
    if len(detections) < MIN_FRAMES:
        worst = min(detected, key=detected.get)
        raise ConfigError(
            f'the {target.columns}x{target.rows} {target.pattern} target was found in {detected["rgb"]} RGB '
            f'and {detected["thermal"]} thermal frames of {len(pairs)} ({len(detections)} pairs with both); '
            f'{MIN_FRAMES} pairs are needed. The {worst} stream is the problem: check that the target is in '
            f'view, in focus and {"heated or backlit (thermal contrast)" if worst == "thermal" else "lit"}, '
            'and that --pattern/--columns/--rows match it')
    # corner order: with the other polarity a board may be detected from another corner (mirrored or turned
    # 180 degrees): of the orderings that fit, keep the one whose homography keeps the image upright
    matched = [(rgb_points, _upright_order(rgb_points, thermal_points, target))
               for rgb_points, thermal_points in detections]
    all_rgb = np.concatenate([r for r, _ in matched])
    all_thermal = np.concatenate([t for _, t in matched])
    homography, mask = cv2.findHomography(all_thermal, all_rgb, cv2.RANSAC, ransac_px)
    if homography is None:
        raise ConfigError('no homography fits the detected targets (are RGB and thermal frames paired?)')
    homography = homography / homography[2, 2]
    inliers = mask.ravel().astype(bool)
    mapped = _apply(homography, all_thermal)
    calibration = Calibration(
        homography=homography, homography_rms_px=_rms(mapped[inliers], all_rgb[inliers]),
        homography_inliers=int(inliers.sum()), points=len(all_rgb), frames_used=len(matched),
        frames_seen=len(pairs), detected=detected,
        per_frame_rms_px=[_rms(_apply(homography, t), r) for r, t in matched])
    if rgb_intrinsics is not None and thermal_intrinsics is not None:
        _extrinsics(calibration, matched, target, rgb_intrinsics, thermal_intrinsics)
    return calibration


def _orderings(points: np.ndarray, target: TargetSpec) -> list[np.ndarray]:
    """The detection's points in every order a flipped or turned board could give."""
    grid = points.reshape(target.rows, target.columns, 2)
    flips = [grid, grid[::-1, ::-1], grid[::-1, :], grid[:, ::-1]]
    if target.rows == target.columns:
        flips += [f.transpose(1, 0, 2) for f in flips]
    return [np.ascontiguousarray(f.reshape(-1, 2)) for f in flips]


def _upright_order(rgb_points: np.ndarray, thermal_points: np.ndarray, target: TargetSpec) -> np.ndarray:
    """The ordering of the thermal points that matches the RGB ones: it fits a homography (a few px) that
    does not mirror and turns the image least (cameras on one rig are mounted the same way up)."""
    best, best_key = thermal_points, (np.inf, np.inf)
    for candidate in _orderings(thermal_points, target):
        homography, _ = cv2.findHomography(candidate, rgb_points, 0)
        if homography is None:
            continue
        error = _rms(_apply(homography, candidate), rgb_points)
        linear = homography[:2, :2] - np.outer(homography[:2, 2], homography[2, :2])
        if error > 5.0 or np.linalg.det(linear) <= 0:
            continue
        turn = abs(np.arctan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1]))
        if (turn, error) < best_key:
            best, best_key = candidate, (turn, error)
    return best


def _pose(object_points: np.ndarray, image_points: np.ndarray,
          camera: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points.astype(np.float64), camera.k, camera.distortion,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ConfigError('solvePnP found no pose of the target (are the intrinsics right?)')
    return cv2.Rodrigues(rvec)[0], tvec.reshape(3)


def _extrinsics(calibration: Calibration, matched: list[tuple[np.ndarray, np.ndarray]], target: TargetSpec,
                rgb: Intrinsics, thermal: Intrinsics) -> None:
    """Relative pose per frame from both cameras' target poses, averaged; reprojection error in thermal."""
    objects = target.object_points()
    rotations, translations, poses = [], [], []
    for rgb_points, thermal_points in matched:
        r_rgb, t_rgb = _pose(objects, rgb_points, rgb)
        r_thermal, t_thermal = _pose(objects, thermal_points, thermal)
        rotation = r_thermal @ r_rgb.T
        rotations.append(np.array(matrix_quaternion(rotation)))
        translations.append(t_thermal - rotation @ t_rgb)
        poses.append((r_rgb, t_rgb, thermal_points))
    quaternions = np.array(rotations)
    quaternions *= np.sign(quaternions @ quaternions[0])[:, None]  # one hemisphere before averaging
    mean_q = quaternions.mean(axis=0)
    mean_q /= np.linalg.norm(mean_q)
    rotation = quaternion_matrix(*mean_q)
    translation = np.mean(translations, axis=0)
    errors = []
    for r_rgb, t_rgb, thermal_points in poses:
        r_thermal = rotation @ r_rgb
        t_thermal = rotation @ t_rgb + translation
        projected, _ = cv2.projectPoints(objects, cv2.Rodrigues(r_thermal)[0], t_thermal, thermal.k,
                                         thermal.distortion)
        errors.append(projected.reshape(-1, 2) - thermal_points)
    residuals = np.concatenate(errors)
    angles = [np.degrees(2 * np.arccos(min(1.0, abs(float(q @ mean_q))))) for q in quaternions]
    calibration.extrinsics = (*(float(v) for v in translation), *(float(v) for v in mean_q))
    calibration.extrinsics_rms_px = float(np.sqrt(np.mean(np.sum(residuals ** 2, axis=1))))
    calibration.extrinsics_spread = {
        'translation_m': float(np.max(np.linalg.norm(np.array(translations) - translation, axis=1))),
        'rotation_deg': float(max(angles))}


def parameter_yaml(calibration: Calibration, *, mode: str = 'homography', plane_distance_m: float = 20.0,
                   source: str = '') -> str:
    """The node parameter file with the registration (``/**: ros__parameters: registration: ...``)."""
    import yaml

    registration: dict[str, Any] = {
        'mode': mode, 'homography': [float(v) for v in calibration.homography.reshape(-1)],
        'plane_distance_m': float(plane_distance_m)}
    if calibration.extrinsics is not None:
        registration['extrinsics'] = [float(v) for v in calibration.extrinsics]
    header = [f'# nitedr calibrate-thermal, {datetime.datetime.now():%Y-%m-%d %H:%M}' + (f', from {source}'
                                                                                          if source else ''),
              *[f'# {line}' for line in calibration.summary().splitlines()],
              '# Load with --params (nitedr run / bag derain) or params_file:= (ros2 launch); '
              'registration.mode chooses homography or extrinsics (with both camera_info).']
    body = yaml.safe_dump({'/**': {'ros__parameters': {'registration': registration}}}, sort_keys=False,
                          default_flow_style=None, width=1000)
    return '\n'.join(header) + '\n' + body


def write_parameters(path: str | Path, text: str, force: bool = False) -> Path:
    from ..fileio import write_text_atomic
    from ..paths import ensure_writable_output

    target = ensure_writable_output(Path(path), force)
    return write_text_atomic(target, text)
