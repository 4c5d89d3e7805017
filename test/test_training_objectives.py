"""Each network's objective: two optimiser steps lower the loss on a fixed batch; patch datasets are
deterministic and aligned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nitedr_ros.data.layouts import open_dataset
from nitedr_ros.networks import build_network
from nitedr_ros.training.datasets import PatchDataset, PatchSettings, batch_indices, collate
from nitedr_ros.training.objectives import build_objective, recipe
from roadscene_data import make_roadscene, make_visible_infrared


def _batch(kind: str, tmp_path: Path, negatives: int = 0, patch: int = 16) -> dict[str, torch.Tensor]:
    data = open_dataset(make_roadscene(tmp_path, size=(40, 56)))
    patches = PatchDataset([data], kind, PatchSettings(patch=patch, seed=1, negatives=negatives,
                                                       synthetic=0.5 if kind == 'derain' else 0.0))
    return collate([patches[i] for i in batch_indices(0, 2)])


def _two_steps_lower_the_loss(name: str, batch: dict[str, torch.Tensor], **settings) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    # from a random output layer: at the identity start the first Adam steps (sign-like, size lr) may
    # overshoot on one batch; identity_init is tested separately below
    r = recipe(name, {'lr': 1e-3, 'identity_init': 0, **settings})
    objective = build_objective(name, build_network(name, 'realtime'), r)
    objective.train()
    optimizer = torch.optim.Adam(objective.parameter_groups(), lr=r['lr'])
    with torch.no_grad():
        before = float(objective(batch)['total'])
    for _ in range(2):
        optimizer.zero_grad()
        objective(batch)['total'].backward()
        optimizer.step()
        objective.after_step()
    with torch.no_grad():
        after = float(objective(batch)['total'])
    assert np.isfinite(before) and after < before


def test_cleannet_objective_learns(tmp_path):
    _two_steps_lower_the_loss('cleannet', _batch('derain', tmp_path))


def test_mspfn_objective_learns(tmp_path):
    _two_steps_lower_the_loss('mspfn', _batch('derain', tmp_path))


def test_fusion_objective_learns(tmp_path):
    _two_steps_lower_the_loss('fusionnet', _batch('fusion', tmp_path))


def test_stereo_objective_learns(tmp_path):
    _two_steps_lower_the_loss('stereoirr', _batch('stereo', tmp_path))


@pytest.mark.slow
def test_rainmer_objective_learns_with_contrastive_term(tmp_path):
    batch = _batch('derain', tmp_path, negatives=2)
    assert batch['neg_chromatic'].shape == (2, 2, 3, 16, 16)
    _two_steps_lower_the_loss('rainmer', batch, negatives=2)


def test_rainmer_positive_is_the_input_by_default(tmp_path):
    torch.manual_seed(0)
    batch = _batch('derain', tmp_path, negatives=2)
    assert recipe('rainmer')['positive'] == 'input'
    objective = build_objective('rainmer', build_network('rainmer', 'realtime'), recipe('rainmer'))
    seen = []
    original = objective.keys.key_prompts

    def spy(images):
        seen.append(images)
        return original(images)

    objective.keys.key_prompts = spy
    objective(batch)
    assert torch.equal(seen[0], batch['rainy'])             # the first key batch is the positive
    target = build_objective('rainmer', build_network('rainmer', 'realtime'),
                             recipe('rainmer', {'positive': 'target'}))
    seen.clear()
    original = target.keys.key_prompts
    target.keys.key_prompts = spy
    target(batch)
    assert torch.equal(seen[0], batch['clean'])
    with pytest.raises(Exception, match='positive'):
        build_objective('rainmer', build_network('rainmer', 'realtime'), recipe('rainmer', {'positive': 'x'}))


def test_rainmer_objective_keeps_the_key_encoder_state(tmp_path):
    r = recipe('rainmer')
    objective = build_objective('rainmer', build_network('rainmer', 'realtime'), r)
    keys = objective.state_dict().keys()
    assert any(k.startswith('encoder_k.') for k in keys)
    assert not any(k.startswith('keys.') for k in keys)
    trainable = {id(p) for p in objective.parameters() if p.requires_grad}
    assert not any(id(p) in trainable for p in objective.encoder_k.parameters())


def test_fusion_objective_freezes_the_stage1_network(tmp_path):
    cleannet = build_network('cleannet', 'realtime')
    objective = build_objective('fusionnet', build_network('fusionnet', 'realtime'), recipe('fusionnet'),
                                cleannet=cleannet)
    objective.train()
    assert not cleannet.training
    grouped = {id(p) for g in objective.parameter_groups() for p in g['params']}
    assert not any(id(p) in grouped for p in cleannet.parameters())


def test_recipe_overrides_are_checked():
    assert recipe('mspfn', {'edge_weight': '0.1'})['edge_weight'] == 0.1
    with pytest.raises(Exception, match='unknown mspfn training setting'):
        recipe('mspfn', {'edge_wieght': 0.1})


# ------------------------------------------------------------------ patch datasets

def test_patches_are_deterministic_per_index(tmp_path):
    data = open_dataset(make_roadscene(tmp_path, size=(40, 56)))
    settings = PatchSettings(patch=16, seed=3, synthetic=0.5)
    first, second = PatchDataset([data], 'derain', settings), PatchDataset([data], 'derain', settings)
    for i in (0, 5, 11):
        for key in ('rainy', 'clean'):
            assert torch.equal(first[i][key], second[i][key])
    assert not torch.equal(first[0]['rainy'], first[1]['rainy'])
    other = PatchDataset([data], 'derain', PatchSettings(patch=16, seed=4, synthetic=0.5))
    assert not torch.equal(first[0]['rainy'], other[0]['rainy'])
    assert batch_indices(3, 4, rank=1, world=2) == [28, 29, 30, 31]


def test_fusion_patches_are_aligned(tmp_path):
    data = open_dataset(make_roadscene(tmp_path, size=(40, 56)))
    patches = PatchDataset([data], 'fusion', PatchSettings(patch=40, seed=0, augment=False))
    item = patches[0]
    assert item['infrared'].shape == (1, 40, 40) and item['rainy'].shape == (3, 40, 40)
    # the patch is a crop of one sample: find where, and check the IR patch comes from the same place
    found = [(data.load(i), _locate(item['clean'], data.load(i)['clean'])) for i in range(len(data))]
    images, (top, left) = next((im, at) for im, at in found if at is not None)
    ir = torch.from_numpy(images['infrared'][top:top + 40, left:left + 40].astype(np.float32) / 255)
    assert torch.allclose(item['infrared'][0], ir)


def test_fusion_patches_from_a_rain_free_visible_infrared_set(tmp_path):
    data = open_dataset(make_visible_infrared(tmp_path / 'msrs'))
    assert data.layout == 'vi_ir' and 'rainy' not in data.roles
    patches = PatchDataset([data], 'fusion', PatchSettings(patch=16, seed=0))
    item = patches[3]
    assert set(item) == {'rainy', 'clean', 'infrared'}
    assert torch.equal(item['rainy'], item['clean'])       # the clean visible image is the fusion input
    mixed = PatchDataset([data, open_dataset(make_roadscene(tmp_path / 'rs'))], 'fusion',
                         PatchSettings(patch=16, seed=0))
    batch = collate([mixed[i] for i in range(6)])           # sets with and without rain batch together
    assert batch['rainy'].shape == (6, 3, 16, 16)


def _locate(patch: torch.Tensor, image: np.ndarray):
    p = (patch.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    size = p.shape[0]
    for top in range(image.shape[0] - size + 1):
        for left in range(image.shape[1] - size + 1):
            if np.array_equal(image[top:top + size, left:left + size], p):
                return top, left
    return None


def test_stereo_patches_carry_a_consistent_pair(tmp_path):
    data = open_dataset(make_roadscene(tmp_path, size=(40, 56)))
    patches = PatchDataset([data], 'stereo', PatchSettings(patch=32, seed=0, augment=False))
    item = patches[2]
    assert set(item) >= {'rainy', 'clean', 'rainy_right', 'clean_right', 'disparity', 'has_disparity'}
    assert float(item['has_disparity']) == 1.0
    disparity = item['disparity'][:, None] if item['disparity'].dim() == 3 else item['disparity']
    from nitedr_ros.training.losses import shift_right_to_left

    warped, valid = shift_right_to_left(item['clean_right'][None], disparity[:1].view(1, 1, 32, 32))
    inside = valid[0, 0] > 0
    inside[:, -4:] = False  # the synthesised right view replicates the last column there
    error = (warped[0] - item['clean'])[:, inside].abs().mean()
    assert float(error) < 0.02


def test_negatives_for_rainmer(tmp_path):
    data = open_dataset(make_roadscene(tmp_path, size=(40, 56)))
    item = PatchDataset([data], 'derain', PatchSettings(patch=16, seed=0, negatives=3))[0]
    assert item['neg_chromatic'].shape == (3, 3, 16, 16) and item['neg_degradation'].shape == (3, 3, 16, 16)
    assert not torch.equal(item['neg_chromatic'][0], item['rainy'])


@pytest.mark.parametrize('name', ['cleannet', 'mspfn', 'stereoirr'])
def test_identity_init_starts_from_the_input(name):
    objective = build_objective(name, build_network(name, 'realtime'), recipe(name))
    objective.eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        if name == 'stereoirr':
            out = objective.predict({'rainy': x, 'rainy_right': x.flip(-1)})
            assert torch.allclose(out['left'], x, atol=1e-6)
            assert torch.allclose(out['right'], x.flip(-1), atol=1e-6)
        else:
            assert torch.allclose(objective.predict({'rainy': x})['derained'], x, atol=1e-6)
    plain = build_objective(name, build_network(name, 'realtime'), recipe(name, {'identity_init': 0}))
    with torch.no_grad():
        if name != 'stereoirr':
            assert not torch.allclose(plain.predict({'rainy': x})['derained'], x, atol=1e-3)


def test_configuration_specific_recipe():
    assert recipe('fusionnet', config='realtime')['lr'] == 1e-3
    assert recipe('fusionnet', config='paper')['lr'] == 1e-4
    assert recipe('fusionnet', {'lr': 5e-4}, config='realtime')['lr'] == 5e-4


def test_fusion_objective_anchors_the_refined_output(tmp_path):
    batch = _batch('fusion', tmp_path)
    torch.manual_seed(0)
    objective = build_objective('fusionnet', build_network('fusionnet', 'realtime'), recipe('fusionnet'))
    terms = objective(batch)
    assert {'refined', 'refined_chroma', 'refine_fidelity', 'refine_smooth', 'fusion_gradient'} <= set(terms)
    plain = build_objective('fusionnet', build_network('fusionnet', 'realtime'),
                            recipe('fusionnet', {'refined_weight': 0, 'chroma_weight': 0}))
    assert not {'refined', 'refined_chroma'} & set(plain(batch))
