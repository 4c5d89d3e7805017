"""``nitedr build-engine``: build (or verify) the cached TensorRT engines ahead of time, then exit.

Provisions a vehicle before its first drive: the engines land in the same cache the node loads from
(``~/.ros/nitedr_ros/engines`` by default), keyed by ONNX sha256, TensorRT version, GPU, precision and
optimisation profile, so the node starts without a multi-minute build. Without ``--model`` it builds every
role of ``--mode`` from the shipped default models. Needs a CUDA device and TensorRT.
"""

from __future__ import annotations

import argparse
import json

HELP = 'build the TensorRT engines of a mode (or given ONNX models) into the engine cache, then exit'


def _hw(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.replace('x', ',').split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HEIGHT,WIDTH, got {text!r}') from None
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f'sizes must be positive, got {text!r}')
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model', action='append', default=[],
                        help='ONNX file or name in models/ (repeatable; default: the models of --mode)')
    parser.add_argument('--mode', default='nitedr', choices=['nitedr', 'stereo', 'single'],
                        help='build every role of this mode from the shipped defaults (nitedr)')
    parser.add_argument('--precision', default='fp16', choices=['fp32', 'fp16'],
                        help='fp16 builds strongly typed from <model>.fp16.onnx (fp16)')
    parser.add_argument('--cache-dir', default='', help='engine cache (default ~/.ros/nitedr_ros/engines)')
    for name, default in (('min', (128, 128)), ('opt', (720, 1280)), ('max', (1088, 1920))):
        parser.add_argument(f'--{name}-hw', type=_hw, default=default,
                            help=f'optimisation profile {name} HEIGHT,WIDTH ({default[0]},{default[1]})')
    parser.add_argument('--workspace-mb', type=int, default=1024, help='builder workspace in MiB (1024)')
    parser.add_argument('--optimization-level', type=int, default=3, choices=range(6),
                        help='TensorRT builder optimisation level 0-5 (3)')
    parser.add_argument('--device', type=int, default=0, help='CUDA device index (0)')
    parser.add_argument('--force', action='store_true', help='rebuild even when a matching engine is cached')
    parser.add_argument('--lock-timeout', type=float, default=None,
                        help='seconds to wait for another process building the same engine (forever)')
    parser.add_argument('--verbose', action='store_true', help='verbose TensorRT log')
    parser.add_argument('--json', action='store_true', help='print one JSON object per engine')


def run(args: argparse.Namespace) -> int:
    from ..engines import BuildSettings, provision_engine
    from ..pipeline.config import PipelineConfig, build_engines

    common = dict(verbose=args.verbose, lock_timeout_s=args.lock_timeout)
    if args.model:
        settings = BuildSettings(args.precision, args.min_hw, args.opt_hw, args.max_hw, args.workspace_mb,
                                 args.optimization_level)
        engines = {f'model{i}': provision_engine(model, settings, cache_dir=args.cache_dir or None,
                                                 force_rebuild=args.force, device_index=args.device, **common)
                   for i, model in enumerate(args.model)}
    else:
        config = PipelineConfig(mode=args.mode, precision=args.precision, engine_cache_dir=args.cache_dir,
                                force_engine_rebuild=args.force, profile_min_hw=args.min_hw,
                                profile_opt_hw=args.opt_hw, profile_max_hw=args.max_hw,
                                workspace_mb=args.workspace_mb, device_index=args.device)
        engines = build_engines(config, optimization_level=args.optimization_level, **common)
    for role, cached in engines.items():
        facts = {'role': role, 'engine': str(cached.path), 'source': cached.source, 'reason': cached.reason,
                 'build_seconds': round(cached.build_seconds, 1), 'key': cached.key.to_dict()}
        if args.json:
            print(json.dumps(facts))
        else:
            action = 'built' if cached.source == 'built' else 'up to date'
            print(f'{role}: {action}: {cached.path}'
                  + (f' ({cached.reason}, {cached.build_seconds:.1f} s)' if cached.source == 'built' else ''))
    return 0
