"""Training-speed benchmark: seconds per optimiser step of each network's objective (synthetic batches).

``python -m nitedr_ros.training.speed --out benchmarks/results/train_speed.json [--networks ...]
[--batch 4] [--patch 64] [--threads 2] [--steps 5]`` times full steps (forward, the paper losses, backward,
optimiser) on random tensors of the right shapes, after one warm-up step, and writes JSON and markdown with
the machine facts and the load average (numbers from a busy machine are inflated; re-run on a quiet one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from ..machine import machine_info
from ..networks import build_network
from .objectives import RECIPES, build_objective, recipe


def synthetic_batch(kind: str, batch: int, patch: int, negatives: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors shaped like a :class:`~.datasets.PatchDataset` batch of ``kind``."""
    g = torch.Generator().manual_seed(0)

    def rgb() -> torch.Tensor:
        return torch.rand(batch, 3, patch, patch, generator=g)

    items = {'rainy': rgb(), 'clean': rgb()}
    if kind == 'fusion':
        items['infrared'] = torch.rand(batch, 1, patch, patch, generator=g)
    if kind == 'stereo':
        items.update(rainy_right=rgb(), clean_right=rgb(), has_disparity=torch.ones(batch),
                     disparity=torch.full((batch, 1, patch, patch), 2.0))
    if negatives:
        items['neg_chromatic'] = torch.rand(batch, negatives, 3, patch, patch, generator=g)
        items['neg_degradation'] = torch.rand(batch, negatives, 3, patch, patch, generator=g)
    return items


def time_network(network: str, config: str = 'realtime', batch: int = 4, patch: int = 64,
                 steps: int = 5) -> dict[str, Any]:
    """Median seconds per full training step of ``network`` (one warm-up step first)."""
    torch.manual_seed(0)
    r = recipe(network, config=config)
    objective = build_objective(network, build_network(network, config), r)
    objective.train()
    optimizer = torch.optim.AdamW(objective.parameter_groups(), lr=r['lr'])
    data = synthetic_batch(r['kind'], batch, patch, int(r.get('negatives', 0)))
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        terms = objective(data)
        optimizer.zero_grad()
        terms['total'].backward()
        optimizer.step()
        objective.after_step()
        if i:
            times.append(time.perf_counter() - start)
    return {'network': network, 'config': config, 'batch': batch, 'patch': patch,
            's_per_step_median': statistics.median(times), 's_per_step_min': min(times),
            'params': sum(p.numel() for p in objective.network.parameters())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='benchmarks/results/train_speed.json')
    parser.add_argument('--networks', nargs='+', default=list(RECIPES))
    parser.add_argument('--config', default='realtime')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--patch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = [time_network(n, args.config, args.batch, args.patch, args.steps) for n in args.networks]
    result = {'rows': rows, 'threads': args.threads, 'torch': torch.__version__, 'machine': machine_info(),
              'load_average_before': load_before, 'load_average_after': os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + '\n')
    lines = ['| network | config | batch | patch | params | s/step (median) | s/step (min) |',
             '|---|---|---|---|---|---|---|']
    lines += [f'| {r["network"]} | {r["config"]} | {r["batch"]} | {r["patch"]} | {r["params"]:,} | '
              f'{r["s_per_step_median"]:.3f} | {r["s_per_step_min"]:.3f} |' for r in rows]
    lines.append(f'\n{args.threads} torch threads; load average before {load_before}, '
                 f'after {os.getloadavg()}')
    out.with_suffix('.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
