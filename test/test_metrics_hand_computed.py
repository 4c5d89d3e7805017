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
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 5]]], np.uint8)
    # unrounded: 16 + 65.481 R/255 + 128.553 G/255 + 24.966 B/255
    np.testing.assert_allclose(m.rgb_to_y(rgb, round_y=False)[0],
                               [235.0, 16.0, 16.0 + 65.481, 16.0 + 24.966 * 5 / 255])
    # MATLAB's rgb2ycbcr on uint8 rounds: 81.481 -> 81, 16.4895 -> 16
    np.testing.assert_array_equal(m.rgb_to_y(rgb)[0], [235.0, 16.0, 81.0, 16.0])


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
    out = m.derain_metrics(brighter, clean, round_y=False)
    dy = 2 * (65.481 + 128.553 + 24.966) / 255
    assert out['psnr_y'] == pytest.approx(10 * math.log10(255 ** 2 / dy ** 2))
    assert out['psnr_rgb'] == pytest.approx(10 * math.log10(255 ** 2 / 4))


def test_derain_psnr_y_on_rounded_y():
    grey = np.full((8, 8, 3), 100, np.uint8)
    # Y(100) = 16 + 100 * 219 / 255 = 101.88 -> 102; Y(102) = 16 + 102 * 219 / 255 = 103.6 -> 104
    out = m.derain_metrics(grey + 2, grey)
    assert out['psnr_y'] == pytest.approx(10 * math.log10(255 ** 2 / 2 ** 2))
    unrounded = m.derain_metrics(grey + 2, grey, round_y=False)
    assert unrounded['psnr_y'] == pytest.approx(10 * math.log10(255 ** 2 / (2 * 219 / 255) ** 2))


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
    black = np.zeros_like(ramp)
    # perfect transfer: G = 1, A = 1 everywhere with an edge (the zero-padded frame included)
    assert m.qabf(ramp, ramp, ramp) == pytest.approx(Q_PERFECT_G * Q_PERFECT_A)
    # half contrast: the Sobel responses are linear, so G = 0.5 everywhere (frame included) -> the strength
    # sigmoid is at its midpoint, orientation unchanged; B (black) has no edges, so only A's edges weigh in
    expected = 0.9994 / 2 * Q_PERFECT_A
    assert m.qabf(ramp, black, ramp / 2) == pytest.approx(expected)
    assert math.isnan(m.qabf(black, black, ramp))


def test_sobel_is_zero_padded_like_filter2_same():
    ones = np.ones((3, 3))
    strength, orientation = m.sobel_strength_orientation(ones)
    # centre: inside a constant image, no edge; corner (0, 0): with zeros outside, the x kernel sees
    # 2 * 1 (right neighbour) + 1 * 1 (lower-right) = 3, the y kernel likewise 3
    assert strength[1, 1] == 0.0
    assert strength[0, 0] == pytest.approx(3 * math.sqrt(2))
    assert orientation[0, 0] == pytest.approx(math.pi / 4)
    # top edge centre (0, 1): x responses cancel (sx = 0 -> pi/2), y: 1 + 2 + 1 below, nothing above
    assert strength[0, 1] == pytest.approx(4.0) and orientation[0, 1] == pytest.approx(math.pi / 2)
    # a constant image therefore has edges on its frame only, as in the toolbox
    assert m.qabf(ones * 50, ones * 50, ones * 50) == pytest.approx(Q_PERFECT_G * Q_PERFECT_A)


def _h(*p: float) -> float:
    """Entropy (bits) of the non-zero entries, ``-sum p log2 |p|`` (negative cells enter with |p|)."""
    return -sum(x * math.log2(abs(x)) for x in p if x != 0)


def test_fmi_window_upper_frechet_bound_by_hand():
    # u = [0, 1, 2], v = [0, 2, 1]: pdfs [0, 1/3, 2/3] and [0, 2/3, 1/3]; centred pdfs [-1/3, 0, 1/3] and
    # [-1/3, 1/3, 0] -> c = (1/9) / (2/9) = 0.5. Positions 1..3: both variances 2/9 -> sd_u sd_v = 2/9.
    # cdfs Cu = [0, 1/3, 1], Cv = [0, 2/3, 1]: min(Cv_i, Cu_j) - Cv_i Cu_j is 0 unless both are inside
    # (0, 1): min(2/3, 1/3) - 2/9 = 1/9, so corr_up = (1/9) / (2/9) = 0.5 and phi = c / corr_up = 1:
    # the joint is the upper bound, whose 2-D difference has three cells of 1/3.
    h_u = h_v = _h(1 / 3, 2 / 3)
    mi = h_u + h_v - _h(1 / 3, 1 / 3, 1 / 3)
    expected = 2 * mi / (h_u + h_v)                       # = (log2 3 - 4/3) / (log2 3 - 2/3)
    assert expected == pytest.approx(0.27402, abs=1e-5)
    value = m.fmi_windows(np.array([[0.0, 1, 2]]), np.array([[0.0, 2, 1]]))[0]
    assert value == pytest.approx(expected, rel=1e-12)


def test_fmi_window_lower_frechet_bound_by_hand():
    # u = [0, 1, 2], v = [2, 1, 0]: pdfs [0, 1/3, 2/3] and [2/3, 1/3, 0], c = -1. Cu = [0, 1/3, 1],
    # Cv = [2/3, 1, 1]; max(Cv_i + Cu_j - 1, 0) - Cv_i Cu_j is non-zero only at (2/3, 1/3): 0 - 2/9, and
    # both variances are 2/9, so corr_lo = -1 and theta = 1: the joint is the lower bound, cells 2/3 and
    # 1/3, whose entropy equals each marginal's -> MI = H and FMI = 1 (a reversed window is fully informative)
    assert m.fmi_windows(np.array([[0.0, 1, 2]]), np.array([[2.0, 1, 0]]))[0] == pytest.approx(1.0)


def test_fmi_window_mixing_weight_above_one_by_hand():
    # u = [0, 1, 2] -> pu = [0, 1/3, 2/3]; v = [0, 1, 1] -> pv = [0, 1/2, 1/2].
    # centred: [-1/3, 0, 1/3] and [-1/3, 1/6, 1/6]: c = (1/6) / sqrt(2/9 * 1/6) = sqrt(3)/2.
    # sd_u = sqrt(2)/3, sd_v = sqrt(6.5 - 2.5^2) = 1/2; only (Cv, Cu) = (1/2, 1/3) is inside: 1/3 - 1/6,
    # corr_up = (1/6) / (sqrt(2)/6) = 1/sqrt(2), phi = sqrt(6)/2 > 1.
    # upper-bound pdf (rows v, cols u; first row/col empty): [[1/3, 1/6], [0, 1/2]];
    # product pdf: [[1/6, 1/3], [1/6, 1/3]]; joint = phi U + (1 - phi) P:
    phi = math.sqrt(6) / 2
    joint = ((1 + phi) / 6, (2 - phi) / 6, (1 - phi) / 6, (2 + phi) / 6)   # the third cell is negative
    h_u, h_v = _h(1 / 3, 2 / 3), 1.0
    expected = 2 * (h_u + h_v - _h(*joint)) / (h_u + h_v)
    value = m.fmi_windows(np.array([[0.0, 1, 2]]), np.array([[0.0, 1, 1]]))[0]
    assert value == pytest.approx(expected, rel=1e-12)


def test_fmi_window_special_cases():
    # uncorrelated pdfs ([0, .5, 0, .5] vs [0, 0, .5, .5]: centred dot product 0): joint = product, MI = 0
    assert m.fmi_windows(np.array([[0.0, 1, 0, 1]]), np.array([[0.0, 0, 1, 1]]))[0] == pytest.approx(0.0)
    u = np.array([[2.0, 2, 2], [1, 2, 3], [5, 1, 4], [7, 7, 7]])
    v = np.array([[5.0, 5, 5], [4, 4, 4], [5, 1, 4], [7, 7, 7]])
    # two constant windows that differ: both pdfs uniform, c = 0 -> product joint -> 0;
    # one constant: c = 0 -> 0; identical windows (constant or not): 1
    np.testing.assert_allclose(m.fmi_windows(u, v), [0.0, 0.0, 1.0, 1.0], atol=1e-12)


def test_fmi_flattens_windows_column_by_column():
    rng = np.random.default_rng(11)
    a = np.arange(9.0).reshape(3, 3)
    f = np.array([[0.0, 1, 2], [3, 4, 5], [8, 7, 6]])
    column_major = m.fmi_windows(a.flatten('F')[None], f.flatten('F')[None])[0]
    row_major = m.fmi_windows(a.flatten('C')[None], f.flatten('C')[None])[0]
    assert m.fmi(a, f) == pytest.approx(column_major)     # a 3x3 image has one window
    assert abs(column_major - row_major) > 0.05           # the order matters (cdfs): 0.67 vs 0.75
    # a 4x3 image: windows at rows 0 and 1; the metric is their mean
    b, g = rng.random((4, 3)), rng.random((4, 3))
    windows = [m.fmi_windows(b[r:r + 3].flatten('F')[None], g[r:r + 3].flatten('F')[None])[0]
               for r in (0, 1)]
    assert m.fmi(b, g) == pytest.approx(np.mean(windows))


def test_fmi_dct_feature_is_dct2_of_the_whole_image():
    # 1 x 2 image [a, b]: the 1-point DCT is the identity, the 2-point orthonormal DCT-II gives
    # [(a + b)/sqrt(2), (a - b)/sqrt(2)]
    np.testing.assert_allclose(m.fmi_feature_map(np.array([[3.0, 1.0]]), 'dct'),
                               [[4 / math.sqrt(2), 2 / math.sqrt(2)]])
    # a constant image has only the DC coefficient c sqrt(H W)
    feature = m.fmi_feature_map(np.full((4, 6), 2.0), 'dct')
    assert feature[0, 0] == pytest.approx(2 * math.sqrt(24))
    assert np.abs(feature).sum() == pytest.approx(feature[0, 0])


def test_fmi_wavelet_feature_layout():
    pytest.importorskip('pywt')
    image = _random((64, 50), 12)
    feature = m.fmi_feature_map(image, 'wavelet')
    # MATLAB's 102-tap dmey: sub-bands of floor((N + 101) / 2) per axis, laid out [cA cH; cV cD]
    assert feature.shape == (2 * 82, 2 * 75)
    assert feature.min() == 0.0 and feature.max() == 1.0


def test_fmi_w_without_pywavelets_is_a_clear_error(monkeypatch):
    import sys

    from nitedr_ros.errors import ConfigError

    monkeypatch.setitem(sys.modules, 'pywt', None)        # import pywt now fails
    img = _random((12, 12), 13)
    with pytest.raises(ConfigError, match='PyWavelets'):
        m.fmi(img, img, 'wavelet')
    table = m.fusion_metrics(img.astype(np.uint8), img.astype(np.uint8), img.astype(np.uint8),
                             skip=('FMI_w',))
    assert 'FMI_w' not in table and table['FMI_pixel'] == pytest.approx(1.0)


@pytest.mark.parametrize('feature', ['pixel', 'dct', 'wavelet'])
def test_fmi_identical_is_one(feature):
    if feature == 'wavelet':
        pytest.importorskip('pywt')
    img = _random((12, 12), 8)
    assert m.fmi(img, img, feature) == pytest.approx(1.0)


def test_fmi_pixel_against_a_constant_image_is_zero():
    img = _random((12, 12), 8)
    # every fused window is constant: uniform pdf, c = 0, product joint, MI = 0
    assert m.fmi(img, np.full_like(img, 9.0)) == pytest.approx(0.0, abs=1e-12)


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
