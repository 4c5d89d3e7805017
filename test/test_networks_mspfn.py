"""MSPFN (M17N1 released graph): parameter groups, TF 'SAME' resampling, rain-layer output, budgets."""

from __future__ import annotations

import pytest
import torch

from network_budget import check_realtime_budget
from nitedr_ros.errors import ConfigError
from nitedr_ros.modelspec import get_spec
from nitedr_ros.networks import build_network, mspfn
from nitedr_ros.networks.complexity import count_params

# Element counts of the TF variable groups of TEST_MSPFN_M17N1 (seed-models note, section 4), keyed by our
# module names: initial features, coarse fusion (rain*_res1 + lstm_group* + rain*_res2), its up-links, the 17
# fine-fusion iterations (BCM4/BCM2/BCM1 and the upBCM links), reconstruction.
RELEASE_GROUPS = {
    'initial1': 1_792, 'initial2': 1_792, 'initial4': 1_792,
    'memory4': 18_464 + 221_440 + 36_928,
    'memory2': 18_464 + 737_792 + 73_792,
    'memory1': 18_464 + 2_655_232 + 147_520,
    'memory_up4to2': 36_928, 'memory_up4to1': 36_928, 'memory_up2to1': 36_928,
    'bcm4': 3_175_328, 'bcm2': 3_175_328, 'bcm1': 3_175_328,
    'up4to2': 627_776, 'up4to1': 627_776, 'up2to1': 627_776,
    'recon4': 73_792, 'recon2': 73_792, 'recon1': 73_792,
    'recon_up4to2': 36_928, 'recon_up2to1': 73_792, 'recon_merge': 36_896, 'rain_out': 864,
}


def _meta_model(config: str) -> mspfn.MSPFN:
    with torch.device('meta'):
        return mspfn.build(config)


def test_paper_parameter_count_matches_release_group_by_group():
    model = _meta_model('paper')
    groups: dict[str, int] = {}
    for name, param in model.named_parameters():
        parts = name.split('.')
        key = parts[2] if parts[0] == 'steps' else parts[0]
        groups[key] = groups.get(key, 0) + param.numel()
    total = count_params(model)
    print(f'MSPFN paper: {total:,} params (release 15,823,424), {len(model.state_dict())} tensors')
    assert groups == RELEASE_GROUPS
    assert total == get_spec('mspfn').published_params == 15_823_424
    assert len(model.state_dict()) == 859  # one tensor per TF variable
    shapes = dict(model.named_parameters())
    assert shapes['memory4.lstm.weight'].shape == (256, 96, 3, 3)
    assert shapes['memory2.lstm.weight'].shape == (512, 160, 3, 3)
    assert shapes['memory1.lstm.weight'].shape == (1024, 288, 3, 3)
    assert shapes['steps.0.bcm4.up.deconv.weight'].shape == (128, 64, 3, 3)
    assert shapes['steps.16.bcm1.rcabs.0.attention.0.weight'].shape == (16, 64, 1, 1)


def test_realtime_budget_at_720p():
    check_realtime_budget('mspfn', _meta_model('paper'), mspfn.build('realtime'), max_flops=60e9)


@pytest.mark.parametrize(('config', 'size'), [('paper', (16, 24)), ('realtime', (40, 56))])
def test_forward_shape_and_range(config, size):
    model = build_network('mspfn', config)
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(image)
    assert out.shape == image.shape
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


def test_output_is_input_minus_rain():
    torch.manual_seed(0)
    model = mspfn.build('realtime').eval()
    with torch.no_grad():
        for module in model.modules():  # non-zero PReLU slopes: a less trivial rain layer
            if isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(0.0, 0.3)
        image = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1))
        out = model.forward_train(image)
        clamped = model(image)
    assert out['rain'].abs().max() > 0
    assert torch.allclose(out['derained'], image - out['rain'], atol=1e-6)
    assert torch.equal(clamped, out['derained'].clamp(0, 1))
    # the network sees BGR in [-1, 1]: its raw rain layer is the RGB one, channel-reversed and doubled
    bgr = torch.flip(image, dims=[1]) * 2 - 1
    with torch.no_grad():
        raw = model.rain_layer(bgr)
    assert torch.allclose(torch.flip(raw, dims=[1]) * 0.5, out['rain'], atol=1e-6)


def test_stride2_transposed_conv_is_the_adjoint_of_the_same_padded_conv():
    """TF defines conv2d_transpose as the gradient of a 'SAME' conv: <down(x), y> == <x, up(y)>."""
    torch.manual_seed(0)
    down, up = mspfn.DownPReLU(4), mspfn.UpPReLU(4, 4)
    up.deconv.weight.data.copy_(down.conv.weight.data)
    x = torch.randn(1, 4, 10, 14)
    y = torch.randn(1, 4, 5, 7)
    conv_x = down.conv(torch.nn.functional.pad(x, (0, 1, 0, 1)))
    deconv_y = up.deconv(y)[..., :-1, :-1]
    assert conv_x.shape == y.shape and deconv_y.shape == x.shape
    assert torch.allclose((conv_x * y).sum(), (x * deconv_y).sum(), rtol=1e-4)
    # 'SAME' with stride 2 on an even size pads only bottom/right: output (0, 0) sees rows/cols 0..2
    probe = torch.zeros(1, 4, 10, 14)
    probe[..., 0, 0] = 1.0
    assert down.conv(torch.nn.functional.pad(probe, (0, 1, 0, 1)))[..., 0, 0].abs().sum() > 0
    probe_last = torch.zeros(1, 4, 10, 14)
    probe_last[..., 9, 13] = 1.0
    response = down.conv(torch.nn.functional.pad(probe_last, (0, 1, 0, 1)))
    assert response[..., 4, 6].abs().sum() > 0 and response[..., :4, :].abs().sum() == 0


def test_zero_state_lstm_uses_only_the_input_half_of_its_kernel():
    cell = mspfn.ZeroStateConvLSTM(3, 5)
    x = torch.randn(1, 3, 6, 6)
    before = cell(x)
    with torch.no_grad():
        cell.weight[:, 3:] = torch.randn_like(cell.weight[:, 3:])  # hidden-state half: multiplies zeros
    assert torch.equal(before, cell(x))
    state = torch.zeros(1, 5, 6, 6)
    full = torch.nn.functional.conv2d(torch.cat([x, state], 1), cell.weight, cell.bias, padding=1)
    i, j, _, o = full.chunk(4, dim=1)
    assert torch.allclose(before, torch.tanh(torch.sigmoid(i) * torch.tanh(j)) * torch.sigmoid(o), atol=1e-6)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = mspfn.build('realtime').train()
    image = torch.rand(1, 3, 32, 32)
    model.forward_train(image)['derained'].square().mean().backward()
    slopes = {f'{name}.weight' for name, module in model.named_modules()
              if isinstance(module, torch.nn.PReLU)}
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if name not in slopes:  # a PReLU slope only learns from negative inputs, which a tiny input may lack
            assert param.grad.abs().sum() > 0, name


def test_unknown_configuration_or_option_is_a_config_error():
    with pytest.raises(ConfigError):
        mspfn.build('m17n3')
    with pytest.raises(ConfigError):
        mspfn.build('paper', blocks=3)
