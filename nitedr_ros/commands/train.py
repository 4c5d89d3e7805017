"""``nitedr train``: train a network with its paper's losses (checkpoints, resume, logs, validation)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..modelspec import CONFIGS, NETWORKS
from .options import json_or_text, parse_pairs

HELP = 'train a network (paper losses, checkpoint/resume, CSV log + loss curve, validation, optional export)'


def _key_values(pairs: list[str], option: str) -> dict[str, Any]:
    """``key=value`` strings -> dict; values parsed as JSON where possible (numbers, lists), else strings."""
    return parse_pairs(pairs, option, parse=json_or_text, value_required=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--network', required=True, choices=sorted(NETWORKS), help='network to train')
    parser.add_argument('--config', default='realtime', choices=CONFIGS, help='network configuration')
    parser.add_argument('--mix', default='', metavar='SHARED_DATA',
                        help='derain networks: train on the documented rain mix of this shared data folder '
                             '(RoadScene-rain, the paired rain sets, renderer rain of every style; '
                             'nitedr_ros/data/corpus.py) and validate on RoadScene-rain and the '
                             'generalisation set')
    parser.add_argument('--mix-weight', action='append', default=[], metavar='SOURCE=WEIGHT',
                        help='override a source weight of the mix, e.g. roadscene=0.5 (repeatable; sources: '
                             'roadscene, shared_pairs, rendered, rendered_night)')
    parser.add_argument('--data', action='append', default=[],
                        help='dataset folder (repeatable; layouts: see nitedr_ros/data/layouts.py)')
    parser.add_argument('--layout', default='auto', help='dataset layout (default: detected)')
    parser.add_argument('--split', default='train', help='split folder inside datasets that have them')
    parser.add_argument('--steps', type=int, default=2000, help='optimiser steps (default 2000)')
    parser.add_argument('--batch', type=int, default=8, help='batch size per process (default 8)')
    parser.add_argument('--patch', type=int, default=64, help='square patch size (default 64)')
    parser.add_argument('--lr', type=float, help='peak learning rate (default: the network recipe)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a recipe setting (e.g. ssim_weight=0.2; see training/objectives.py)')
    parser.add_argument('--network-option', action='append', default=[], metavar='KEY=VALUE',
                        help='override a network constructor option (JSON values)')
    parser.add_argument('--cleannet', help='fusionnet: frozen stage-1 CleanNet checkpoint')
    parser.add_argument('--synthetic-style', default='mixed', choices=('day', 'night', 'mixed'),
                        help='style of rendered rain for samples that get synthetic rain')
    parser.add_argument('--init', help='start from the weights of this checkpoint (fresh optimiser and '
                                       'schedule; e.g. continue a GPU run on the CPU with another budget)')
    parser.add_argument('--resume', help='continue exactly from a checkpoint (checkpoints/last.pt)')
    parser.add_argument('--out', help='run folder (default runs/<network>_<config>)')
    parser.add_argument('--seed', type=int, default=0, help='seed of initialisation and patches')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument('--amp', action='store_true', help='mixed precision (CUDA only)')
    parser.add_argument('--val-fraction', type=float, default=0.15,
                        help='held-out validation fraction of each dataset (0: none)')
    parser.add_argument('--split-seed', type=int, default=0, help='seed of the validation split')
    parser.add_argument('--val-every', type=int, default=500, help='validate every N steps (0: never)')
    parser.add_argument('--val-images', type=int, default=0, help='at most N validation images (0: all)')
    parser.add_argument('--checkpoint-every', type=int, default=500, help='write checkpoints/last.pt every N')
    parser.add_argument('--log-every', type=int, default=10, help='CSV log row every N steps')
    parser.add_argument('--warmup', type=int, default=-1,
                        help='linear warm-up steps (-1: min(200, steps/20))')
    parser.add_argument('--stop-at', type=int, default=0,
                        help='stop after this step of the --steps schedule (time-boxed; resume later)')
    parser.add_argument('--time-budget', type=float, default=0.0, metavar='SECONDS',
                        help='fit the run into this wall time: after the first steps are timed, --steps and '
                             'the LR schedule shrink to what fits (a GPU lease, a CI slot)')
    parser.add_argument('--workers', type=int, default=0, help='patch loader processes (0: in process)')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--force', action='store_true', help='reuse a run folder that has checkpoints')
    parser.add_argument('--export-to', metavar='DIR',
                        help='after training: export the best checkpoint to DIR (ONNX + fp16 + model card), '
                             'evaluated on the validation split')
    parser.add_argument('--derain-model', help='with --export-to for fusionnet (required): cleannet ONNX '
                                               'used to evaluate the deployed NiteDR pipeline')


def run(args: argparse.Namespace) -> int:
    from ..training.publish import require_derain_model
    from ..training.trainer import TrainOptions, train

    if not args.data and not args.mix:
        raise ConfigError('no training data: pass --data FOLDER (repeatable) or --mix SHARED_DATA')
    eval_data = str(Path(args.mix) / 'roadscene-rain') if args.mix else (args.data[0] if args.data else None)
    if args.export_to:  # fail before training, not after it
        require_derain_model(args.network, eval_data if args.val_fraction > 0 else None, args.derain_model)

    settings = _key_values(args.set, '--set')
    if args.lr is not None:
        settings['lr'] = args.lr
    out = args.out
    if out is None:
        out = str(Path(args.resume).resolve().parent.parent) if args.resume else \
            f'runs/{args.network}_{args.config}'
    options = TrainOptions(
        network=args.network, config=args.config, data=list(args.data), out=out, steps=args.steps,
        batch=args.batch, patch=args.patch, seed=args.seed, device=args.device, amp=args.amp,
        resume=args.resume, layout=args.layout, split=args.split, val_fraction=args.val_fraction,
        split_seed=args.split_seed, val_every=args.val_every, val_images=args.val_images,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, warmup=args.warmup,
        stop_at=args.stop_at, time_budget_s=args.time_budget,
        settings=settings, network_overrides=_key_values(args.network_option, '--network-option'),
        cleannet=args.cleannet, init=args.init, synthetic_style=args.synthetic_style, mix=args.mix,
        mix_weights={k: float(v) for k, v in _key_values(args.mix_weight, '--mix-weight').items()},
        workers=args.workers,
        threads=args.threads, progress=not args.no_progress, force=args.force)
    result = train(options)
    if int(os.environ.get('RANK', '0')) != 0:  # torchrun: rank 0 reports and exports
        return 0
    best = 'n/a' if result.best_metric is None else f'{result.best_metric:.4f}'
    print(f'trained {args.network}/{args.config} to step {result.step} in {result.seconds / 60:.1f} min '
          f'({result.seconds_per_step:.3f} s/step); best {result.metric_name} {best}; '
          f'last loss {result.last_losses.get("total", float("nan")):.5f}')
    print(f'run folder: {result.out} (log.csv, loss.png, checkpoints/)')
    if args.export_to:
        from ..training.publish import publish_checkpoint

        checkpoint = result.best_checkpoint or result.last_checkpoint
        split_file = Path(result.out) / 'split.json'
        published = publish_checkpoint(
            checkpoint, args.export_to, eval_data=eval_data if split_file.exists() else None,
            split_file=str(split_file), eval_out=Path(result.out) / 'eval', derain_model=args.derain_model,
            force=args.force)
        print(f'exported {published.onnx} (+ {published.fp16}) with model card {published.card}')
    return 0
