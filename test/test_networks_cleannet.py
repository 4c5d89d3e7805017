"""CleanNet and the shared blocks: parameter counts vs the published code, shapes, FLOPs, TSSA, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from network_budget import check_realtime_budget
from nitedr_ros.errors import ConfigError
from nitedr_ros.modelspec import get_spec
from nitedr_ros.networks import build_network, cleannet
from nitedr_ros.networks.blocks import (
    MixedScaleFeedForward,
    TopSelectionAttention,
    top_selection_counts,
    top_selection_softmax,
)
from nitedr_ros.networks.complexity import count_params

PUBLISHED_PARAMS = 33_655_424
# state_dict groups of the published CleanNet (seed-models note, section 1)
PUBLISHED_GROUPS = {
    'patch_embed': 1_296, 'encoder_level0': 230_816, 'encoder_level1': 209_460, 'down1_2': 10_368,
    'encoder_level2': 1_034_676, 'down2_3': 41_472, 'encoder_level3': 3_686_736, 'down3_4': 165_888,
    'latent': 18_470_816, 'up4_3': 2_654_208, 'reduce_chan_level3': 73_728, 'decoder_level3': 3_686_736,
    'up3_2': 663_552, 'reduce_chan_level2': 18_432, 'decoder_level2': 1_034_676, 'up2_1': 165_888,
    'decoder_level1': 689_780, 'refinement': 814_304, 'output': 2_592,
}


@pytest.fixture(scope='module')
def paper_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network('cleannet', 'paper')


def group_counts(model: torch.nn.Module) -> dict[str, int]:
    groups: dict[str, int] = {}
    for name, p in model.named_parameters():
        top = name.split('.')[0]
        groups[top] = groups.get(top, 0) + p.numel()
    return groups


def test_paper_parameter_count_matches_published(paper_model):
    n = count_params(paper_model)
    print(f'CleanNet paper parameters: {n:,} (published {PUBLISHED_PARAMS:,})')
    assert get_spec('cleannet').published_params == PUBLISHED_PARAMS
    assert abs(n - PUBLISHED_PARAMS) <= 0.01 * PUBLISHED_PARAMS
    assert group_counts(paper_model) == PUBLISHED_GROUPS


def test_paper_key_shapes_match_published_layout(paper_model):
    shapes = {k: tuple(v.shape) for k, v in paper_model.state_dict().items()}
    assert shapes['patch_embed.proj.weight'] == (48, 3, 3, 3)
    assert shapes['latent.0.attn.temperature'] == (8, 1, 1)
    assert shapes['latent.0.attn.qkv.weight'] == (1152, 384, 1, 1)
    assert shapes['latent.0.attn.qkv_dwconv.weight'] == (1152, 1, 3, 3)
    assert shapes['latent.0.ffn.project_in.weight'] == (2042, 384, 1, 1)
    assert shapes['latent.0.ffn.dwconv5x5.weight'] == (2042, 1, 5, 5)
    assert shapes['latent.0.ffn.mix3x3.weight'] == (1021, 2, 3, 3)
    assert shapes['latent.0.ffn.mix5x5.weight'] == (1021, 2, 5, 5)
    assert shapes['encoder_level0.gate.fc.0.weight'] == (64, 48)
    assert shapes['encoder_level0.gate.fc.2.weight'] == (32, 64)
    assert shapes['encoder_level0.steps.0.fuse.weight'] == (48, 384, 1, 1)


def test_paper_forward_small(paper_model):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = paper_model(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize('hw', [(32, 48), (40, 24)])
def test_realtime_forward_shape_and_range(hw):
    torch.manual_seed(0)
    model = build_network('cleannet', 'realtime')
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    model.clamp_output = False
    with torch.no_grad():
        raw = model(x)
    torch.testing.assert_close(raw.clamp(0, 1), y)


def test_realtime_flops_within_budget(paper_model):
    check_realtime_budget('cleannet', paper_model, build_network('cleannet', 'realtime'))


def _branch_by_branch(attn: TopSelectionAttention, x: torch.Tensor, cumulative: bool = False) -> torch.Tensor:
    """TSSA written out: four top-k masks built with scatter, each its own softmax and product with v."""
    b, c, h, w = x.shape
    q, k, v = attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1)
    q, k, v = (t.reshape(b, attn.heads, c // attn.heads, h * w) for t in (q, k, v))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    logits = q @ k.transpose(-2, -1) * attn.temperature
    out = torch.zeros_like(v)
    for weight, keep in zip(attn.branch_weights, attn.keep_counts):
        index = logits.topk(keep, dim=-1).indices
        mask = torch.zeros_like(logits).scatter_(-1, index, 1.0).bool()
        probs = torch.softmax(logits.masked_fill(~mask, float('-inf')), dim=-1)
        out = out + weight * (probs @ v)
        if cumulative:  # the published Rainmer form: later branches start from the previous softmax
            logits = probs
    return attn.project_out(out.reshape(b, c, h, w))


def test_tssa_branches_all_come_from_the_same_logits():
    torch.manual_seed(3)
    attn = TopSelectionAttention(30, 2)
    with torch.no_grad():
        attn.temperature.uniform_(0.5, 4.0)
        attn.branch_weights.uniform_(-1.0, 1.0)
    assert attn.keep_counts == top_selection_counts(15) == (7, 10, 11, 12)
    x = torch.randn(2, 30, 8, 12)
    with torch.no_grad():
        got = attn(x)
        reference = _branch_by_branch(attn, x)
        cumulative = _branch_by_branch(attn, x, cumulative=True)
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
    assert (got - cumulative).abs().max() > 1e-3


def test_top_selection_does_not_depend_on_tie_order():
    # 10 entries per row: keep counts 5, 6, 7, 8; many exact ties (zeros) at the thresholds
    logits = torch.tensor([[[3.0, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 2.0, 0.0],
                            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                            [1.0, 1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0, 0.5]]])
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1])
    counts = top_selection_counts(10)
    out = top_selection_softmax(logits, counts, weights)
    for seed in range(5):
        perm = torch.randperm(10, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(top_selection_softmax(logits[..., perm], counts, weights), out[..., perm])
    # every entry tied with a k-th value is kept: row 0 keeps 3, 2, 1 and all six zeros in every branch
    expected_row0 = torch.softmax(logits[0, 0].masked_fill(logits[0, 0] < 0, float('-inf')), dim=-1)
    torch.testing.assert_close(out[0, 0], expected_row0 * weights.sum())
    torch.testing.assert_close(out[0, 1], torch.full((10,), 0.1) * weights.sum())


def test_mixed_scale_ffn_mixes_both_scales():
    torch.manual_seed(0)
    ffn = MixedScaleFeedForward(8, 2.0)
    # each group of the grouped 3x3 conv sees one 3x3 and one 5x5 channel: zeroing the 5x5 branch
    # (only its weights) changes the output of the 3x3 mixing path too
    x = torch.randn(1, 8, 12, 12)
    with torch.no_grad():
        base = ffn(x)
        ffn.dwconv5x5.weight.zero_()
        ffn.mix5x5.weight.zero_()
        changed = ffn(x)
    assert (base - changed).abs().max() > 1e-4
    assert ffn.mix3x3.weight.shape == (16, 2, 3, 3)


def test_training_step_reaches_every_parameter_and_lowers_the_loss():
    torch.manual_seed(0)
    model = build_network('cleannet', 'realtime').train()
    model.clamp_output = False
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(2, 3, 32, 32, generator=gen)
    rainy = (target + 0.3 * (torch.rand(2, 3, 32, 32, generator=gen) > 0.9).float()).clamp(0, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(6):
        optimiser.zero_grad()
        loss = F.l1_loss(model(rainy), target)
        loss.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters()
                       if p.grad is None or not torch.isfinite(p.grad).all()]
            assert not missing, f'no finite gradient for {missing}'
            zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
            assert not zero, f'zero gradient for {zero}'
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_build_rejects_unknown_config_and_override():
    with pytest.raises(ConfigError, match='configuration'):
        cleannet.build('huge')
    with pytest.raises(ConfigError, match='no_such_option'):
        cleannet.build('realtime', no_such_option=1)
    with pytest.raises(ConfigError, match='divisible'):
        cleannet.build('realtime', heads=(3, 2, 4, 8))
    assert set(cleannet.CONFIGS) == {'paper', 'realtime'}
