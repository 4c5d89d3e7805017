"""Rainmer: parameter counts vs the published code, shapes, FLOP budget, prompt API, momentum key encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from network_budget import check_realtime_budget
from nitedr_ros.errors import ConfigError
from nitedr_ros.modelspec import get_spec
from nitedr_ros.networks import build_network, rainmer
from nitedr_ros.networks.complexity import count_params

PUBLISHED_INFERENCE_PARAMS = 35_825_344
PUBLISHED_WITH_KEY_ENCODER = 36_766_880
# state_dict groups of the published Rainmer that differ from CleanNet (seed-models note, section 3)
PUBLISHED_GROUPS = {
    'encoder_q': 941_536, 'cross_fuse': 46_272, 'decoder_level3': 4_431_708, 'decoder_level2': 1_296_960,
    'decoder_level1': 864_636, 'encoder_level0': 230_816, 'latent': 18_470_816, 'refinement': 814_304,
}
PUBLISHED_QUERY_ENCODER = {'conv': 1_344, 'moe': 230_816, 'atoms.chromatic_enc': 354_688,
                           'atoms.degra_enc': 354_688}


@pytest.fixture(scope='module')
def paper_model() -> rainmer.Rainmer:
    torch.manual_seed(0)
    return build_network('rainmer', 'paper')


def test_paper_parameter_counts_match_published(paper_model):
    n = count_params(paper_model)
    with_keys = count_params(rainmer.RainmerMomentumKeys(paper_model))
    print(f'Rainmer paper parameters: inference {n:,} (published {PUBLISHED_INFERENCE_PARAMS:,}), '
          f'with key encoder {with_keys:,} (published {PUBLISHED_WITH_KEY_ENCODER:,})')
    assert get_spec('rainmer').published_params == PUBLISHED_INFERENCE_PARAMS
    assert abs(n - PUBLISHED_INFERENCE_PARAMS) <= 0.01 * PUBLISHED_INFERENCE_PARAMS
    assert abs(with_keys - PUBLISHED_WITH_KEY_ENCODER) <= 0.01 * PUBLISHED_WITH_KEY_ENCODER
    groups: dict[str, int] = {}
    for name, p in paper_model.named_parameters():
        groups[name.split('.')[0]] = groups.get(name.split('.')[0], 0) + p.numel()
    assert {k: groups[k] for k in PUBLISHED_GROUPS} == PUBLISHED_GROUPS
    for part, expected in PUBLISHED_QUERY_ENCODER.items():
        module = paper_model.encoder_q.get_submodule(part)
        assert count_params(module) == expected, part
    assert not any('encoder_k' in k for k in paper_model.state_dict())


def test_paper_forward_small(paper_model):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = paper_model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1
    assert paper_model.query_image(x).shape == (1, 3, 128, 128)


@pytest.mark.parametrize('hw', [(32, 48), (48, 24)])
def test_realtime_forward_shape_and_range(hw):
    torch.manual_seed(0)
    model = build_network('rainmer', 'realtime')
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


def test_realtime_flops_within_budget(paper_model):
    check_realtime_budget('rainmer', paper_model, build_network('rainmer', 'realtime'))


def test_query_prompts_are_unit_vectors_from_the_resized_image():
    torch.manual_seed(0)
    model = build_network('rainmer', 'realtime')
    prompt_dim = rainmer.CONFIGS['realtime']['prompt_dim']
    images = torch.rand(3, 3, 40, 56)
    with torch.no_grad():
        prompts = model.query_prompts(images)
        size = rainmer.CONFIGS['realtime']['query_size']
        resized = F.interpolate(images, size=(size, size), mode='bilinear', align_corners=False)
        direct = model.encoder_q(resized)
    assert isinstance(prompts, rainmer.RainPrompts)
    for vector in prompts:
        assert vector.shape == (3, prompt_dim)
        torch.testing.assert_close(vector.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(prompts.chromatic, direct.chromatic)
    # the forward pass uses exactly these prompts (one image input; the query copy is made inside)
    seen = []
    handle = model.encoder_q.register_forward_hook(lambda mod, args, out: seen.append(out))
    with torch.no_grad():
        model(images)
    handle.remove()
    torch.testing.assert_close(seen[0].degradation, prompts.degradation)


def test_prompts_change_the_output():
    torch.manual_seed(0)
    model = build_network('rainmer', 'realtime')
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        base = model(x)
        block = model.decoder_level2[0].attn
        block.chr_prompt.trans.weight.mul_(10.0)
        block.degra_prompt.trans.weight.mul_(10.0)
        changed = model(x)
    assert (base - changed).abs().max() > 1e-5


def test_training_step_with_contrastive_prompts_and_momentum_keys():
    torch.manual_seed(0)
    model = build_network('rainmer', 'realtime').train()
    model.clamp_output = False
    pair = rainmer.RainmerMomentumKeys(model, momentum=0.999)
    assert all(not p.requires_grad for p in pair.encoder_k.parameters())
    for pk, pq in zip(pair.encoder_k.parameters(), model.encoder_q.parameters()):
        assert torch.equal(pk, pq)
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(2, 3, 32, 32, generator=gen)
    rainy = (target + 0.3 * (torch.rand(2, 3, 32, 32, generator=gen) > 0.9).float()).clamp(0, 1)

    query = pair.query_prompts(rainy)
    keys = pair.key_prompts(rainy)
    assert not keys.chromatic.requires_grad and query.chromatic.requires_grad
    # a MoCo-style term: each image's key is its positive, the other image's key the negative
    logits = query.degradation @ keys.degradation.T
    contrastive = F.cross_entropy(logits, torch.arange(2))
    loss = F.l1_loss(pair(rainy), target) + 0.1 * contrastive
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for part in ('encoder_q.atoms.degra_enc', 'cross_fuse', 'decoder_level2.0.attn.degra_prompt'):
        assert any(p.grad.abs().sum() > 0 for p in model.get_submodule(part).parameters()), part

    torch.optim.SGD(model.parameters(), lr=0.5).step()
    before = [p.clone() for p in pair.encoder_k.parameters()]
    pair.momentum_update()
    for old, new, q in zip(before, pair.encoder_k.parameters(), model.encoder_q.parameters()):
        torch.testing.assert_close(new, 0.999 * old + 0.001 * q)
    assert any(not torch.equal(o, n) for o, n in zip(before, pair.encoder_k.parameters()))


def test_build_rejects_unknown_config_and_override():
    with pytest.raises(ConfigError, match='configuration'):
        rainmer.build('tiny')
    with pytest.raises(ConfigError, match='decoder_block'):
        rainmer.build('realtime', decoder_block=None)
    assert set(rainmer.CONFIGS) == {'paper', 'realtime'}
