"""The rain models of the corpus, by their statistical properties (density, direction, brightness, locality,
depth), the styles built from them, and the training mix's weights."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from nitedr_ros.data.rain_styles import (
    HEAVY,
    HELD_OUT_STYLES,
    LIGHT,
    STYLES,
    TRAINING_STYLES,
    LensDrops,
    NoiseStreaks,
    StreakLayers,
    VeilingHaze,
    render_style,
)

H, W = 240, 320


def scene(seed: int = 0) -> np.ndarray:
    """A textured grey scene in [0.2, 0.6] (room below and above for the models)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), 6)
    base = (base - base.min()) / (base.max() - base.min())
    return np.repeat((0.2 + 0.4 * base)[..., None], 3, axis=2).astype(np.float32)


def mean_mask(model, seeds=range(6)) -> float:
    return float(np.mean([model.mask(np.random.default_rng(s), H, W).mean() for s in seeds]))


def streak_angle_deg(mask: np.ndarray) -> float:
    """Direction of the streaks from vertical (structure tensor: the gradient is across the streaks)."""
    gx = cv2.Sobel(mask, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(mask, cv2.CV_64F, 0, 1, ksize=3)
    tensor = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    _, vectors = np.linalg.eigh(tensor)
    across = vectors[:, 1]  # largest eigenvalue: the gradient direction
    along = np.array([-across[1], across[0]])  # (x, y) along the streaks
    if along[1] < 0:
        along = -along
    return float(np.degrees(np.arctan2(along[0], along[1])))


@pytest.mark.parametrize('model_kind', ['layers', 'noise'])
def test_streak_density_follows_the_configured_density(model_kind):
    if model_kind == 'layers':
        sparse, dense = (StreakLayers(density=(d, d), layers=(1, 1)) for d in (0.3, 2.5))
    else:
        sparse, dense = (NoiseStreaks(density=(d, d)) for d in (0.004, 0.04))
    assert mean_mask(dense) > 3 * mean_mask(sparse) > 0


def test_heavy_streaks_cover_more_of_the_image_than_light_ones():
    assert mean_mask(HEAVY) > 3 * mean_mask(LIGHT)


@pytest.mark.parametrize('angle', [-20.0, 0.0, 15.0, 30.0])
def test_streaks_fall_in_the_configured_direction(angle):
    model = StreakLayers(layers=(1, 1), angle_deg=(angle, angle), jitter_deg=0.0, density=(1.5, 1.5),
                         length=(0.15, 0.15))
    measured = streak_angle_deg(model.mask(np.random.default_rng(3), H, W))
    # image y points down: a streak leaning right as it falls has a positive angle
    assert abs(measured - angle) < 3.0, measured


def test_streaks_only_brighten_and_their_brightness_follows_the_config():
    image = scene()
    dim, bright = (StreakLayers(brightness=(b, b), blur=(0.0, 0.0)) for b in (0.2, 0.8))
    dim_out, bright_out = (m(image, np.random.default_rng(1)) for m in (dim, bright))
    assert (dim_out >= image - 1e-6).all() and (bright_out >= image - 1e-6).all()  # screen blending
    assert (bright_out - image).max() > 2 * (dim_out - image).max()
    assert (bright_out - image).mean() > 2 * (dim_out - image).mean()


def test_lens_drops_are_local():
    image = scene(2)
    radius = 0.05 * min(H, W)
    out = LensDrops(count=(4, 4), radius=(0.05, 0.05), smear=0.0)(image, np.random.default_rng(5))
    changed = (np.abs(out - image).max(axis=2) > 1e-6).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(changed)
    blobs = stats[1:]
    assert 1 <= len(blobs) <= 4  # one blob per drop (or fewer where drops overlap)
    assert changed.mean() < 0.12  # the rest of the image is untouched
    # each blob is no larger than its drop (diameter x the 1.3 elongation of a round drop, two drops merged)
    assert (blobs[:, cv2.CC_STAT_WIDTH] <= 2 * 2 * radius * 1.3 + 4).all()
    assert (blobs[:, cv2.CC_STAT_HEIGHT] <= 2 * 2 * radius * 1.3 + 4).all()


def test_veiling_haze_lowers_contrast_more_far_away():
    image = scene(4)
    hazy = VeilingHaze(beta=(1.0, 1.0), horizon=(0.4, 0.4))(image, np.random.default_rng(0))
    top, bottom = slice(0, H // 3), slice(2 * H // 3, H)  # above the horizon (far), near the camera
    ratio_far = hazy[top].std() / image[top].std()
    ratio_near = hazy[bottom].std() / image[bottom].std()
    assert ratio_far < 0.5 and ratio_near > 0.8, (ratio_far, ratio_near)


@pytest.mark.parametrize('style', sorted(STYLES))
def test_every_style_renders_reproducibly_with_its_effects(style):
    clean = scene(6)
    first = render_style(clean, np.random.default_rng(9), style)
    second = render_style(clean, np.random.default_rng(9), style)
    assert np.array_equal(first.rainy, second.rainy) and first.effects == second.effects
    assert first.rainy.shape == clean.shape and first.rainy.dtype == np.float32
    assert first.rainy.min() >= 0.0 and first.rainy.max() <= 1.0
    assert np.abs(first.rainy - first.clean).mean() > 0.005  # rain was added
    if 'night' in first.effects:
        assert first.clean.mean() < clean.mean()  # a night scene is darker than the day image


def test_night_styles_are_night_and_held_out_styles_are_kept_apart():
    night = [render_style(scene(), np.random.default_rng(s), replace(STYLES['medium'], night=1.0))
             for s in range(3)]
    assert all('night' in sample.effects and 'noise' in sample.effects for sample in night)
    assert not set(TRAINING_STYLES) & set(HELD_OUT_STYLES)
    assert set(TRAINING_STYLES) | set(HELD_OUT_STYLES) == set(STYLES)


def test_rendered_density_rises_with_the_style():
    density = {name: np.mean([render_style(scene(), np.random.default_rng(seed), name).density
                              for seed in range(8)]) for name in ('light', 'medium', 'heavy')}
    assert density['light'] < density['medium'] < density['heavy'], density


# -- the training mix -------------------------------------------------------------------------------------
def test_mix_weights_are_documented_normalised_and_overridable():
    from nitedr_ros.data.corpus import MIX_WEIGHTS, mix_weights
    from nitedr_ros.data.imageio import DatasetError

    assert sum(MIX_WEIGHTS.values()) == pytest.approx(1.0)
    assert set(MIX_WEIGHTS) == {'roadscene', 'shared_pairs', 'rendered', 'rendered_night'}
    assert mix_weights({'roadscene': 0.6})['roadscene'] == 0.6
    with pytest.raises(DatasetError, match='unknown mix source'):
        mix_weights({'rain100h': 1.0})
    with pytest.raises(DatasetError, match='all zero'):
        mix_weights(dict.fromkeys(MIX_WEIGHTS, 0.0))


def test_the_mix_draws_each_source_in_proportion_to_its_weight(tmp_path):
    pytest.importorskip('torch')
    from nitedr_ros.data.corpus import MixSource
    from nitedr_ros.data.layouts import ImageSet, Sample
    from nitedr_ros.training.datasets import PatchDataset, PatchSettings

    sources = []
    for index, (name, weight) in enumerate((('a', 0.5), ('b', 0.3), ('c', 0.2))):
        path = tmp_path / f'{name}.png'
        colour = np.zeros((40, 40, 3), np.uint8)
        colour[..., index] = 200  # one colour per source: the jitter never changes the dominant channel
        cv2.imwrite(str(path), colour)
        pair = Sample(name, {'rainy': path, 'clean': path})
        images = ImageSet('paired', tmp_path, ('rainy', 'clean'), [pair])
        sources.append(MixSource(name, weight, images, render=False))
    dataset = PatchDataset([], 'derain', PatchSettings(patch=16, augment=False), mix=sources)
    draws = 2000
    counts = np.zeros(3)
    for index in range(draws):
        counts[2 - int(dataset[index]['clean'].mean(dim=(1, 2)).argmax())] += 1  # written as BGR, read as RGB
    np.testing.assert_allclose(counts / draws, [0.5, 0.3, 0.2], atol=0.035)
