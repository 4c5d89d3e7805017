"""Aligned patch sampling and geometric augmentation for sets of images of one scene (numpy).

Every function takes a ``dict`` role -> array (H, W[, C]) and applies the *same* crop / flip / rotation to
all of them, so rainy, clean, infrared and right-view images stay pixel-aligned.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from .imageio import DatasetError

Images = Mapping[str, np.ndarray]


def common_size(images: Images) -> tuple[int, int]:
    """The (H, W) shared by all images; DatasetError when they differ."""
    sizes = {name: im.shape[:2] for name, im in images.items()}
    if len(set(sizes.values())) != 1:
        raise DatasetError(f'images to crop together differ in size: {sizes}')
    return next(iter(sizes.values()))


def pad_to_at_least(images: Images, size: int) -> dict[str, np.ndarray]:
    """Reflect-pad every image on the bottom/right so both sides are at least ``size``."""
    h, w = common_size(images)
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return dict(images)
    out = {}
    for name, im in images.items():
        border = cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE
        padded = cv2.copyMakeBorder(im, 0, ph, 0, pw, border)
        out[name] = padded.reshape(padded.shape[:2] + im.shape[2:])
    return out


def random_crop(images: Images, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One ``size`` x ``size`` crop at the same random position in every image (padded if too small)."""
    padded = pad_to_at_least(images, size)
    h, w = common_size(padded)
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return {name: np.ascontiguousarray(im[top:top + size, left:left + size]) for name, im in padded.items()}


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Variant ``k`` (0..7) of the 8 flips/rotations: rotate by 90*(k % 4) degrees, then flip if k >= 4."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def random_dihedral(images: Images, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The same random flip/rotation (one of 8) applied to every image."""
    k = int(rng.integers(0, 8))
    return {name: dihedral(im, k) for name, im in images.items()}


def random_stereo_flip(images: Images, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Flips that keep a rectified stereo pair valid.

    Vertical flip of both views; horizontal flip of both views *with left and right swapped* (roles ending in
    ``_right`` trade places with their left counterparts). Rotations would break the epipolar geometry.
    """
    out = dict(images)
    if rng.random() < 0.5:
        out = {name: np.ascontiguousarray(im[::-1]) for name, im in out.items()}
    if rng.random() < 0.5:
        mirrored = {name: np.ascontiguousarray(im[:, ::-1]) for name, im in out.items()}
        out = {}
        for name, im in mirrored.items():
            if name.endswith('_right'):
                out[name[:-len('_right')]] = im
            elif f'{name}_right' in mirrored:
                out[f'{name}_right'] = im
            else:
                out[name] = im
    return out
