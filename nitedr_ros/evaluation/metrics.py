"""Image-quality metrics (numpy/cv2): deraining PSNR/SSIM and the fusion metrics of NiteDR's Table II.

Conventions (each function's docstring gives its formula):

* The table functions (:func:`derain_metrics`, :func:`fusion_metrics`) take 8-bit images (uint8) or floats
  in [0, 1]; floats are quantized to 8 bit first (``round(255 x)``), as the papers evaluate saved images.
  The single metrics below them take 2-D arrays on the 0..255 scale as given. Float64 throughout.
* **Deraining** (PSNR/SSIM "on Y", the deraining papers' convention): Y = BT.601 studio-swing luma of RGB,
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in 0..255 (Y in 16..235), **rounded to
  integers** by default as MATLAB's ``rgb2ycbcr`` does on uint8 images (the deraining papers' MATLAB
  scripts; ``round_y=False`` keeps the fractional Y that Python ports such as BasicSR use); PSNR peak 255;
  SSIM with an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, L 255, averaged over the valid region
  (no padding). "RGB" variants: PSNR over all three channels, SSIM averaged over channels.
* **Fusion** (sources A = visible, B = infrared, F = fused): colour images are converted to grey with
  full-range BT.601 luma (0.299 R + 0.587 G + 0.114 B, as OpenCV's grey). Aggregation over the two sources:
  PSNR, MSE, SSIM, MS-SSIM, VIF, CC, FMI_* are the **mean** of the two source-vs-fused values; MI is the
  **sum** ``MI(A,F) + MI(B,F)`` (Qu et al.'s definition, used throughout the fusion literature); Qabf has its
  own two-source formula; EN, SD, SF describe F alone. Fusion MSE is computed on images scaled to [0, 1] and
  fusion PSNR is ``10 log10(255^2 / MSE)``, the fusion toolboxes' convention that gives Table II's ~64 dB
  (it is not the PSNR of deraining). FMI_pixel / FMI_dct / FMI_w follow Haghighat's fast-FMI ``fmi.m``
  (features ``none``, ``dct``, ``wavelet``; see :func:`fmi_windows`); FMI_w needs PyWavelets, imported only
  when it is computed. Undefined cases (e.g. CC or Qabf of images without edges) return NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import cv2
import numpy as np

# ------------------------------------------------------------------ conversions

_Y601_STUDIO = np.array([65.481, 128.553, 24.966]) / 255.0
_LUMA601 = np.array([0.299, 0.587, 0.114])


def as_255(image: np.ndarray) -> np.ndarray:
    """uint8 -> float64 0..255; float [0, 1] -> quantized to 8 bit, float64 0..255."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.integer):
        raise ValueError(f'unsupported integer image type {image.dtype}')
    return np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0)


def rgb_to_y(image: np.ndarray, round_y: bool = True) -> np.ndarray:
    """BT.601 studio-swing Y (16..235) of an RGB image (H, W, 3); a grey image is returned as is (0..255).

    ``round_y``: round to integers (halves away from zero) like MATLAB's ``rgb2ycbcr`` on uint8 input.
    """
    x = as_255(image)
    if x.ndim == 2:
        return x
    y = 16.0 + x[..., :3] @ _Y601_STUDIO
    return np.floor(y + 0.5) if round_y else y


def to_grey(image: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma (0..255) of an RGB image; a grey image (H, W) or (H, W, 1) as is."""
    x = as_255(image)
    if x.ndim == 3 and x.shape[2] == 1:
        return x[..., 0]
    if x.ndim == 2:
        return x
    return x[..., :3] @ _LUMA601


# ------------------------------------------------------------------ PSNR / SSIM

def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two equally shaped arrays."""
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {a.shape} vs {b.shape}')
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """``10 log10(peak^2 / MSE(a, b))`` on the values given (inf for identical arrays)."""
    err = mse(a, b)
    return math.inf if err == 0 else 10.0 * math.log10(peak * peak / err)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 2-D Gaussian window (size x size)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r ** 2) / (2.0 * sigma ** 2))
    w = np.outer(g, g)
    return w / w.sum()


def _window_for(shape: tuple[int, ...], size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The standard window, shrunk (odd size, sigma scaled) for images smaller than it."""
    side = min(shape[0], shape[1])
    if side >= size:
        return gaussian_window(size, sigma)
    small = side if side % 2 == 1 else side - 1
    return gaussian_window(max(small, 1), sigma * max(small, 1) / size)


def filter_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Correlation of a 2-D array with a window, keeping only positions where it fits (no padding)."""
    k = window.shape[0]
    full = cv2.filter2D(x.astype(np.float64), cv2.CV_64F, window, borderType=cv2.BORDER_REFLECT)
    h = k // 2
    return full[h:x.shape[0] - (k - 1 - h), h:x.shape[1] - (k - 1 - h)]


def _ssim_maps(a: np.ndarray, b: np.ndarray, window: np.ndarray,
               peak: float) -> tuple[np.ndarray, np.ndarray]:
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = filter_valid(a, window), filter_valid(b, window)
    var_a = filter_valid(a * a, window) - mu_a ** 2
    var_b = filter_valid(b * b, window) - mu_b ** 2
    cov = filter_valid(a * b, window) - mu_a * mu_b
    cs = (2.0 * cov + c2) / (var_a + var_b + c2)
    luminance = (2.0 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return luminance * cs, cs


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two 2-D (or per channel, averaged) arrays on the 0..peak scale.

    ``SSIM = (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))``, local statistics
    under an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01 peak)^2``, ``C2 = (0.03 peak)^2``, mean over
    the valid positions. Images smaller than 11 px use the largest odd window that fits.
    """
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {a.shape} vs {b.shape}')
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a64.ndim == 3:
        return float(np.mean([ssim(a64[..., c], b64[..., c], peak) for c in range(a64.shape[2])]))
    window = _window_for(a64.shape)
    return float(np.mean(_ssim_maps(a64, b64, window, peak)[0]))


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Multi-scale SSIM (Wang et al. 2003): ``prod_j cs_j^w_j * ssim_M^w_M`` over up to 5 scales.

    Scales are halved by 2x2 averaging; only scales whose smaller side is at least 11 px are used (at least
    one) and their weights are renormalised to sum to 1. Negative cs/ssim means are clamped to 0.
    """
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {a.shape} vs {b.shape}')
    x, y = a.astype(np.float64), b.astype(np.float64)
    levels = 1
    side = min(x.shape[:2])
    while levels < len(MS_SSIM_WEIGHTS) and side // (2 ** levels) >= 11:
        levels += 1
    weights = np.array(MS_SSIM_WEIGHTS[:levels])
    weights = weights / weights.sum()
    value = 1.0
    for j in range(levels):
        s_map, cs_map = _ssim_maps(x, y, _window_for(x.shape), peak)
        term = np.mean(s_map) if j == levels - 1 else np.mean(cs_map)
        value *= max(float(term), 0.0) ** weights[j]
        if j < levels - 1:
            x, y = _halve(x), _halve(y)
    return float(value)


def _halve(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def derain_metrics(derained: np.ndarray, clean: np.ndarray, round_y: bool = True) -> dict[str, float]:
    """PSNR/SSIM on Y (BT.601 studio swing, rounded unless ``round_y`` is False) and on RGB of a derained
    image against its clean target."""
    if derained.shape != clean.shape:
        raise ValueError(f'shapes differ: {derained.shape} vs {clean.shape}')
    y_d, y_c = rgb_to_y(derained, round_y), rgb_to_y(clean, round_y)
    rgb_d, rgb_c = as_255(derained), as_255(clean)
    return {'psnr_y': psnr(y_d, y_c), 'ssim_y': ssim(y_d, y_c),
            'psnr_rgb': psnr(rgb_d, rgb_c), 'ssim_rgb': ssim(rgb_d, rgb_c)}


# ------------------------------------------------------------------ statistics of one image

def histogram(image: np.ndarray, bins: int = 256) -> np.ndarray:
    """Normalised histogram of 0..255 values (rounded to integers) in ``bins`` equal bins."""
    v = np.clip(np.round(image), 0, 255).astype(np.int64).ravel()
    counts = np.bincount(v * bins // 256, minlength=bins).astype(np.float64)
    return counts / counts.sum()


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def entropy(image: np.ndarray) -> float:
    """EN: Shannon entropy (bits) of the 256-bin grey-level histogram, ``-sum p log2 p``."""
    return _entropy_bits(histogram(image))


def standard_deviation(image: np.ndarray) -> float:
    """SD: population standard deviation of the grey levels (0..255 scale)."""
    return float(np.std(image.astype(np.float64)))


def spatial_frequency(image: np.ndarray) -> float:
    """SF: ``sqrt(RF^2 + CF^2)``; RF^2 / CF^2: mean squared difference of horizontal / vertical neighbours."""
    f = image.astype(np.float64)
    rf2 = np.mean((f[:, 1:] - f[:, :-1]) ** 2) if f.shape[1] > 1 else 0.0
    cf2 = np.mean((f[1:, :] - f[:-1, :]) ** 2) if f.shape[0] > 1 else 0.0
    return float(math.sqrt(rf2 + cf2))


# ------------------------------------------------------------------ two-image measures

def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """MI (bits) of the 256x256 joint grey-level histogram: ``sum p_ab log2(p_ab / (p_a p_b))``."""
    x = np.clip(np.round(a), 0, 255).astype(np.int64).ravel()
    y = np.clip(np.round(b), 0, 255).astype(np.int64).ravel()
    joint = np.bincount(x * 256 + y, minlength=256 * 256).astype(np.float64).reshape(256, 256)
    joint /= joint.sum()
    pa, pb = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / np.outer(pa, pb)[nz])).sum())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation coefficient (NaN when either image is constant)."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else math.nan


def vif(reference: np.ndarray, distorted: np.ndarray, noise_var: float = 2.0) -> float:
    """Pixel-domain multi-scale VIF (Sheikh & Bovik 2006), information kept from ``reference``.

    Scales s = 1..4 use Gaussian windows of size ``N = 2^(5-s) + 1`` (sigma N/5); from scale 2 on, both
    images are low-passed with that window and subsampled by 2. Per position: ``g = cov / var_r``,
    ``sv^2 = var_d - g cov``; ``VIF = sum log10(1 + g^2 var_r / (sv^2 + sn^2)) / sum log10(1 + var_r / sn^2)``
    with ``sn^2 = noise_var``. Scales whose window does not fit the image are skipped; NaN if the reference
    has no variance anywhere.
    """
    r, d = reference.astype(np.float64), distorted.astype(np.float64)
    eps = 1e-10
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        window = gaussian_window(n, n / 5.0)
        if scale > 1:
            if min(r.shape) < n:
                break
            r, d = filter_valid(r, window)[::2, ::2], filter_valid(d, window)[::2, ::2]
        if min(r.shape) < n:
            continue
        mu_r, mu_d = filter_valid(r, window), filter_valid(d, window)
        var_r = np.maximum(filter_valid(r * r, window) - mu_r ** 2, 0.0)
        var_d = np.maximum(filter_valid(d * d, window) - mu_d ** 2, 0.0)
        cov = filter_valid(r * d, window) - mu_r * mu_d
        g = cov / (var_r + eps)
        sv = var_d - g * cov
        flat_r = var_r < eps
        g[flat_r], sv[flat_r], var_r[flat_r] = 0.0, var_d[flat_r], 0.0
        flat_d = var_d < eps
        g[flat_d], sv[flat_d] = 0.0, 0.0
        negative = g < 0
        sv[negative], g[negative] = var_d[negative], 0.0
        sv = np.maximum(sv, eps)
        num += float(np.log10(1.0 + g * g * var_r / (sv + noise_var)).sum())
        den += float(np.log10(1.0 + var_r / noise_var).sum())
    return num / den if den > 0 else math.nan


# ------------------------------------------------------------------ Qabf

_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
QABF_CONSTANTS = {'gamma_g': 0.9994, 'kappa_g': -15.0, 'sigma_g': 0.5,
                  'gamma_a': 0.9879, 'kappa_a': -22.0, 'sigma_a': 0.8}


def sobel_strength_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel edge strength ``sqrt(sx^2 + sy^2)`` and orientation ``atan(sy / sx)`` (pi/2 where sx = 0).

    Outside the image is zero, as the toolbox's ``filter2(kernel, image, 'same')``: the frame of a bright
    image therefore has edges (a constant image has edge strength only on its border).
    """
    x = image.astype(np.float64)
    sx = cv2.filter2D(x, cv2.CV_64F, _SOBEL_X, borderType=cv2.BORDER_CONSTANT)
    sy = cv2.filter2D(x, cv2.CV_64F, _SOBEL_X.T, borderType=cv2.BORDER_CONSTANT)
    strength = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide='ignore', invalid='ignore'):
        orientation = np.where(sx == 0, math.pi / 2, np.arctan(sy / np.where(sx == 0, 1.0, sx)))
    return strength, orientation


def _edge_preservation(g_s: np.ndarray, a_s: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    c = QABF_CONSTANTS
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = np.where(g_s > g_f, g_f / np.where(g_s == 0, 1.0, g_s),
                         np.where(g_s == g_f, 1.0, g_s / np.where(g_f == 0, 1.0, g_f)))
    orient = 1.0 - np.abs(a_s - a_f) / (math.pi / 2)
    q_g = c['gamma_g'] / (1.0 + np.exp(c['kappa_g'] * (ratio - c['sigma_g'])))
    q_a = c['gamma_a'] / (1.0 + np.exp(c['kappa_a'] * (orient - c['sigma_a'])))
    return q_g * q_a


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Qabf (Xydeas & Petrovic 2000): edge information of A and B kept in F.

    With Sobel strength g and orientation alpha: ``G = min(g_S, g_F) / max(g_S, g_F)`` (1 where equal),
    ``A = 1 - |alpha_S - alpha_F| / (pi/2)``,
    ``Q_SF = Gg / (1 + e^{kg (G - sg)}) * Ga / (1 + e^{ka (A - sa)})``
    (Gg 0.9994, kg -15, sg 0.5, Ga 0.9879, ka -22, sa 0.8), and
    ``Qabf = sum(Q_AF g_A + Q_BF g_B) / sum(g_A + g_B)``; NaN when A and B have no edges at all.
    Perfect transfer gives ``Q = Gg/(1+e^{-7.5}) * Ga/(1+e^{-4.4}) ~ 0.9748``, not 1, by construction.
    Sobel responses as the toolbox's ``analysis_Qabf.m`` (zero outside the image; its ``conv2`` kernels flip
    the sign of the orientation of every image alike, which leaves ``A`` unchanged). One deliberate
    difference: where ``g_S == g_F`` the toolbox sets ``G = g_F`` (the strength, not the ratio 1); that
    changes ``Q`` by at most 0.06 % for 8-bit images and makes it scale-dependent, so G = 1 is kept here.
    """
    g_a, al_a = sobel_strength_orientation(a)
    g_b, al_b = sobel_strength_orientation(b)
    g_f, al_f = sobel_strength_orientation(f)
    q_af = _edge_preservation(g_a, al_a, g_f, al_f)
    q_bf = _edge_preservation(g_b, al_b, g_f, al_f)
    weight = float((g_a + g_b).sum())
    return float((q_af * g_a + q_bf * g_b).sum() / weight) if weight > 0 else math.nan


# ------------------------------------------------------------------ FMI

FMI_FEATURES: tuple[str, ...] = ('pixel', 'dct', 'wavelet')

# The discrete Meyer filters MATLAB's dwt2(..., 'dmey') uses have 102 taps; PyWavelets' 'dmey' is a shorter
# (62-tap) FIR approximation of the same wavelet, centred on the same sample. Padding it with 20 zeros on
# each side gives MATLAB's filter length, hence MATLAB's sub-band size floor((N + 101) / 2) and alignment
# under the same half-point symmetric extension; the coefficients agree to the approximation's ~1e-3.
_DMEY_PAD = 20


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (n x n): ``sqrt(2/n) cos(pi (2i + 1) k / 2n)``, row 0 scaled by 1/sqrt(2)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def dct_feature(image: np.ndarray) -> np.ndarray:
    """MATLAB ``dct2``: the orthonormal 2-D DCT-II of the whole image, ``D_h X D_w^T``."""
    x = image.astype(np.float64)
    return dct_matrix(x.shape[0]) @ x @ dct_matrix(x.shape[1]).T


def wavelet_feature(image: np.ndarray) -> np.ndarray:
    """One level of ``dwt2(image, 'dmey')`` laid out as ``[cA cH; cV cD]`` and rescaled to [0, 1] (all ones
    when constant), as ``fmi.m`` does. Needs PyWavelets (imported here, so the other metrics do not)."""
    try:
        import pywt
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError('FMI_w needs PyWavelets, which is not installed: pip install PyWavelets (or the '
                          'train extra), or leave FMI out (nitedr eval --skip-fmi)') from None
    dmey = pywt.Wavelet('dmey')
    zeros = [0.0] * _DMEY_PAD
    bank = [zeros + list(f) + zeros for f in dmey.filter_bank]
    wavelet = pywt.Wavelet('dmey102', filter_bank=bank)
    c_a, (c_h, c_v, c_d) = pywt.dwt2(image.astype(np.float64), wavelet, mode='symmetric')
    feature = np.block([[c_a, c_h], [c_v, c_d]])
    lo, hi = feature.min(), feature.max()
    return np.ones_like(feature) if hi == lo else (feature - lo) / (hi - lo)


def fmi_feature_map(image: np.ndarray, feature: str) -> np.ndarray:
    """The feature image FMI slides its window over: grey levels, ``dct2`` or the rescaled dmey DWT."""
    if feature == 'pixel':
        return image.astype(np.float64)
    if feature == 'dct':
        return dct_feature(image)
    if feature == 'wavelet':
        return wavelet_feature(image)
    raise ValueError(f'unknown FMI feature {feature!r}; choose one of {", ".join(FMI_FEATURES)}')


def fmi_window_vectors(feature_map: np.ndarray, size: int = 3) -> np.ndarray:
    """Every ``size x size`` window (stride 1, row-major window order) flattened column by column, as
    MATLAB's ``sub(:)``: shape (windows, size^2)."""
    view = np.lib.stride_tricks.sliding_window_view(feature_map, (size, size))
    return view.transpose(0, 1, 3, 2).reshape(-1, size * size)


def _window_pdfs(x: np.ndarray) -> np.ndarray:
    """Each row rescaled to [0, 1] (all ones when constant) and divided by its sum."""
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    span = hi - lo
    flat = span == 0
    scaled = np.where(flat, 1.0, (x - lo) / np.where(flat, 1.0, span))
    return scaled / scaled.sum(axis=1, keepdims=True)


def _entropy_rows(p: np.ndarray) -> np.ndarray:
    """``-sum p log2 |p|`` over the non-zero entries of each row (all axes but the first)."""
    axes = tuple(range(1, p.ndim))
    nonzero = p != 0
    safe = np.where(nonzero, np.abs(p), 1.0)
    return -(np.where(nonzero, p * np.log2(safe), 0.0)).sum(axis=axes)


def fmi_windows(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Normalised feature MI of paired windows (rows of ``u`` = source, ``v`` = fused), one value per row.

    Haghighat & Razian's fast FMI (``fmi.m`` / ``analysis_fmi.m`` of the fusion toolboxes; M. Haghighat,
    M. A. Razian, "Fast-FMI: non-reference image fusion metric", AICT 2014). Rows are windows flattened
    column by column (:func:`fmi_window_vectors`); the order matters because of the cdfs.

    * Identical rows: 1.
    * pdf of a row: the row rescaled to [0, 1] (all ones when constant), divided by its sum; ``C`` its cdf.
    * ``c``: Pearson correlation of the two pdfs (0 when their centred dot product is 0).
    * Population standard deviations of the pdfs with the positions ``1..n`` as values:
      ``sd = sqrt(sum i^2 p_i - (sum i p_i)^2)``.
    * ``c >= 0``: the joint cdf mixes the upper Frechet bound ``M_ij = min(Cv_i, Cu_j)`` with independence:
      ``phi = c / corr_up``, ``corr_up = sum_ij (M_ij - Cv_i Cu_j) / (sd_v sd_u)`` (``phi = 0`` when c, sd_u
      or sd_v is 0). ``c < 0``: the lower bound ``W_ij = max(Cv_i + Cu_j - 1, 0)`` with
      ``theta = c / corr_lo`` likewise (0 when sd_u or sd_v is 0).
    * Joint pdf ``P = w dB + (1 - w) pv pu^T``: ``dB`` the 2-D difference of the bound (``w`` = phi or
      theta; w > 1 can make cells negative: entropy terms use ``-P log2 |P|``, as MATLAB's
      ``real(-P log2 P)`` does).
    * ``I = H_u + H_v - H_joint`` (entropies over non-zero cells, bits); ``FMI = 2 I / (H_u + H_v)``, and 0
      when ``I == 0``. So two constant windows that differ give 0.
    """
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f'fmi_windows needs two equal (windows, n) arrays, got {u.shape} and {v.shape}')
    identical = np.all(u == v, axis=1)
    pu, pv = _window_pdfs(u), _window_pdfs(v)
    n = pu.shape[1]
    du, dv = pu - pu.mean(axis=1, keepdims=True), pv - pv.mean(axis=1, keepdims=True)
    dot = (du * dv).sum(axis=1)
    norm = np.sqrt((du * du).sum(axis=1) * (dv * dv).sum(axis=1))
    c = np.divide(dot, norm, out=np.zeros_like(dot), where=(dot != 0) & (norm > 0))
    positions = np.arange(1, n + 1, dtype=np.float64)
    sd_u = np.sqrt(np.maximum((positions ** 2 * pu).sum(axis=1) - ((positions * pu).sum(axis=1)) ** 2, 0.0))
    sd_v = np.sqrt(np.maximum((positions ** 2 * pv).sum(axis=1) - ((positions * pv).sum(axis=1)) ** 2, 0.0))
    cdf_v, cdf_u = np.cumsum(pv, axis=1)[:, :, None], np.cumsum(pu, axis=1)[:, None, :]
    independent = cdf_v * cdf_u
    upper = c >= 0
    bound = np.where(upper[:, None, None], np.minimum(cdf_v, cdf_u),
                     np.maximum(cdf_v + cdf_u - 1.0, 0.0))
    cov_bound = (bound - independent).sum(axis=(1, 2))
    live = (sd_u > 0) & (sd_v > 0) & (c != 0) & (cov_bound != 0)
    weight = np.divide(c * sd_u * sd_v, cov_bound, out=np.zeros_like(c), where=live)
    padded = np.pad(bound, ((0, 0), (1, 0), (1, 0)))
    bound_pdf = padded[:, 1:, 1:] - padded[:, :-1, 1:] - padded[:, 1:, :-1] + padded[:, :-1, :-1]
    w = weight[:, None, None]
    joint = w * bound_pdf + (1.0 - w) * pv[:, :, None] * pu[:, None, :]
    h_u, h_v = _entropy_rows(pu), _entropy_rows(pv)
    mi = h_u + h_v - _entropy_rows(joint)
    total = h_u + h_v
    out = np.divide(2.0 * mi, total, out=np.zeros_like(mi), where=(mi != 0) & (total != 0))
    out[identical] = 1.0
    return out


def fmi(source: np.ndarray, fused: np.ndarray, feature: str = 'pixel', window: int = 3) -> float:
    """FMI of one source and the fused image: mean of :func:`fmi_windows` over every ``window x window``
    position (stride 1) of the feature maps (:func:`fmi_feature_map`).

    Features as in ``fmi.m``: ``pixel`` (``'none'``: grey levels), ``dct`` (``dct2`` of the whole image),
    ``wavelet`` (one ``dmey`` level, ``[cA cH; cV cD]`` rescaled to [0, 1]; see :func:`wavelet_feature`).
    The fusion table averages the two sources, which equals ``fmi.m``'s mean of ``(fmi_af + fmi_bf) / 2``.
    """
    if source.shape != fused.shape:
        raise ValueError(f'shapes differ: {source.shape} vs {fused.shape}')
    u = fmi_window_vectors(fmi_feature_map(source, feature), window)
    v = fmi_window_vectors(fmi_feature_map(fused, feature), window)
    chunk = max(1, 1_000_000 // (u.shape[1] ** 2))  # bounds the (chunk, n, n) temporaries
    values = [fmi_windows(u[i:i + chunk], v[i:i + chunk]) for i in range(0, u.shape[0], chunk)]
    return float(np.mean(np.concatenate(values)))


# ------------------------------------------------------------------ fusion table

FUSION_METRICS: tuple[str, ...] = ('PSNR', 'SSIM', 'MS-SSIM', 'MI', 'VIF', 'CC', 'FMI_pixel', 'FMI_dct',
                                   'FMI_w', 'MSE', 'Qabf', 'EN', 'SD', 'SF')


def fusion_metrics(visible: np.ndarray, infrared: np.ndarray, fused: np.ndarray,
                   skip: Collection[str] = ()) -> dict[str, float]:
    """All fusion metrics (NiteDR Table II columns plus EN, SD, SF) but those named in ``skip``.

    Images: uint8 or float [0, 1], colour or grey, equal sizes; see the module docstring for conventions.
    """
    a, b, f = to_grey(visible), to_grey(infrared), to_grey(fused)
    if not a.shape == b.shape == f.shape:
        raise ValueError(f'sizes differ: visible {a.shape}, infrared {b.shape}, fused {f.shape}')

    def both(measure: Callable[[np.ndarray, np.ndarray], float]) -> float:
        return 0.5 * (measure(a, f) + measure(b, f))

    def mse_01() -> float:
        return 0.5 * (mse(a / 255.0, f / 255.0) + mse(b / 255.0, f / 255.0))

    def fusion_psnr() -> float:
        err = mse_01()
        return math.inf if err == 0 else 10.0 * math.log10(255.0 ** 2 / err)

    table: dict[str, Callable[[], float]] = {
        'PSNR': fusion_psnr,
        'SSIM': lambda: both(ssim),
        'MS-SSIM': lambda: both(ms_ssim),
        'MI': lambda: mutual_information(a, f) + mutual_information(b, f),
        'VIF': lambda: both(vif),
        'CC': lambda: both(correlation),
        'FMI_pixel': lambda: both(lambda s, g: fmi(s, g, 'pixel')),
        'FMI_dct': lambda: both(lambda s, g: fmi(s, g, 'dct')),
        'FMI_w': lambda: both(lambda s, g: fmi(s, g, 'wavelet')),
        'MSE': mse_01,
        'Qabf': lambda: qabf(a, b, f),
        'EN': lambda: entropy(f),
        'SD': lambda: standard_deviation(f),
        'SF': lambda: spatial_frequency(f),
    }
    unknown = set(skip) - set(table)
    if unknown:
        raise ValueError(f'unknown fusion metric(s) {sorted(unknown)}; known: {", ".join(FUSION_METRICS)}')
    return {name: compute() for name, compute in table.items() if name not in skip}
