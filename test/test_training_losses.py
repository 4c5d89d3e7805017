"""Training losses: values worked out by hand, agreement with the numpy metrics, gradients flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nitedr_ros.evaluation import metrics
from nitedr_ros.training import losses


def test_charbonnier_by_hand():
    x = torch.zeros(1, 3, 4, 4)
    assert float(losses.charbonnier(x, x)) == pytest.approx(1e-3)
    assert float(losses.charbonnier(x, x + 1)) == pytest.approx(math.sqrt(1 + 1e-6))
    assert float(losses.pixel_loss('l1', x, x + 0.5)) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        losses.pixel_loss('huber', x, x)


def test_torch_ssim_matches_the_numpy_metric():
    rng = np.random.default_rng(0)
    a, b = rng.random((16, 16)), rng.random((16, 16))
    ta, tb = (torch.tensor(v, dtype=torch.float32)[None, None] for v in (a, b))
    # SSIM is scale invariant when C1, C2 scale with the peak: [0, 1] here, 0..255 in the metric
    assert float(losses.ssim(ta, tb)) == pytest.approx(metrics.ssim(a * 255, b * 255), abs=1e-5)
    assert float(losses.ssim_loss(ta, ta)) == pytest.approx(0.0, abs=1e-6)


def test_edge_terms():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert float(losses.laplacian(flat).abs().max()) == 0.0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8) / 8
    # interior of a ramp rising 1/8 per px: Laplacian 0; Sobel |Gx| = (1 + 2 + 1) * 2 px * 1/8 = 1, |Gy| = 0
    assert float(losses.laplacian(ramp)[..., 1:-1, 1:-1].abs().max()) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.sobel_magnitude(ramp)[..., 1:-1, 1:-1].mean()) == pytest.approx(1.0, rel=1e-5)
    assert float(losses.edge_charbonnier(ramp, ramp)) == pytest.approx(1e-3)


def test_info_nce_bounds_and_gradient():
    q = torch.nn.functional.normalize(torch.randn(3, 8), dim=1).requires_grad_(True)
    negatives = -q.detach()[:, None, :].expand(3, 4, 8)
    best = losses.info_nce(q, q.detach(), negatives, temperature=1.0)
    assert best.detach().item() == pytest.approx(losses.info_nce_lower_bound(4, 1.0), rel=1e-5)
    worse = losses.info_nce(q, -q.detach(), q.detach()[:, None, :].expand(3, 4, 8))
    assert worse.detach().item() > best.detach().item()
    worse.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_fusion_losses_follow_the_information_weights():
    torch.manual_seed(0)
    visible, infrared = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    ones, zeros = torch.ones(2), torch.zeros(2)
    only_visible = losses.fusion_losses(visible, visible, infrared, ones, zeros)
    assert float(only_visible['fusion_ssim']) == pytest.approx(0.0, abs=1e-5)
    assert float(only_visible['fusion_intensity']) == pytest.approx(0.0, abs=1e-7)
    only_ir = losses.fusion_losses(visible, visible, infrared, zeros, ones, intensity_weight=1.0)
    expected = float(((visible - infrared) ** 2).mean())
    assert float(only_ir['fusion_intensity']) == pytest.approx(expected, rel=1e-5)
    # the gradient target is the stronger edge: a fused image equal to the stronger one scores 0
    strong = visible * 3
    grad = losses.fusion_losses(strong, strong, infrared * 0, ones, zeros)['fusion_gradient']
    assert float(grad) == pytest.approx(0.0, abs=1e-6)


def test_illumination_terms():
    illumination = torch.full((1, 3, 8, 8), 0.5)
    assert float(losses.illumination_smoothness(illumination, torch.rand(1, 3, 8, 8))) == 0.0
    assert float(losses.illumination_fidelity(illumination, illumination)) == 0.0
    noisy = illumination + 0.1 * torch.randn(1, 3, 8, 8)
    flat_guide, edgy_guide = torch.zeros(1, 3, 8, 8), torch.rand(1, 3, 8, 8) * 10
    # smoothing is enforced where the guide is flat, relaxed across its edges
    assert float(losses.illumination_smoothness(noisy, flat_guide)) > \
        float(losses.illumination_smoothness(noisy, edgy_guide))


def test_stereo_warp_and_consistency():
    w = 12
    left = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(1, 3, 5, w).contiguous()
    disparity = torch.full((1, 1, 5, w), 2.0)
    right = left + 2.0  # the point at left x sits at x - 2 in the right view: right(x) = left(x + 2)
    warped, valid = losses.shift_right_to_left(right, disparity)
    assert torch.allclose(warped[..., 2:], left[..., 2:])
    assert valid[..., :2].sum() == 0 and valid[..., 2:].min() == 1
    assert float(losses.stereo_consistency(left, right, disparity)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.stereo_consistency(left, right + 1, disparity)) == pytest.approx(1.0, abs=1e-5)
