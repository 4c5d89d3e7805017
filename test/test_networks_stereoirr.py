"""StereoIRR: size, budgets, view symmetry, row-wise (epipolar) mutual attention, residual output."""

from __future__ import annotations

import pytest
import torch

from network_budget import check_realtime_budget
from nitedr_ros.errors import ConfigError
from nitedr_ros.modelspec import STEREOIRR_THIRD_PARTY_PARAMS
from nitedr_ros.networks import build_network, stereoirr
from nitedr_ros.networks.complexity import count_params


def _pair(height: int, width: int, seed: int = 0, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, height, width, generator=gen),
            torch.rand(batch, 3, height, width, generator=gen))


def test_paper_size_is_near_the_third_party_figure():
    with torch.device('meta'):
        model = stereoirr.build('paper')
    total = count_params(model)
    print(f'StereoIRR paper: {total:,} params (third-party figure {STEREOIRR_THIRD_PARTY_PARAMS:,}, '
          f'{100 * (total / STEREOIRR_THIRD_PARTY_PARAMS - 1):+.2f} %)')
    assert abs(total / STEREOIRR_THIRD_PARTY_PARAMS - 1) < 0.01
    assert len(model.lci.attention) == len(model.lci.stages) - 1  # a DMA between consecutive stages


def test_realtime_budget_at_720p():
    with torch.device('meta'):
        paper_model = stereoirr.build('paper')
    check_realtime_budget('stereoirr', paper_model, stereoirr.build('realtime'), max_flops=60e9)


@pytest.mark.parametrize(('config', 'size'), [('paper', (16, 24)), ('realtime', (40, 64))])
def test_forward_shapes_and_range(config, size):
    model = build_network('stereoirr', config)
    left, right = _pair(*size)
    with torch.no_grad():
        out = model(left, right)
    assert isinstance(out, tuple) and len(out) == 2
    for view in out:
        assert view.shape == left.shape
        assert torch.isfinite(view).all()
        assert view.min() >= 0 and view.max() <= 1


def test_swapping_the_views_swaps_the_outputs():
    torch.manual_seed(0)
    model = stereoirr.build('realtime').eval()
    left, right = _pair(32, 48, seed=1)
    with torch.no_grad():
        out_left, out_right = model(left, right)
        swapped_left, swapped_right = model(right, left)
    assert torch.allclose(out_left, swapped_right, atol=1e-6)
    assert torch.allclose(out_right, swapped_left, atol=1e-6)
    assert not torch.allclose(out_left, out_right)


def test_views_interact_only_through_the_attention():
    torch.manual_seed(0)
    model = stereoirr.build('realtime').eval()
    left, right = _pair(32, 48, seed=2)
    other_right = torch.rand_like(right)
    with torch.no_grad():
        base = model.forward_train(left, right)['left']
        changed = model.forward_train(left, other_right)['left']
    assert (base - changed).abs().max() > 1e-4  # the right view reaches the left output


def test_dual_view_attention_is_row_wise():
    torch.manual_seed(0)
    attention = stereoirr.DualViewMutualAttention(8, heads=2)
    left, right = torch.randn(1, 8, 6, 10), torch.randn(1, 8, 6, 10)
    row = 3
    perturbed = right.clone()
    perturbed[:, :, row] += torch.randn(1, 8, 10)
    with torch.no_grad():
        left_from_right, right_from_left = attention.attend(left, right)
        left_from_perturbed, perturbed_from_left = attention.attend(left, perturbed)
    change_left = (left_from_perturbed - left_from_right).abs().amax(dim=(0, 1, 3))
    change_right = (perturbed_from_left - right_from_left).abs().amax(dim=(0, 1, 3))
    others = [r for r in range(6) if r != row]
    assert change_left[row] > 1e-3 and change_left[others].max() < 1e-6
    assert change_right[row] > 1e-3 and change_right[others].max() < 1e-6
    # and within the row every left pixel reads from the whole right row (full epipolar line)
    single = right.clone()
    single[:, :, row, 9] += 3.0 * torch.randn(8)  # not a uniform offset: LayerNorm would remove that
    with torch.no_grad():
        from_single = attention.attend(left, single)[0]
    assert ((from_single - left_from_right)[0, :, row].abs().amax(dim=0) > 1e-4).all()


def test_dual_view_attention_is_symmetric():
    torch.manual_seed(0)
    attention = stereoirr.DualViewMutualAttention(8, heads=4)
    left, right = torch.randn(2, 8, 5, 7), torch.randn(2, 8, 5, 7)
    with torch.no_grad():
        a_left, a_right = attention(left, right)
        b_left, b_right = attention(right, left)
    assert torch.allclose(a_left, b_right, atol=1e-6) and torch.allclose(a_right, b_left, atol=1e-6)


def test_output_is_input_plus_residual_and_gradients_flow():
    torch.manual_seed(0)
    model = stereoirr.build('realtime').train()
    left, right = _pair(32, 32, seed=3, batch=2)
    out = model.forward_train(left, right)
    assert torch.allclose(out['left'], left + out['left_residual'])
    assert torch.allclose(out['right'], right + out['right_residual'])
    (out['left'].square().mean() + out['right'].square().mean()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_unknown_configuration_or_option_is_a_config_error():
    with pytest.raises(ConfigError):
        stereoirr.build('tiny')
    with pytest.raises(ConfigError):
        stereoirr.build('realtime', depth=4)
    with pytest.raises(ValueError):
        stereoirr.build('realtime', stages=1)
