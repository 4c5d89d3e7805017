"""Training losses (torch): pixel, structural, edge, fusion, illumination and contrastive terms.

All image tensors are NCHW in [0, 1]. Every function returns a scalar tensor (mean over the batch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))`` (a smooth L1)."""
    diff = pred - target
    return torch.sqrt(diff * diff + eps * eps).mean()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def pixel_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``l1``, ``charbonnier`` or ``mse``."""
    if kind == 'l1':
        return l1(pred, target)
    if kind == 'charbonnier':
        return charbonnier(pred, target)
    if kind == 'mse':
        return F.mse_loss(pred, target)
    raise ValueError(f'unknown pixel loss {kind!r}; choose l1, charbonnier or mse')


def _gaussian_kernel(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = torch.outer(g, g).to(like.dtype)
    return kernel.expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM on the [0, 1] scale (C1 = 0.01^2, C2 = 0.03^2), Gaussian window, valid positions only.

    Patches smaller than the window use the largest odd window that fits (sigma scaled alike).
    """
    channels = pred.shape[1]
    side = min(pred.shape[-2:])
    if side < window:
        small = side if side % 2 else side - 1
        sigma, window = sigma * small / window, small
    kernel = _gaussian_kernel(window, sigma, channels, pred)
    x, y = pred.float(), target.float()
    kernel = kernel.float()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return value.mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM``."""
    return 1.0 - ssim(pred, target)


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _depthwise(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    channels = image.shape[1]
    weight = kernel.to(image.device, image.dtype).expand(channels, 1, 3, 3).contiguous()
    return F.conv2d(F.pad(image, (1, 1, 1, 1), mode='replicate'), weight, groups=channels)


def laplacian(image: torch.Tensor) -> torch.Tensor:
    """4-neighbour Laplacian per channel (replicated borders)."""
    return _depthwise(image, _LAPLACIAN)


def edge_charbonnier(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSPFN's edge term: Charbonnier between the Laplacians of prediction and target."""
    return charbonnier(laplacian(pred), laplacian(target))


def sobel_magnitude(image: torch.Tensor) -> torch.Tensor:
    """``|Gx| + |Gy|`` of the Sobel derivatives per channel (the usual fusion-loss gradient)."""
    gx = _depthwise(image, _SOBEL_X)
    gy = _depthwise(image, _SOBEL_X.t())
    return gx.abs() + gy.abs()


# ------------------------------------------------------------------ fusion

def _per_image_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).flatten(1).mean(dim=1)


def _per_image_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([ssim(a[i:i + 1], b[i:i + 1]) for i in range(a.shape[0])])


def fusion_losses(fused_y: torch.Tensor, visible_y: torch.Tensor, infrared: torch.Tensor,
                  w_visible: torch.Tensor, w_infrared: torch.Tensor, *, ssim_weight: float = 1.0,
                  intensity_weight: float = 20.0, gradient_weight: float = 10.0) -> dict[str, torch.Tensor]:
    """NiteDR's fusion objective with the information-measure weights really used.

    Per image, with source weights ``w_v + w_i = 1`` (detached, from the network's information measure):

    * structural: ``w_v (1 - SSIM(f, v)) + w_i (1 - SSIM(f, i))``
    * intensity: ``w_v MSE(f, v) + w_i MSE(f, i)``
    * gradient: ``L1(|grad f|, max(|grad v|, |grad i|))`` (Sobel magnitudes; keeps the stronger edge)

    The published code uses 0.5/0.5 for both sources, SSIM weight 1 and intensity weight 20 (its "0.5 SSIM
    + 20 x 0.5 MSE" per source); the gradient term is the usual fusion gradient loss.
    """
    structural = (w_visible * (1 - _per_image_ssim(fused_y, visible_y))
                  + w_infrared * (1 - _per_image_ssim(fused_y, infrared))).mean()
    intensity = (w_visible * _per_image_mse(fused_y, visible_y)
                 + w_infrared * _per_image_mse(fused_y, infrared)).mean()
    strongest = torch.maximum(sobel_magnitude(visible_y), sobel_magnitude(infrared))
    gradient = l1(sobel_magnitude(fused_y), strongest)
    return {'fusion_ssim': ssim_weight * structural, 'fusion_intensity': intensity_weight * intensity,
            'fusion_gradient': gradient_weight * gradient}


def illumination_fidelity(illumination: torch.Tensor, stage_input: torch.Tensor) -> torch.Tensor:
    """SCI's fidelity term: the estimated illumination stays close to the stage input (MSE)."""
    return F.mse_loss(illumination, stage_input)


def illumination_smoothness(illumination: torch.Tensor, guide: torch.Tensor,
                            alpha: float = 10.0) -> torch.Tensor:
    """Edge-aware smoothness: ``mean(exp(-alpha |grad guide|) * |grad illumination|)`` over x and y.

    ``guide`` is the stage input (its luminance is used), so the illumination is smooth except across the
    input's edges (the role of SCI's affinity-weighted smoothness loss).
    """
    guide_y = guide.mean(dim=1, keepdim=True)
    dx_i = (illumination[..., :, 1:] - illumination[..., :, :-1]).abs()
    dy_i = (illumination[..., 1:, :] - illumination[..., :-1, :]).abs()
    dx_g = (guide_y[..., :, 1:] - guide_y[..., :, :-1]).abs()
    dy_g = (guide_y[..., 1:, :] - guide_y[..., :-1, :]).abs()
    return (torch.exp(-alpha * dx_g) * dx_i).mean() + (torch.exp(-alpha * dy_g) * dy_i).mean()


# ------------------------------------------------------------------ contrastive

def info_nce(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
             temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE on cosine similarities: cross-entropy of ``[q.k+, q.k-_1 .. q.k-_n] / T`` with label 0.

    ``query``, ``positive`` [B, D]; ``negatives`` [B, n, D]. Vectors are L2-normalised here.
    """
    q = F.normalize(query, dim=-1)
    pos = (q * F.normalize(positive, dim=-1)).sum(dim=-1, keepdim=True)
    neg = torch.einsum('bd,bnd->bn', q, F.normalize(negatives, dim=-1))
    logits = torch.cat([pos, neg], dim=1) / temperature
    labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, labels)


def info_nce_lower_bound(n_negatives: int, temperature: float = 1.0) -> float:
    """The smallest value :func:`info_nce` can take (positive at +1, all negatives at -1)."""
    return math.log(1.0 + n_negatives * math.exp(-2.0 / temperature))


# ------------------------------------------------------------------ stereo

def shift_right_to_left(right: torch.Tensor, disparity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample the right view at ``x - d`` so it lines up with the left view (``d`` [N,1,H,W], px).

    Returns (warped, valid) where ``valid`` marks pixels whose source lies inside the right image.
    """
    n, _, h, w = right.shape
    xs = torch.arange(w, device=right.device, dtype=right.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    ys = torch.arange(h, device=right.device, dtype=right.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    src_x = xs - disparity
    grid = torch.stack([2 * src_x / max(w - 1, 1) - 1, 2 * ys / max(h - 1, 1) - 1], dim=-1)[:, 0]
    warped = F.grid_sample(right, grid, mode='bilinear', padding_mode='border', align_corners=True)
    valid = ((src_x >= 0) & (src_x <= w - 1)).to(right.dtype)
    return warped, valid


def stereo_consistency(left: torch.Tensor, right: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """L1 between the left output and the right output warped into the left view (valid pixels only)."""
    warped, valid = shift_right_to_left(right, disparity)
    return ((warped - left).abs() * valid).sum() / (valid.sum() * left.shape[1]).clamp_min(1.0)
