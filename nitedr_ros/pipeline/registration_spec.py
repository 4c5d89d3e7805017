"""The thermal-to-RGB registration settings and their validation (pure Python: the parameter schema checks
them without numpy or OpenCV). The warp itself is :mod:`nitedr_ros.pipeline.registration`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

REGISTRATION_MODES = ('identity', 'homography', 'extrinsics')
IDENTITY_3X3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
NO_EXTRINSICS = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # tx ty tz qx qy qz qw


@dataclass(frozen=True)
class RegistrationSpec:
    """The ``registration.*`` parameters (:mod:`nitedr_ros.pipeline.registration` explains them)."""

    mode: str = 'identity'
    homography: tuple[float, ...] = IDENTITY_3X3
    plane_distance_m: float = 20.0
    extrinsics: tuple[float, ...] = NO_EXTRINSICS

    def __post_init__(self) -> None:
        problem = registration_problem(self.mode, self.homography, self.plane_distance_m, self.extrinsics)
        if problem:
            raise ConfigError(problem)


def registration_problem(mode: str, homography: Sequence[float], plane_distance_m: float,
                         extrinsics: Sequence[float]) -> str:
    """Why these registration values cannot be used ('' when they can)."""
    if mode not in REGISTRATION_MODES:
        return f'registration.mode must be one of {", ".join(REGISTRATION_MODES)}, got {mode!r}'
    if len(homography) != 9 or not all(math.isfinite(v) for v in homography):
        return f'registration.homography must be 9 finite numbers (3x3, row by row), got {list(homography)}'
    a, b, c, d, e, f, g, h, i = (float(v) for v in homography)
    determinant = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if abs(determinant) < 1e-12 * max(1.0, max(abs(float(v)) for v in homography)) ** 3:
        return f'registration.homography is singular (determinant 0): {list(homography)}'
    if not (math.isfinite(plane_distance_m) and plane_distance_m > 0):
        return f'registration.plane_distance_m must be > 0, got {plane_distance_m}'
    if len(extrinsics) != 7 or not all(math.isfinite(v) for v in extrinsics):
        return f'registration.extrinsics must be [tx, ty, tz, qx, qy, qz, qw], got {list(extrinsics)}'
    if math.hypot(*extrinsics[3:]) < 1e-9:
        return 'registration.extrinsics: the rotation quaternion [qx, qy, qz, qw] is zero'
    return ''
