"""DistributedDataParallel on the CPU: two Gloo processes train like one process at twice the batch.

FusionNet is left out: its BatchNorm statistics are per rank, so its replicas legitimately differ from a
single process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from nitedr_ros.networks.checkpoint import read_checkpoint
from nitedr_ros.training.trainer import Trainer, TrainOptions
from roadscene_data import make_roadscene

STEPS = 2
BATCH_PER_RANK = 1
WORLD = 2


class _KeepObjective(Trainer):
    """A trainer that keeps its objective, so every rank's weights can be read after the run."""

    def _build(self):
        self.objective = super()._build()
        return self.objective


def _options(data: Path, out: Path, batch: int) -> TrainOptions:
    return TrainOptions(network='cleannet', data=[str(data)], out=str(out), steps=STEPS, batch=batch,
                        patch=16, seed=3, val_fraction=0.0, val_every=0, checkpoint_every=STEPS, log_every=1,
                        threads=1, progress=False)


def _rank(rank: int, port: int, data: str, out: str, results: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = _KeepObjective(_options(Path(data), Path(out), BATCH_PER_RANK))
    trainer.run()
    torch.save(trainer.objective.network.state_dict(), Path(results) / f'rank{rank}.pt')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_train_like_one_process_at_twice_the_batch(tmp_path, monkeypatch):
    data = make_roadscene(tmp_path / 'data', count=4, seed=2)
    results = tmp_path / 'results'
    results.mkdir()
    mp.spawn(_rank, args=(_free_port(), str(data), str(tmp_path / 'ddp'), str(results)), nprocs=WORLD,
             join=True)
    ranks = [torch.load(results / f'rank{r}.pt') for r in range(WORLD)]
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), f'ranks differ in {name}'

    for key in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    torch.set_num_threads(1)
    single = _KeepObjective(_options(data, tmp_path / 'single', WORLD * BATCH_PER_RANK))
    single.run()
    weights = single.objective.network.state_dict()
    initial = _KeepObjective(_options(data, tmp_path / 'init', 1))._build().network.state_dict()
    moved = 0
    for name, value in weights.items():
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-4, atol=1e-6, msg=f'DDP vs single: {name}')
        moved += int(not torch.equal(value, initial[name]))
    assert moved > 0  # training changed the weights, so the match means something
    # rank 0 alone wrote the run folder; its checkpoint records the global batch
    assert read_checkpoint(tmp_path / 'ddp/checkpoints/last.pt')['meta']['batch'] == WORLD * BATCH_PER_RANK
