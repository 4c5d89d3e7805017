"""The training loop: files written, validation and best checkpoint, exact resume, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nitedr_ros.cli import main as cli_main
from nitedr_ros.errors import ConfigError, OutputExistsError
from nitedr_ros.networks.checkpoint import load_checkpoint, read_checkpoint
from nitedr_ros.training.trainer import TrainOptions, train
from roadscene_data import make_roadscene, make_visible_infrared


def _options(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(network='cleannet', data=[str(data)], out=str(out), steps=4, batch=2, patch=16, seed=0,
                val_every=2, val_images=1, checkpoint_every=2, log_every=1, threads=1, progress=False,
                val_fraction=0.25)
    base.update(kw)
    return TrainOptions(**base)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline='') as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_training_writes_logs_curve_checkpoints_and_split(tmp_path):
    data = make_roadscene(tmp_path / 'data', count=4)
    result = train(_options(data, tmp_path / 'run'))
    run = tmp_path / 'run'
    for name in ('options.json', 'split.json', 'log.csv', 'val.csv', 'loss.png', 'summary.json',
                 'checkpoints/last.pt', 'checkpoints/best.pt'):
        assert (run / name).is_file(), name
    rows = _rows(run / 'log.csv')
    assert [int(r['step']) for r in rows] == [1, 2, 3, 4]
    assert {'lr', 's_per_step', 'pixel', 'ssim', 'total'} <= set(rows[0])
    val = _rows(run / 'val.csv')
    assert [int(r['step']) for r in val] == [2, 4] and float(val[0]['input_psnr_y']) > 0
    split = json.loads((run / 'split.json').read_text())
    assert len(next(iter(split.values()))['val']) == 1
    assert result.step == 4 and result.metric_name == 'val_psnr_y' and result.best_metric is not None
    model, payload = load_checkpoint(run / 'checkpoints/last.pt')
    assert payload['network'] == 'cleannet' and payload['meta']['steps'] == 4
    assert model.clamp_output  # rebuilt for inference: the output clamp is back
    with pytest.raises(OutputExistsError):
        train(_options(data, run))


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    data = make_roadscene(tmp_path / 'data', count=4)
    straight = train(_options(data, tmp_path / 'straight', val_every=0))
    train(_options(data, tmp_path / 'resumed', val_every=0, stop_at=2))
    halfway = read_checkpoint(tmp_path / 'resumed/checkpoints/last.pt')
    assert halfway['training_state']['step'] == 2
    resumed = train(_options(data, tmp_path / 'resumed', val_every=0,
                             resume=str(tmp_path / 'resumed/checkpoints/last.pt')))
    a = read_checkpoint(straight.last_checkpoint)
    b = read_checkpoint(resumed.last_checkpoint)
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    losses_a = [r['total'] for r in _rows(tmp_path / 'straight/log.csv')]
    losses_b = [r['total'] for r in _rows(tmp_path / 'resumed/log.csv')]
    assert losses_a == losses_b and len(losses_a) == 4


def test_resume_refuses_a_checkpoint_of_another_network(tmp_path):
    data = make_roadscene(tmp_path / 'data', count=4)
    train(_options(data, tmp_path / 'run', steps=1, val_every=0))
    with pytest.raises(ConfigError, match='cleannet/realtime, not mspfn/realtime'):
        train(_options(data, tmp_path / 'other', network='mspfn', val_every=0,
                       resume=str(tmp_path / 'run/checkpoints/last.pt')))


def test_fusion_training_on_a_frozen_cleannet(tmp_path):
    data = make_roadscene(tmp_path / 'data', count=4)
    stage1 = train(_options(data, tmp_path / 'stage1', steps=1, val_every=0))
    result = train(_options(data, tmp_path / 'stage2', network='fusionnet', steps=2,
                            cleannet=str(stage1.last_checkpoint), settings={'stages': 2}))
    assert result.metric_name == 'val_loss' and result.best_metric is not None
    assert read_checkpoint(result.last_checkpoint)['meta']['cleannet'].endswith('last.pt')


def test_fusion_training_on_rain_free_visible_infrared_data(tmp_path):
    data = make_visible_infrared(tmp_path / 'msrs')
    result = train(_options(data, tmp_path / 'fusion', network='fusionnet', steps=2,
                            settings={'stages': 1}))
    assert result.metric_name == 'val_loss' and np.isfinite(result.best_metric)
    assert np.isfinite(result.last_losses['total'])


def test_stereo_and_mspfn_training_runs(tmp_path):
    data = make_roadscene(tmp_path / 'data', count=4)
    stereo = train(_options(data, tmp_path / 'stereo', network='stereoirr', steps=2, val_patch=16))
    assert np.isfinite(stereo.last_losses['total']) and 'consistency' in stereo.last_losses
    mspfn = train(_options(data, tmp_path / 'mspfn', network='mspfn', steps=2, val_every=0))
    assert set(mspfn.last_losses) == {'charbonnier', 'edge', 'total'}


def test_cli_train_verb(tmp_path, capsys):
    data = make_roadscene(tmp_path / 'data', count=4)
    code = cli_main(['train', '--network', 'cleannet', '--data', str(data), '--steps', '2', '--batch', '1',
                     '--patch', '16', '--out', str(tmp_path / 'run'), '--val-every', '0', '--threads', '1',
                     '--no-progress', '--set', 'ssim_weight=0', '--lr', '1e-3'])
    assert code == 0
    assert 'trained cleannet/realtime to step 2' in capsys.readouterr().out
    options = json.loads((tmp_path / 'run/options.json').read_text())
    assert options['recipe']['ssim_weight'] == 0 and options['recipe']['lr'] == 1e-3
    assert cli_main(['train', '--network', 'cleannet', '--data', str(tmp_path / 'missing'), '--out',
                     str(tmp_path / 'x')]) == 2


def test_a_mix_training_records_the_mix_and_its_weights_in_the_checkpoint(tmp_path, shared_data):
    options = _options(tmp_path, tmp_path / 'run', mix=str(shared_data), mix_weights={'roadscene': 0.5},
                       steps=1, batch=1, val_every=0)
    options.data = []
    train(options)
    meta = read_checkpoint(tmp_path / 'run' / 'checkpoints' / 'last.pt')['meta']
    assert meta['layout'] == 'mix'
    assert meta['data'] == ['the rain mix of $NITEDR_DATA (roadscene 0.5, shared_pairs 0.2, rendered 0.3, '
                            'rendered_night 0.3)']
