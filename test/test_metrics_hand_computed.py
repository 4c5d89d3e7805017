"""Every metric against values worked out by hand on tiny images (the expected numbers are derived in the
comments from the definitions, not produced by the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nitedr_ros.evaluation import metrics as m

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2
Q_PERFECT_G = 0.9994 / (1 + math.exp(-15 * (1 - 0.5)))
Q_PERFECT_A = 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))


def _random(shape, seed=0, lo=0, hi=256) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, shape).astype(np.float64)


def _gauss(size: int, sigma: float) -> np.ndarray:
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-r ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g)
    return w / w.sum()


# ------------------------------------------------------------------ colour and PSNR

def test_bt601_studio_y():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(m.rgb_to_y(rgb)[0], [235.0, 16.0, 16.0 + 65.481])


def test_float_images_are_quantized_to_8_bit():
    assert m.as_255(np.array([0.5, 1.2, -0.1]))[0] == 128.0
    np.testing.assert_array_equal(m.as_255(np.array([0.5, 1.2, -0.1])), [128.0, 255.0, 0.0])


def test_psnr_by_hand():
    a, b = np.zeros((4, 4)), np.full((4, 4), 10.0)          # MSE = 100
    assert m.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert m.psnr(a, a) == math.inf


# ------------------------------------------------------------------ SSIM family

def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = np.full((8, 8), 100.0), np.full((8, 8), 50.0)
    # variances and covariance are 0, so the contrast-structure term is C2 / C2 = 1
    expected = (2 * 100 * 50 + C1) / (100 ** 2 + 50 ** 2 + C1)
    assert m.ssim(a, b) == pytest.approx(expected, rel=1e-9)
    assert m.ssim(a, a) == pytest.approx(1.0)


def test_ssim_single_window_position_by_hand():
    a, b = _random((11, 11), 1), _random((11, 11), 2)
    w = _gauss(11, 1.5)                       # an 11x11 image has exactly one valid window position
    mu_a, mu_b = (w * a).sum(), (w * b).sum()
    var_a, var_b = (w * a * a).sum() - mu_a ** 2, (w * b * b).sum() - mu_b ** 2
    cov = (w * a * b).sum() - mu_a * mu_b
    expected = (2 * mu_a * mu_b + C1) * (2 * cov + C2) / ((mu_a ** 2 + mu_b ** 2 + C1) * (var_a + var_b + C2))
    assert m.ssim(a, b) == pytest.approx(expected, rel=1e-9)


def test_ms_ssim_of_constant_images_uses_renormalised_last_weight():
    a, b = np.full((64, 64), 120.0), np.full((64, 64), 60.0)
    # 64 -> 32 -> 16 px: three scales fit an 11 px window; cs = 1 at each, the last scale adds l
    luminance = (2 * 120 * 60 + C1) / (120 ** 2 + 60 ** 2 + C1)
    weight = 0.3001 / (0.0448 + 0.2856 + 0.3001)
    assert m.ms_ssim(a, b) == pytest.approx(luminance ** weight, rel=1e-9)
    img = _random((64, 64), 3)
    assert m.ms_ssim(img, img) == pytest.approx(1.0)


def test_derain_metrics_identical_and_offset():
    clean = np.random.default_rng(4).integers(20, 200, (16, 16, 3)).astype(np.uint8)
    same = m.derain_metrics(clean, clean)
    assert same['psnr_y'] == math.inf and same['ssim_y'] == pytest.approx(1.0)
    brighter = clean + 2                      # every channel +2 -> Y +2 * (65.481+128.553+24.966)/255
    out = m.derain_metrics(brighter, clean)
    dy = 2 * (65.481 + 128.553 + 24.966) / 255
    assert out['psnr_y'] == pytest.approx(10 * math.log10(255 ** 2 / dy ** 2))
    assert out['psnr_rgb'] == pytest.approx(10 * math.log10(255 ** 2 / 4))


# ------------------------------------------------------------------ single-image statistics

def test_entropy_of_known_histograms():
    assert m.entropy(np.array([[0, 0], [255, 255]], float)) == pytest.approx(1.0)
    assert m.entropy(np.array([[0, 1], [2, 3]], float)) == pytest.approx(2.0)
    assert m.entropy(np.full((4, 4), 7.0)) == 0.0


def test_standard_deviation_and_spatial_frequency():
    assert m.standard_deviation(np.array([[0, 0], [10, 10]], float)) == pytest.approx(5.0)
    # rows: (3-0)^2, (0-4)^2 -> RF^2 = 12.5; columns: (4-0)^2, (0-3)^2 -> CF^2 = 12.5; SF = 5
    assert m.spatial_frequency(np.array([[0, 3], [4, 0]], float)) == pytest.approx(5.0)


# ------------------------------------------------------------------ two-image measures

def test_mutual_information_by_hand():
    a = np.array([[0, 0], [255, 255]], float)
    assert m.mutual_information(a, a) == pytest.approx(1.0)          # = H(a) = 1 bit
    b = np.array([[0, 255], [0, 255]], float)                        # joint is uniform over 4 cells
    assert m.mutual_information(a, b) == pytest.approx(0.0, abs=1e-12)


def test_correlation_by_hand():
    a = _random((5, 5), 5)
    assert m.correlation(a, 2 * a + 3) == pytest.approx(1.0)
    assert m.correlation(a, -a) == pytest.approx(-1.0)
    assert math.isnan(m.correlation(a, np.ones_like(a)))


def test_vif_single_position_by_hand():
    ref = _random((17, 17), 6)               # 17 px: one position of the 17x17 scale-1 window, no others
    w = _gauss(17, 17 / 5)
    mu = (w * ref).sum()
    var = (w * ref * ref).sum() - mu ** 2
    # distorted = 2 ref + 5: g = 2, sv^2 = var_d - g cov = 4 var - 4 var = 0
    expected = math.log10(1 + 4 * var / 2.0) / math.log10(1 + var / 2.0)
    assert m.vif(ref, 2 * ref + 5) == pytest.approx(expected, rel=1e-6)
    big = _random((40, 40), 7)
    assert m.vif(big, big) == pytest.approx(1.0, rel=1e-6)
    assert m.vif(big, np.full_like(big, big.mean())) == pytest.approx(0.0, abs=1e-12)


def test_qabf_by_hand():
    ramp = np.tile(np.arange(8, dtype=float) * 10, (8, 1))
    flat = np.full_like(ramp, 30.0)
    # perfect transfer: G = 1, A = 1 everywhere with an edge
    assert m.qabf(ramp, ramp, ramp) == pytest.approx(Q_PERFECT_G * Q_PERFECT_A)
    # half contrast: G = 0.5 -> the strength sigmoid is at its midpoint, orientation unchanged;
    # B has no edges, so only A's edges weigh in
    expected = 0.9994 / 2 * Q_PERFECT_A
    assert m.qabf(ramp, flat, ramp / 2) == pytest.approx(expected)
    assert math.isnan(m.qabf(flat, flat, ramp))


def test_fmi_window_by_hand():
    # u = [0, 1, 2], v = [0, 2, 1]: pdfs [0, 1/3, 2/3] and [0, 2/3, 1/3], correlation 0.5.
    # Joint cdf 0.5 min + 0.5 product, differenced: P11 = 5/18, P12 = 1/18, P21 = 7/18, P22 = 5/18;
    # products of the marginals: 4/18, 2/18, 8/18, 4/18.
    mi = (5 / 18 * math.log2(5 / 4) + 1 / 18 * math.log2(1 / 2) + 7 / 18 * math.log2(7 / 8)
          + 5 / 18 * math.log2(5 / 4))
    h = -(1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3))
    value = m.fmi_windows(np.array([[0.0, 1, 2]]), np.array([[0.0, 2, 1]]))
    assert value[0] == pytest.approx(2 * mi / (2 * h))
    # uncorrelated vectors: the joint is the product of the marginals, MI = 0
    assert m.fmi_windows(np.array([[0.0, 1, 0, 1]]), np.array([[0.0, 0, 1, 1]]))[0] == pytest.approx(0.0)
    # both constant -> 1, one constant -> 0
    np.testing.assert_array_equal(m.fmi_windows(np.array([[2.0, 2, 2], [1, 2, 3]]),
                                                np.array([[5.0, 5, 5], [4, 4, 4]])), [1.0, 0.0])


@pytest.mark.parametrize('feature', ['pixel', 'dct', 'wavelet'])
def test_fmi_identical_is_one_and_constant_is_zero(feature):
    img = _random((12, 12), 8)
    assert m.fmi(img, img, feature) == pytest.approx(1.0)
    assert m.fmi(img, np.full_like(img, 9.0), feature) == pytest.approx(0.0)


def test_haar_and_dct_matrices_are_orthonormal():
    for mat in (m._dct_matrix(3), m._haar_matrix(4)):
        np.testing.assert_allclose(mat @ mat.T, np.eye(mat.shape[0]), atol=1e-12)


# ------------------------------------------------------------------ the fusion table

def test_fusion_table_ideal_values_for_identical_images():
    img = np.random.default_rng(9).integers(0, 256, (40, 40)).astype(np.uint8)
    out = m.fusion_metrics(img, img, img)
    assert set(out) == set(m.FUSION_METRICS)
    assert out['PSNR'] == math.inf and out['MSE'] == 0.0
    for name in ('SSIM', 'MS-SSIM', 'CC', 'VIF', 'FMI_pixel', 'FMI_dct', 'FMI_w'):
        assert out[name] == pytest.approx(1.0, rel=1e-6), name
    assert out['MI'] == pytest.approx(2 * out['EN'])          # MI is summed over the two sources
    assert out['Qabf'] == pytest.approx(Q_PERFECT_G * Q_PERFECT_A)


def test_fusion_psnr_and_mse_follow_the_toolbox_convention():
    zero = np.zeros((12, 12), np.uint8)
    fused = np.full((12, 12), 51, np.uint8)                  # 0.2 in [0, 1] units; MSE to either source 0.04
    out = m.fusion_metrics(zero, zero, fused)
    assert out['MSE'] == pytest.approx(0.04)
    assert out['PSNR'] == pytest.approx(10 * math.log10(255 ** 2 / 0.04))


def test_fusion_table_converts_colour_to_grey():
    rgb = np.zeros((12, 12, 3), np.uint8)
    rgb[..., 1] = 100                                         # grey = 0.587 * 100
    grey = m.to_grey(rgb)
    assert grey[0, 0] == pytest.approx(58.7)
    with pytest.raises(ValueError, match='sizes differ'):
        m.fusion_metrics(rgb, np.zeros((10, 12), np.uint8), rgb)
