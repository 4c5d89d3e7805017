"""FusionNet (NiteDR stage 2), its refinement unit, the information measure and the colour conversion."""

from __future__ import annotations

import pytest
import torch

from network_budget import check_realtime_budget
from nitedr_ros.errors import ConfigError
from nitedr_ros.modelspec import get_spec
from nitedr_ros.networks import build_network, color, fusionnet
from nitedr_ros.networks.complexity import count_params


def _inputs(batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    visible = torch.rand(batch, 3, height, width, generator=gen)
    return visible, torch.rand(batch, 1, height, width, generator=gen)


def _textured(height: int, width: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    stripes = (torch.arange(width) // 3 % 2).float().expand(height, width)
    return (0.6 * stripes + 0.4 * torch.rand(height, width, generator=gen)).reshape(1, 1, height, width)


def test_paper_parameter_count_matches_published():
    model = fusionnet.build('paper')
    fusion, refine = count_params(model.fusion), count_params(model.refine)
    print(f'FusionNet paper: fusion {fusion:,} + refinement {refine:,} = {fusion + refine:,}')
    assert fusion == 659_217
    assert refine == 837
    assert model.refine_gate.numel() == 1  # the refinement gate: our one parameter beyond the paper's
    assert count_params(model) == get_spec('fusionnet').published_params + 1
    assert count_params(fusionnet.build_calibration()) == 5_619


def test_realtime_budget_at_720p():
    check_realtime_budget('fusionnet', fusionnet.build('paper'), fusionnet.build('realtime'), max_flops=15e9)


@pytest.mark.parametrize('config', ['paper', 'realtime'])
def test_forward_shape_and_range_at_any_size(config):
    model = build_network('fusionnet', config)
    visible, infrared = _inputs(1, 21, 34)
    with torch.no_grad():
        fused = model(visible, infrared)
    assert fused.shape == (1, 3, 21, 34)
    assert fused.dtype == torch.float32
    assert torch.isfinite(fused).all()
    assert fused.min() >= 0 and fused.max() <= 1


def test_colour_round_trip_and_reference_values():
    rgb = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(1))
    assert (color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb)) - rgb).abs().max() < 1e-6
    rgb64 = rgb.double()
    assert (color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb64)) - rgb64).abs().max() < 1e-12
    ycc = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    assert (color.rgb_to_ycbcr(color.ycbcr_to_rgb(ycc)) - ycc).abs().max() < 1e-6

    swatches = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 0.0, 0.0],
                             [0.0, 0.0, 1.0]]).T.reshape(1, 3, 1, 5)
    y, cb, cr = color.rgb_to_ycbcr(swatches)[0, :, 0]
    expected_y = torch.tensor([1.0, 0.0, 0.5, 0.299, 0.114])
    assert torch.allclose(y, expected_y, atol=1e-6)
    assert torch.allclose(cb[:3], torch.full((3,), 0.5), atol=1e-6)  # greys have neutral chroma
    assert torch.allclose(cr[:3], torch.full((3,), 0.5), atol=1e-6)
    assert cr[3] == pytest.approx(1.0, abs=1e-6)  # pure red: Cr at the top of the full range
    assert cb[4] == pytest.approx(1.0, abs=1e-6)  # pure blue: Cb at the top
    assert torch.equal(color.rgb_to_luma(swatches), color.rgb_to_ycbcr(swatches)[:, :1])


def test_fused_luma_is_recombined_with_visible_chroma():
    model = fusionnet.build('realtime').eval()
    visible, infrared = _inputs(1, 16, 16, seed=3)
    with torch.no_grad():
        parts = model.fuse(visible, infrared)
    fused_ycc = color.rgb_to_ycbcr(parts['fused'])
    inside = (parts['fused'] > 1e-3).all(dim=1) & (parts['fused'] < 1 - 1e-3).all(dim=1)  # not clamped
    assert inside.any()
    visible_chroma = color.rgb_to_ycbcr(visible)[:, 1:]
    assert torch.allclose(fused_ycc[:, 1:][inside.unsqueeze(1).expand(-1, 2, -1, -1)],
                          visible_chroma[inside.unsqueeze(1).expand(-1, 2, -1, -1)], atol=1e-5)
    assert torch.allclose(fused_ycc[:, :1][inside.unsqueeze(1)], parts['fused_y'][inside.unsqueeze(1)],
                          atol=1e-5)


def test_information_weights_sum_to_one_and_favour_structure():
    measure = fusionnet.InformationMeasure()
    flat = torch.full((1, 1, 32, 48), 0.4)
    textured = _textured(32, 48, seed=4)
    w_vis, w_ir = measure(flat, textured)
    assert w_vis.shape == w_ir.shape == (1,)
    assert torch.allclose(w_vis + w_ir, torch.ones(1))
    assert w_ir.item() > 0.9
    w_vis2, w_ir2 = measure(textured, flat)
    assert w_vis2.item() > 0.9 and w_ir2.item() < 0.1
    # per image in a batch, equal sources get equal weight, and more structure means more weight
    faint = 0.5 + 0.2 * (textured - 0.5)
    batch_vis = torch.cat([textured, faint, textured])
    batch_ir = torch.cat([faint, textured, textured])
    w_vis3, w_ir3 = measure(batch_vis, batch_ir)
    assert torch.allclose(w_vis3 + w_ir3, torch.ones(3))
    assert w_vis3[0] > 0.5 > w_vis3[1]
    assert w_vis3[2].item() == pytest.approx(0.5, abs=1e-6)


def test_information_temperature_pulls_weights_to_half():
    flat_ish = 0.5 + 0.05 * _textured(32, 32, seed=5)
    textured = _textured(32, 32, seed=6)
    sharp = fusionnet.InformationMeasure(temperature=1.0)(flat_ish, textured)[1]
    soft = fusionnet.InformationMeasure(temperature=8.0)(flat_ish, textured)[1]
    assert sharp > soft > 0.5
    with pytest.raises(ValueError):
        fusionnet.InformationMeasure(temperature=0.0)


def test_forward_train_matches_forward_and_returns_weights():
    model = fusionnet.build('realtime').eval()
    visible, infrared = _inputs(2, 24, 20, seed=7)
    with torch.no_grad():
        out = model.forward_train(visible, infrared)
        fused = model(visible, infrared)
    assert torch.allclose(out['refined'], fused, atol=1e-6)
    assert out['fused_y'].shape == (2, 1, 24, 20) and out['fused'].shape == (2, 3, 24, 20)
    assert out['fused_y'].min() >= 0 and out['fused_y'].max() <= 1
    assert out['illumination'].min() >= fusionnet.ILLUMINATION_FLOOR and out['illumination'].max() <= 1
    assert torch.allclose(out['visible_y'], color.rgb_to_luma(visible))
    assert out['w_visible'].shape == (2,)
    assert torch.allclose(out['w_visible'] + out['w_infrared'], torch.ones(2))
    assert not out['w_visible'].requires_grad


def test_cascade_with_calibration_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = fusionnet.build('realtime').train()
    calibration = fusionnet.build_calibration().train()
    visible, infrared = _inputs(2, 20, 20, seed=8)
    out = model.forward_train(visible, infrared, stages=3, calibration=calibration)
    assert len(out['illuminations']) == len(out['stage_inputs']) == len(out['reflectances']) == 3
    assert torch.equal(out['stage_inputs'][0], out['fused'])
    assert not torch.allclose(out['stage_inputs'][1], out['fused'])
    w_vis, w_ir = out['w_visible'].view(-1, 1, 1, 1), out['w_infrared'].view(-1, 1, 1, 1)
    loss = (w_vis * (out['fused_y'] - out['visible_y']).square() + w_ir * (out['fused_y'] - infrared).square()
            ).mean()
    loss = loss + sum((i - s).square().mean() for i, s in zip(out['illuminations'], out['stage_inputs']))
    loss.backward()
    for name, param in [*model.named_parameters(), *calibration.named_parameters()]:
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    # the residual head starts at zero (the fused image is the visible one): only its last layer learns on
    # the first step, then every layer does
    output = model.fusion.head[-1]
    assert output.weight.grad.abs().sum() > 0
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.zero_grad()
    out = model.forward_train(visible, infrared)
    (out['fused_y'] - infrared).square().mean().backward()
    assert all(p.grad.abs().sum() > 0 for p in model.fusion.parameters())
    with pytest.raises(ValueError):
        model.forward_train(visible, infrared, stages=2)


def test_an_untrained_fusion_passes_the_visible_image_through():
    model = fusionnet.build('realtime').eval()
    visible, infrared = _inputs(2, 24, 32, seed=11)
    with torch.no_grad():
        fused = model(visible, infrared)
    assert torch.allclose(fused, visible.clamp(0, 1), atol=1e-5)


def test_the_fused_colour_is_the_visible_colour_whatever_the_luminance():
    """The colour rule: fusion changes luminance only; the refinement gate can tint, and training holds it
    with the chroma loss (measured on the shipped model by the evaluation's CbCr error)."""
    torch.manual_seed(3)
    model = fusionnet.build('realtime').eval()
    for parameter in model.fusion.head[-1].parameters():
        torch.nn.init.normal_(parameter, std=0.5)  # a trained-looking residual
    visible, infrared = _inputs(1, 20, 20, seed=12)
    with torch.no_grad():
        fused = model(visible, infrared)
    inside = ((fused > 0.02) & (fused < 0.98)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    chroma_error = (color.rgb_to_ycbcr(fused)[:, 1:] - color.rgb_to_ycbcr(visible)[:, 1:]).abs()[inside]
    assert inside.any() and chroma_error.max() < 1e-4
    assert (color.rgb_to_luma(fused) - color.rgb_to_luma(visible)).abs().max() > 0.05


def test_unknown_configuration_or_option_is_a_config_error():
    with pytest.raises(ConfigError):
        fusionnet.build('huge')
    with pytest.raises(ConfigError):
        fusionnet.build('paper', no_such_option=1)
    assert count_params(fusionnet.build('paper', growth=8)) < count_params(fusionnet.build('paper'))
