"""Aligned patch sampling and flips/rotations across rainy/clean/IR/right-view images."""

from __future__ import annotations

import numpy as np
import pytest

from nitedr_ros.data.augment import dihedral, random_crop, random_dihedral, random_stereo_flip
from nitedr_ros.data.imageio import DatasetError


def _coordinates(h: int, w: int) -> np.ndarray:
    """An image whose pixel value is its own (row, column) index: any misalignment shows."""
    return np.arange(h * w, dtype=np.int64).reshape(h, w)


def _scene(h: int = 30, w: int = 40) -> dict[str, np.ndarray]:
    coords = _coordinates(h, w)
    return {'rainy': np.stack([coords] * 3, axis=2), 'clean': np.stack([coords + 1] * 3, axis=2),
            'infrared': coords + 2}


def test_crop_is_aligned_across_roles_and_varies():
    rng = np.random.default_rng(0)
    corners = set()
    for _ in range(20):
        crop = random_crop(_scene(), 8, rng)
        assert crop['rainy'].shape == (8, 8, 3) and crop['infrared'].shape == (8, 8)
        np.testing.assert_array_equal(crop['clean'][..., 0], crop['rainy'][..., 0] + 1)
        np.testing.assert_array_equal(crop['infrared'], crop['rainy'][..., 0] + 2)
        # the crop is a contiguous block of the original
        assert np.all(np.diff(crop['rainy'][0, :, 0]) == 1) and np.all(np.diff(crop['rainy'][:, 0, 0]) == 40)
        corners.add(int(crop['rainy'][0, 0, 0]))
    assert len(corners) > 10


def test_crop_pads_small_images():
    crop = random_crop({'a': np.ones((5, 6, 3), np.uint8), 'b': np.ones((5, 6), np.uint8)}, 8,
                       np.random.default_rng(1))
    assert crop['a'].shape == (8, 8, 3) and crop['b'].shape == (8, 8)


def test_crop_rejects_different_sizes():
    with pytest.raises(DatasetError, match='differ in size'):
        random_crop({'a': np.zeros((5, 6)), 'b': np.zeros((5, 7))}, 4, np.random.default_rng(0))


def test_dihedral_gives_eight_distinct_variants_applied_alike():
    base = _coordinates(4, 4)
    variants = {dihedral(base, k).tobytes() for k in range(8)}
    assert len(variants) == 8
    rng = np.random.default_rng(5)
    for _ in range(10):
        out = random_dihedral(_scene(6, 6), rng)
        np.testing.assert_array_equal(out['infrared'], out['rainy'][..., 0] + 2)


def test_stereo_flip_swaps_views_when_mirroring():
    left = _coordinates(4, 6)
    right = left + 1000
    images = {'rainy': left, 'rainy_right': right, 'clean': left + 1, 'clean_right': right + 1}
    allowed = {
        'none': (left, right),
        'vertical': (left[::-1], right[::-1]),
        'mirror': (right[:, ::-1], left[:, ::-1]),       # mirrored right view is the new left view
        'both': (right[::-1, ::-1], left[::-1, ::-1]),
    }
    seen = set()
    for seed in range(40):
        out = random_stereo_flip(images, np.random.default_rng(seed))
        match = [name for name, (lv, rv) in allowed.items()
                 if np.array_equal(out['rainy'], lv) and np.array_equal(out['rainy_right'], rv)]
        assert len(match) == 1
        seen.add(match[0])
        np.testing.assert_array_equal(out['clean'], out['rainy'] + 1)
        np.testing.assert_array_equal(out['clean_right'], out['rainy_right'] + 1)
    assert seen == set(allowed)
