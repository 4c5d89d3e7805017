"""``nitedr build-engine``: build (or verify) the TensorRT engines the node will load, then exit.

Provisions a vehicle before its first drive. The settings come from the node's own parameters, read the
way ``nitedr run`` reads them (``--params FILE``, else the shipped ``<mode>.yaml``, with ``--mode`` and
``--param NAME=VALUE`` on top) and turned into the pipeline configuration by
``core.parameters.pipeline_config``: models (``network``, ``configuration``, ``models.*``), precision,
``profile.*``, workspace, optimisation level, GPU, ``engine_cache_dir`` and ``engine_files.*``. The engines
therefore land under exactly the cache key (or explicit engine file) the node asks for, and the node starts
without a multi-minute build.

Options such as ``--precision`` or ``--workspace-mb`` override the parameters for this build only; the node
finds such an engine only when it runs with the same setting (a note says so). ``--model FILE`` builds
given ONNX files instead of the mode's roles, with the same settings. Old engines of the same model and GPU
are pruned after a build unless ``--keep-old``. Needs a CUDA device and TensorRT.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

HELP = "build the TensorRT engines of the node's parameters (or given ONNX models) ahead of time, then exit"

# option -> EngineOptions field (or BuildSettings field) it overrides
OVERRIDES = {'precision': 'precision', 'min_hw': 'profile_min_hw', 'opt_hw': 'profile_opt_hw',
             'max_hw': 'profile_max_hw', 'workspace_mb': 'workspace_mb',
             'optimization_level': 'optimization_level', 'device': 'device_index',
             'cache_dir': 'cache_dir'}


def _option(options: Any, name: str) -> Any:
    return getattr(options.build, name) if hasattr(options.build, name) else getattr(options, name)


def _hw(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.replace('x', ',').split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HEIGHT,WIDTH, got {text!r}') from None
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f'sizes must be positive, got {text!r}')
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..modes import MODES

    parser.add_argument('--params', default='',
                        help="the node's parameter YAML (/**: ros__parameters:), a path or a name in config/ "
                             '(default: <mode>.yaml, or nitedr.yaml)')
    parser.add_argument('--mode', choices=MODES, help='pipeline mode (overrides the parameters)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='set a parameter as `nitedr run --param` does (repeatable)')
    parser.add_argument('--node-name', default='nitedr_node', help='node section of the YAML (nitedr_node)')
    parser.add_argument('--namespace', default='/', help='node namespace (default /)')
    parser.add_argument('--model', action='append', default=[],
                        help="ONNX file or name in models/ to build instead of the mode's roles (repeatable)")
    parser.add_argument('--engine-file', action='append', default=[], metavar='ROLE=PATH',
                        help='write the engine of a role to this file instead of the cache (repeatable; '
                             'overrides engine_files.<role>)')
    parser.add_argument('--precision', choices=['fp32', 'fp16'], help='override: fp16 builds strongly typed '
                        'from <model>.fp16.onnx')
    parser.add_argument('--cache-dir', help='override: engine cache (default ~/.ros/nitedr_ros/engines)')
    for name in ('min', 'opt', 'max'):
        parser.add_argument(f'--{name}-hw', type=_hw,
                            help=f'override: optimisation profile {name} HEIGHT,WIDTH')
    parser.add_argument('--workspace-mb', type=int, help='override: builder workspace in MiB')
    parser.add_argument('--optimization-level', type=int, choices=range(6),
                        help='override: TensorRT builder optimisation level 0-5')
    parser.add_argument('--device', type=int, help='override: CUDA device index')
    parser.add_argument('--force', action='store_true', help='rebuild even when a matching engine is cached')
    parser.add_argument('--keep-old', action='store_true',
                        help='do not prune engines of the same model and GPU built with other settings')
    parser.add_argument('--lock-timeout', type=float, default=None,
                        help='seconds to wait for another process building the same engine (forever)')
    parser.add_argument('--verbose', action='store_true', help='verbose TensorRT log')
    parser.add_argument('--json', action='store_true', help='print one JSON object per engine')


def node_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The node's parameters, resolved as ``nitedr run`` resolves them (file, ``--mode``, ``--param``)."""
    from ..core.parameters import apply_choices, load_parameter_file, validate
    from ..errors import ConfigError
    from .options import parse_param_overrides

    params_file = args.params or (f'{args.mode}.yaml' if args.mode else 'nitedr.yaml')
    try:
        loaded = load_parameter_file(params_file, node_name=args.node_name, namespace=args.namespace)
        given = dict(loaded.given)
    except ConfigError:
        if args.params:
            raise
        given = {}  # no shipped config found (pip install without data files): schema defaults
    given = apply_choices(given, mode=args.mode)
    given.update({name: value for name, value in parse_param_overrides(args.param).items()
                  if name != 'use_sim_time' and not name.startswith('qos_overrides.')})
    return validate(given)


def pipeline_config_for(args: argparse.Namespace):
    """The PipelineConfig the node would build from its parameters, with this run's overrides on top."""
    from ..core.parameters import pipeline_config
    from .options import parse_pairs

    config = pipeline_config(node_parameters(args))
    changes: dict[str, Any] = {field: getattr(args, option) for option, field in OVERRIDES.items()
                               if getattr(args, option) is not None}
    if args.force:
        changes['force_rebuild'] = True
    if args.verbose:
        changes['verbose'] = True
    for option, field in OVERRIDES.items():
        if field in changes and changes[field] != _option(config.engine, field):
            print(f'note: --{option.replace("_", "-")} overrides the parameters ({field} '
                  f'{_option(config.engine, field)!r} -> {changes[field]!r}); the node loads this engine '
                  f'only with the same setting', file=sys.stderr)
    files = parse_pairs(args.engine_file, '--engine-file', 'ROLE=PATH')
    replaced: dict[str, Any] = {}
    if changes:
        replaced['engine'] = config.engine.with_(**changes)
    if files:
        replaced['engine_files'] = {**config.engine_files, **files}
    return dataclasses.replace(config, **replaced) if replaced else config


def run(args: argparse.Namespace) -> int:
    from ..engines import provision_engine
    from ..pipeline.builders import build_engines

    config = pipeline_config_for(args)
    common = dict(lock_timeout_s=args.lock_timeout, prune=not args.keep_old)
    if args.model:
        engines = {f'model{i}': provision_engine(model, config.engine, **common)
                   for i, model in enumerate(args.model)}
    else:
        engines = build_engines(config, **common)
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
