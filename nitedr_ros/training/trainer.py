"""The training loop: deterministic patches, the paper losses, AMP, checkpoint/resume, logs, validation, DDP.

Run directory (``out``)::

    options.json        the options of the run (rewritten on resume)
    split.json          the validation split of each dataset (names, seed, fraction)
    log.csv             step, lr, seconds, s/step and every loss term (every ``log_every`` steps)
    val.csv             step and the validation metric(s)
    loss.png            training loss terms and the validation metric
    checkpoints/last.pt latest state (exact resume: weights, optimiser, scheduler, scaler, step, RNG)
    checkpoints/best.pt best validation metric so far (PSNR-Y for deraining; loss for fusion)
    summary.json        what was done and how fast

Exact continuation: training batches depend only on (seed, step) (see :mod:`.datasets`), and the
checkpoint carries every piece of mutable state, so N steps straight and k + (N - k) steps with a resume
in between give the same weights (on the same device and thread count).

Multi-GPU: started by ``torchrun --nproc_per_node G nitedr train ...`` (``WORLD_SIZE`` > 1) the objective
is wrapped in DistributedDataParallel (NCCL on CUDA, Gloo on CPU); every rank draws its own part of each
step's batch, rank 0 validates, logs and checkpoints. Tested on the CPU with two Gloo processes
(``test/test_training_ddp.py``: equal replicas, equal to one process at twice the batch); NCCL on GPUs is
not run here.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.layouts import ImageSet, open_dataset
from ..data.split import DEFAULT_VAL_FRACTION, Split, split_names
from ..errors import ConfigError, OutputExistsError
from ..evaluation.metrics import psnr, rgb_to_y
from ..figures import pyplot, save_figure
from ..fileio import atomic_output, write_text_atomic
from ..machine import machine_info
from ..modelspec import check_config, get_spec
from ..networks import build_network
from ..networks.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from ..paths import portable_path
from .datasets import PatchDataset, PatchSettings, batch_indices, collate
from .objectives import Objective, build_objective, recipe

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """Everything ``nitedr train`` takes (see ``nitedr train --help``)."""

    network: str
    data: list[str]
    out: str
    config: str = 'realtime'
    steps: int = 1000
    batch: int = 4
    patch: int = 64
    seed: int = 0
    device: str = 'cpu'
    amp: bool = False
    resume: str | None = None
    layout: str = 'auto'
    split: str = 'train'
    val_fraction: float = DEFAULT_VAL_FRACTION
    split_seed: int = 0
    val_every: int = 500
    val_images: int = 0             # 0: every validation image
    val_patch: int = 128            # stereo/synthetic validation patch size
    checkpoint_every: int = 500
    log_every: int = 10
    warmup: int = -1                # -1: min(200, steps // 20)
    stop_at: int = 0                # > 0: stop after this step (time-boxed runs; resume later)
    time_budget_s: float = 0.0      # > 0: fit the run (and its LR schedule) into this many seconds
    settings: dict[str, Any] = field(default_factory=dict)           # recipe overrides (lr, weights ...)
    network_overrides: dict[str, Any] = field(default_factory=dict)  # build_network keyword overrides
    cleannet: str | None = None     # fusionnet: frozen stage-1 checkpoint
    init: str | None = None         # start from these weights (fresh optimiser and schedule)
    synthetic_style: str = 'mixed'
    mix: str = ''                   # derain: train on the documented mix of this shared data folder
    mix_weights: dict[str, float] = field(default_factory=dict)  # per-source overrides of MIX_WEIGHTS
    workers: int = 0
    threads: int = 0
    progress: bool = True
    force: bool = False


@dataclass
class TrainResult:
    out: Path
    step: int
    best_metric: float | None
    metric_name: str
    last_checkpoint: Path
    best_checkpoint: Path | None
    seconds: float
    seconds_per_step: float
    last_losses: dict[str, float]


def device_machine_info(device: torch.device) -> dict[str, Any]:
    """The machine record (:func:`nitedr_ros.machine.machine_info`) plus the torch device and threads used."""
    extra: dict[str, Any] = {'device': str(device), 'torch_threads': torch.get_num_threads()}
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        extra['gpu'] = {'name': props.name, 'memory_mb': props.total_memory >> 20,
                        'compute_capability': f'{props.major}.{props.minor}'}
    return machine_info(extra, cuda=False)


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (0, 1, 0 when not distributed)."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ.get('RANK', '0')), world, int(os.environ.get('LOCAL_RANK', '0'))


class _CosineSchedule:
    """Linear warm-up, then cosine decay to ``eta_min`` at ``total`` steps (``total`` may be lowered once
    early by a time budget)."""

    def __init__(self, total: int, warmup: int, base_lr: float, eta_min: float) -> None:
        self.total, self.warmup = total, warmup
        self.floor = eta_min / base_lr if base_lr > 0 else 0.0

    def __call__(self, step: int) -> float:
        if self.warmup > 0 and step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


BUDGET_PROBE_STEPS = 60  # steps timed before a time budget fixes the number of steps
BUDGET_RESERVE = 0.12    # share of the budget kept for validation, checkpoints and the last export


class Trainer:
    """One training run; :meth:`run` trains and returns a :class:`TrainResult`."""

    def __init__(self, options: TrainOptions) -> None:
        self.options = options
        get_spec(options.network)
        check_config(options.config)
        if options.steps < 1 or options.batch < 1 or options.patch < 8:
            raise ConfigError('steps and batch must be >= 1 and patch >= 8')
        self.recipe = recipe(options.network, options.settings, options.config)
        self.rank, self.world, self.local_rank = _distributed()
        self.device = self._device()
        if options.threads:
            torch.set_num_threads(options.threads)
        self.out = Path(options.out)
        self.ckpt_dir = self.out / 'checkpoints'
        self.metric_name = 'val_loss' if self.recipe['kind'] == 'fusion' else 'val_psnr_y'
        self.mix: list = []
        self.higher_is_better = self.metric_name != 'val_loss'

    # ------------------------------------------------------------ setup
    def _device(self) -> torch.device:
        name = self.options.device
        if name.startswith('cuda'):
            if not torch.cuda.is_available():
                raise ConfigError('--device cuda: no CUDA device is available here')
            return torch.device('cuda', self.local_rank if self.world > 1 else torch.device(name).index or 0)
        if name != 'cpu':
            raise ConfigError(f'unknown device {name!r}; use cpu or cuda')
        return torch.device('cpu')

    def _datasets(self) -> tuple[list[ImageSet], list[ImageSet], dict[str, Split]]:
        if self.options.mix:
            if self.recipe['kind'] != 'derain':
                raise ConfigError(f'--mix is the derain training mix; {self.options.network} is a '
                                  f'{self.recipe["kind"]} network')
            from ..data.corpus import roadscene_split, training_mix

            self.mix = training_mix(self.options.mix, self.options.mix_weights)
            roadscene, split = roadscene_split(Path(self.options.mix))
            return [], [roadscene.subset(split.val)], {'roadscene-rain': split}
        if not self.options.data:
            raise ConfigError('no training data: pass --data FOLDER (repeatable) or --mix SHARED_DATA')
        train_sets, val_sets, splits = [], [], {}
        for path in self.options.data:
            data = open_dataset(path, self.options.layout, self.options.split)
            if self.options.val_fraction > 0 and len(data) >= 2:
                split = split_names(data.names, self.options.val_fraction, self.options.split_seed)
                train_sets.append(data.subset(split.train))
                val_sets.append(data.subset(split.val))
                splits[str(path)] = split
            else:
                train_sets.append(data)
        return train_sets, val_sets, splits

    def _build(self) -> Objective:
        o = self.options
        torch.manual_seed(o.seed)
        network = build_network(o.network, o.config, **o.network_overrides)
        cleannet = None
        if o.network == 'fusionnet' and o.cleannet:
            cleannet, payload = load_checkpoint(o.cleannet)
            if payload['network'] != 'cleannet':
                raise ConfigError(f'--cleannet {o.cleannet} is a {payload["network"]} checkpoint, '
                                  'not a cleannet one')
        objective = build_objective(o.network, network, self.recipe, cleannet)
        if o.init:
            payload = read_checkpoint(o.init)
            if payload['network'] != o.network or payload.get('config') != o.config:
                raise ConfigError(f'--init {o.init} holds {payload["network"]}/{payload.get("config")}, '
                                  f'not {o.network}/{o.config}')
            network.load_state_dict(payload['state_dict'])
        return objective.to(self.device)

    def _optimizer(self, objective: Objective) -> torch.optim.Optimizer:
        r = self.recipe
        groups = objective.parameter_groups()
        if r['optimizer'] == 'adamw':
            return torch.optim.AdamW(groups, lr=r['lr'], betas=(0.9, 0.999))
        if r['optimizer'] == 'adam':
            return torch.optim.Adam(groups, lr=r['lr'], betas=(0.9, 0.999))
        raise ConfigError(f'unknown optimizer {r["optimizer"]!r}')

    # ------------------------------------------------------------ output folder
    def _prepare_out(self) -> None:
        o = self.options
        if self.rank != 0:
            return
        if o.resume is None and (self.out / 'checkpoints' / 'last.pt').exists() and not o.force:
            raise OutputExistsError(self.out / 'checkpoints' / 'last.pt')
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if o.resume is None:
            for name in ('log.csv', 'val.csv', 'summary.json', 'loss.png'):
                (self.out / name).unlink(missing_ok=True)

    def _write_json(self, name: str, payload: Any) -> None:
        write_text_atomic(self.out / name, json.dumps(payload, indent=1, default=str) + '\n')

    # ------------------------------------------------------------ main loop
    def run(self) -> TrainResult:
        o = self.options
        train_sets, val_sets, splits = self._datasets()
        self._prepare_out()
        objective = self._build()
        optimizer = self._optimizer(objective)
        warmup = o.warmup if o.warmup >= 0 else min(200, o.steps // 20)
        schedule = _CosineSchedule(o.steps, warmup, self.recipe['lr'], self.recipe['eta_min'])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        use_amp = bool(o.amp and self.device.type == 'cuda' and self.recipe.get('amp', 1))
        if o.amp and not use_amp and self.rank == 0:
            why = ('used only on CUDA' if self.device.type != 'cuda'
                   else f'diverges {o.network} (recipe amp=0)')
            log.warning('--amp ignored: mixed precision is %s', why)
        # bf16 where the GPU has it (no loss scaling, no fp16 overflow); else fp16 with a gradient scaler
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler('cuda', enabled=use_amp and amp_dtype == torch.float16)

        start, best, elapsed = 0, None, 0.0
        if o.resume:
            start, best, elapsed = self._restore(o.resume, objective, optimizer, scheduler, scaler)
        if start >= o.steps:
            raise ConfigError(f'{o.resume} is already at step {start}; pass --steps larger than that')
        end = min(o.steps, o.stop_at) if o.stop_at > 0 else o.steps
        if end <= start:
            raise ConfigError(f'--stop-at {o.stop_at} is not after the resumed step {start}')

        model: torch.nn.Module = objective
        if self.world > 1:
            model = self._wrap_ddp(objective)

        patches = PatchDataset(train_sets, self.recipe['kind'], PatchSettings(
            patch=o.patch, seed=o.seed, synthetic=float(self.recipe['synthetic']),
            synthetic_style=o.synthetic_style, negatives=int(self.recipe.get('negatives', 0))), mix=self.mix)
        validation = _Validation(self, val_sets, objective) if self.rank == 0 and val_sets else None
        if self.rank == 0:
            self._write_json('options.json', asdict(o) | {'recipe': self.recipe, 'world_size': self.world,
                                                         'machine': device_machine_info(self.device)})
            if splits:
                self._write_json('split.json', {k: asdict(v) for k, v in splits.items()})
        log_writer = _CsvLog(self.out / 'log.csv', truncate_after=start) if self.rank == 0 else None
        val_writer = _CsvLog(self.out / 'val.csv', truncate_after=start) if self.rank == 0 else None

        objective.train()
        step = start
        last_losses: dict[str, float] = {}
        window_time, window_steps, train_time = 0.0, 0, 0.0
        run_start = time.perf_counter() - elapsed
        bar = self._progress(start)
        batches = self._batches(patches, start, end)
        budget_start = time.perf_counter()
        budget_probe = (start, budget_start) if o.time_budget_s > 0 and not o.resume else None
        try:
            for step in range(start, end):
                if step >= end:  # a time budget shortened the run
                    break
                tick = time.perf_counter()
                batch = {k: v.to(self.device, non_blocking=True) for k, v in next(batches).items()}
                with torch.autocast(device_type=self.device.type, dtype=amp_dtype, enabled=use_amp):
                    terms = model(batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(terms['total']).backward()
                if self.recipe['grad_clip'] > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(objective.parameters(), self.recipe['grad_clip'])
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                objective.after_step()
                last_losses = {k: float(v.detach()) for k, v in terms.items()}
                spent = time.perf_counter() - tick
                window_time, window_steps = window_time + spent, window_steps + 1
                train_time += spent
                if not math.isfinite(last_losses['total']):
                    raise ConfigError(f'training diverged at step {step + 1}: loss {last_losses["total"]}')
                done = step + 1
                if budget_probe is not None and done - budget_probe[0] >= BUDGET_PROBE_STEPS:
                    # re-estimated every probe window while less than 70 % of the budget is spent: the
                    # first steps (loader start-up) are slower than the rest
                    now = time.perf_counter()
                    per_step = (now - budget_probe[1]) / (done - budget_probe[0])
                    left = o.time_budget_s * (1.0 - BUDGET_RESERVE) - (now - budget_start)
                    end = min(o.steps, done + max(1, int(left / per_step)))
                    schedule.total = end
                    if bar is not None:
                        bar.total = end
                    log.info('time budget %.0f s at %.3f s/step: %d steps', o.time_budget_s, per_step, end)
                    spent = (now - budget_start) / o.time_budget_s
                    budget_probe = (done, now) if spent < 0.7 else None
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f'{last_losses["total"]:.4f}')
                if log_writer is not None and (done % o.log_every == 0 or done == end):
                    log_writer.write({'step': done, 'lr': optimizer.param_groups[0]['lr'],
                                      'seconds': round(time.perf_counter() - run_start, 3),
                                      's_per_step': round(window_time / window_steps, 4), **last_losses})
                    window_time, window_steps = 0.0, 0
                validate = o.val_every > 0 and (done % o.val_every == 0 or done == end)
                if validation is not None and validate:
                    metrics = validation.run()
                    objective.train()
                    val_writer.write({'step': done, **metrics})
                    value = metrics[self.metric_name]
                    if best is None or (value > best if self.higher_is_better else value < best):
                        best = value
                        self._save(self.ckpt_dir / 'best.pt', objective, optimizer, scheduler, scaler, done,
                                   best, time.perf_counter() - run_start, splits)
                if done % o.checkpoint_every == 0 or done == end:
                    self._save(self.ckpt_dir / 'last.pt', objective, optimizer, scheduler, scaler, done, best,
                               time.perf_counter() - run_start, splits)
                    self._plot()
                if self.world > 1:
                    torch.distributed.barrier()
        except KeyboardInterrupt:
            if self.rank == 0 and step > start:
                self._save(self.ckpt_dir / 'last.pt', objective, optimizer, scheduler, scaler, step, best,
                           time.perf_counter() - run_start, splits)
                log.warning('interrupted: state saved to %s (resume with --resume)',
                            self.ckpt_dir / 'last.pt')
            raise
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - run_start
        steps_run = max(1, end - start)
        result = TrainResult(self.out, end, best, self.metric_name, self.ckpt_dir / 'last.pt',
                             (self.ckpt_dir / 'best.pt') if best is not None else None, seconds,
                             train_time / steps_run, last_losses)
        if self.rank == 0:
            self._plot()
            self._write_json('summary.json', asdict(result) | {'machine': device_machine_info(self.device)})
        if self.world > 1:
            torch.distributed.destroy_process_group()
        return result

    # ------------------------------------------------------------ pieces
    def _progress(self, start: int):
        if not self.options.progress or self.rank != 0:
            return None
        from tqdm import tqdm

        return tqdm(total=self.options.steps, initial=start, desc=f'train {self.options.network}',
                    unit='step', dynamic_ncols=True)

    def _batches(self, patches: PatchDataset, start: int, end: int) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of steps ``start``..``end - 1`` (this rank's part), in order."""
        o = self.options
        if o.workers <= 0:
            for step in range(start, end):
                yield collate([patches[i] for i in batch_indices(step, o.batch, self.rank, self.world)])
            return
        order = [i for step in range(start, end)
                 for i in batch_indices(step, o.batch, self.rank, self.world)]
        loader = torch.utils.data.DataLoader(patches, batch_size=o.batch, sampler=order,
                                             num_workers=o.workers, collate_fn=collate,
                                             pin_memory=self.device.type == 'cuda')
        yield from loader

    def _wrap_ddp(self, objective: Objective) -> torch.nn.Module:
        backend = 'nccl' if self.device.type == 'cuda' else 'gloo'
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend)
        if self.device.type == 'cuda':
            torch.cuda.set_device(self.device)
        ids = [self.device.index] if self.device.type == 'cuda' else None
        return torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=ids, find_unused_parameters=objective.ddp_find_unused_parameters)

    def _save(self, path: Path, objective: Objective, optimizer, scheduler, scaler, step: int,
              best: float | None, seconds: float, splits: dict[str, Split]) -> None:
        if self.rank != 0:
            return
        o = self.options
        state = {
            'step': step, 'best': best, 'seconds': seconds,
            'objective': objective.state_dict(), 'optimizer': optimizer.state_dict(),
            'scheduler': scheduler.state_dict(), 'scaler': scaler.state_dict(),
            'torch_rng': torch.get_rng_state(),
        }
        if self.device.type == 'cuda':
            state['cuda_rng'] = torch.cuda.get_rng_state(self.device)
        data, layout = [portable_path(p) for p in o.data], o.layout
        if o.mix:
            from ..data.corpus import mix_weights

            weights = ', '.join(f'{k} {v:g}' for k, v in mix_weights(o.mix_weights).items())
            data, layout = [f'the rain mix of {portable_path(o.mix)} ({weights})'], 'mix'
        meta = {
            'data': data, 'layout': layout, 'steps': step,
            'total_steps': o.steps, 'batch': o.batch * self.world, 'patch': o.patch, 'seed': o.seed,
            'recipe': json.dumps(self.recipe), 'best_' + self.metric_name: best, 'train_seconds': seconds,
            'machine': json.dumps(device_machine_info(self.device)),
            'val_names': json.dumps({k: v.val for k, v in splits.items()}),
            'cleannet': o.cleannet or '',
        }
        save_checkpoint(path, objective.network, o.network, o.config, o.network_overrides, meta,
                        extra={'training_state': state})

    def _restore(self, path: str, objective: Objective, optimizer, scheduler,
                 scaler) -> tuple[int, Any, float]:
        payload = read_checkpoint(path)
        o = self.options
        if payload['network'] != o.network or payload['config'] != o.config:
            raise ConfigError(f'{path} holds {payload["network"]}/{payload["config"]}, '
                              f'not {o.network}/{o.config}')
        state = payload.get('training_state')
        if not isinstance(state, dict):
            raise ConfigError(f'{path} has no training state (an exported or converted checkpoint?)')
        objective.load_state_dict(state['objective'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        scaler.load_state_dict(state['scaler'])
        torch.set_rng_state(state['torch_rng'])
        if 'cuda_rng' in state and self.device.type == 'cuda':
            torch.cuda.set_rng_state(state['cuda_rng'], self.device)
        return int(state['step']), state.get('best'), float(state.get('seconds', 0.0))

    def _plot(self) -> None:
        if self.rank == 0:
            try:
                plot_curves(self.out / 'log.csv', self.out / 'val.csv', self.out / 'loss.png',
                            self.metric_name)
            except (OSError, ValueError) as exc:  # a plot must never stop training
                log.warning('loss curve not written: %s', exc)


class _CsvLog:
    """Append-only CSV with a header fixed by the first row; on resume rows after the step are dropped."""

    def __init__(self, path: Path, truncate_after: int) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with path.open(newline='') as f:
                rows = list(csv.DictReader(f))
                fields = list(rows[0].keys()) if rows else None
            kept = [r for r in rows if int(float(r['step'])) <= truncate_after]
            if fields:
                self.fields = fields
                self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        with atomic_output(self.path) as tmp, tmp.open('w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._rewrite([])
        with self.path.open('a', newline='') as f:
            csv.DictWriter(f, fieldnames=self.fields, extrasaction='ignore').writerow(row)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline='') as f:
        return list(csv.DictReader(f))


def plot_curves(log_csv: Path, val_csv: Path, out_png: Path, metric_name: str = 'val_psnr_y') -> Path | None:
    """Loss terms (log scale) and the validation metric against the step, as a PNG."""
    rows = _read_csv(log_csv)
    if not rows:
        return None
    plt = pyplot()

    skip = {'step', 'lr', 'seconds', 's_per_step'}
    steps = [int(float(r['step'])) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in rows[0]:
        if key in skip:
            continue
        values = [float(r[key]) if r.get(key) not in (None, '') else float('nan') for r in rows]
        if all(v > 0 for v in values if v == v):
            axes[0].plot(steps, values, label=key, linewidth=1.5 if key == 'total' else 0.8)
    axes[0].set_yscale('log')
    axes[0].set_xlabel('step')
    axes[0].set_title('training loss')
    axes[0].legend(fontsize=7)
    val = _read_csv(val_csv)
    if val and metric_name in val[0]:
        axes[1].plot([int(float(r['step'])) for r in val], [float(r[metric_name]) for r in val], 'o-',
                     label=metric_name)
        if 'input_psnr_y' in val[0]:
            axes[1].axhline(float(val[0]['input_psnr_y']), color='grey', linestyle='--', label='rainy input')
        axes[1].legend(fontsize=7)
    axes[1].set_xlabel('step')
    axes[1].set_title('validation')
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=90)


# ------------------------------------------------------------------ validation

def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad NCHW bottom/right to a multiple (as the pipeline does); returns (padded, H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = 'reflect' if ph < h and pw < w else 'replicate'
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def _to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    array = image.astype(np.float32) / 255.0
    array = array[None, None] if array.ndim == 2 else array.transpose(2, 0, 1)[None]
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _to_image(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


class _Validation:
    """Validation on the held-out part of each dataset (rank 0 only)."""

    def __init__(self, trainer: Trainer, sets: list[ImageSet], objective: Objective) -> None:
        self.trainer = trainer
        self.objective = objective
        self.kind = trainer.recipe['kind']
        self.multiple = get_spec(trainer.options.network).multiple_of
        limit = trainer.options.val_images
        self.items = [(s, i) for s in sets for i in range(len(s))]
        if limit:
            self.items = self.items[:limit]
        self.synthetic: list[dict[str, torch.Tensor]] | None = None
        no_rain = any('rainy' not in s.roles for s, _ in self.items)
        if self.kind == 'stereo' or (self.kind == 'derain' and no_rain):
            settings = PatchSettings(patch=trainer.options.val_patch, seed=trainer.options.seed + 7919,
                                     synthetic=1.0, synthetic_style='night', augment=False)
            patches = PatchDataset(sets, 'stereo' if self.kind == 'stereo' else 'derain', settings)
            self.synthetic = [patches[i] for i in range(len(self.items))]
        self.input_psnr: dict[str, float] = {}
        # with the training mix: the generalisation validation too (held-back pairs, held-out styles)
        self.general: list = []
        if trainer.mix:
            from ..data.corpus import generalisation_pairs

            pairs = generalisation_pairs(trainer.options.mix)
            if limit:
                pairs = pairs[:limit]
            self.general = [pair.load() for pair in pairs]  # rendered once: the same pairs every time

    @torch.no_grad()
    def run(self) -> dict[str, float]:
        self.objective.eval()
        device = self.trainer.device
        if self.synthetic is not None:
            return self._synthetic(device)
        if self.kind == 'fusion':
            return self._fusion(device)
        groups = {'roadscene': [lambda s=s, i=i: _pair(s, i) for s, i in self.items]}
        if self.general:
            groups['general'] = [lambda pair=pair: pair for pair in self.general]
        metrics: dict[str, float] = {}
        for group, loaders in groups.items():
            scores, inputs = [], []
            for load in loaders:
                rainy_u8, clean_u8 = load()
                padded, h, w = pad_to_multiple(_to_tensor(rainy_u8, device), self.multiple)
                derained = self.objective.predict({'rainy': padded})['derained'][..., :h, :w]
                scores.append(psnr(rgb_to_y(_to_image(derained)), rgb_to_y(clean_u8)))
                if group not in self.input_psnr:
                    inputs.append(psnr(rgb_to_y(rainy_u8), rgb_to_y(clean_u8)))
            if group not in self.input_psnr:
                self.input_psnr[group] = float(np.mean(inputs))
            metrics[f'val_{group}_psnr_y'] = float(np.mean(scores))
            metrics[f'input_{group}_psnr_y'] = self.input_psnr[group]
        if len(groups) == 1:
            return {'val_psnr_y': metrics['val_roadscene_psnr_y'],
                    'input_psnr_y': metrics['input_roadscene_psnr_y']}
        # both matter: the best checkpoint has the best mean of the two validations
        metrics['val_psnr_y'] = float(np.mean([metrics[f'val_{g}_psnr_y'] for g in groups]))
        metrics['input_psnr_y'] = float(np.mean([metrics[f'input_{g}_psnr_y'] for g in groups]))
        return metrics

    def _synthetic(self, device: torch.device) -> dict[str, float]:
        scores, inputs = [], []
        for item in self.synthetic or []:
            batch = {k: v[None].to(device) for k, v in item.items()}
            out = self.objective.predict(batch)
            pairs = [('left', 'clean', 'rainy'), ('right', 'clean_right', 'rainy_right')] \
                if self.kind == 'stereo' else [('derained', 'clean', 'rainy')]
            for pred_key, clean_key, rainy_key in pairs:
                clean = _to_image(batch[clean_key])
                scores.append(psnr(rgb_to_y(_to_image(out[pred_key])), rgb_to_y(clean)))
                inputs.append(psnr(rgb_to_y(_to_image(batch[rainy_key])), rgb_to_y(clean)))
        return {'val_psnr_y': float(np.mean(scores)), 'input_psnr_y': float(np.mean(inputs))}

    def _fusion(self, device: torch.device) -> dict[str, float]:
        totals = []
        for image_set, i in self.items:
            images = image_set.load(i, [r for r in ('rainy', 'clean', 'infrared') if r in image_set.roles])
            images.setdefault('rainy', images['clean'])  # rain-free visible/infrared sets
            batch = {k: _to_tensor(v, device) for k, v in images.items()}
            padded = {k: pad_to_multiple(v, 8)[0] for k, v in batch.items()}
            totals.append(float(self.objective(padded)['total']))
        return {'val_loss': float(np.mean(totals))}


def _pair(image_set: ImageSet, index: int) -> tuple[np.ndarray, np.ndarray]:
    images = image_set.load(index, ('rainy', 'clean'))
    return images['rainy'], images['clean']


def train(options: TrainOptions) -> TrainResult:
    """Run one training (see :class:`Trainer`)."""
    return Trainer(options).run()
