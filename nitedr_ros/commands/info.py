"""``nitedr info``: parameters, GFLOPs at HxW and the tensor contract of every network/configuration."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from ..errors import ConfigError
from ..modelspec import CONFIGS, NETWORKS, NetworkSpec, check_config, get_spec

HELP = 'parameters, GFLOPs at a given size and input/output spec of each network and configuration'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--network', choices=sorted(NETWORKS), help='only this network (default: all)')
    parser.add_argument('--config', choices=CONFIGS, help='only this configuration (default: all)')
    parser.add_argument('--height', type=int, default=720, help='image height for FLOPs (default 720)')
    parser.add_argument('--width', type=int, default=1280, help='image width for FLOPs (default 1280)')
    parser.add_argument('--json', action='store_true', help='print a JSON list of objects')
    parser.add_argument('--parameters', action='store_true',
                        help="print the node's parameter table (Markdown; docs/PARAMETERS.md is this)")


def _tensors(spec_tensors) -> list[dict[str, Any]]:
    return [{'name': t.name, 'channels': t.channels, 'description': t.description} for t in spec_tensors]


def _build(network: str, config: str):
    """The network with meta-device weights when it can be built so (no memory, no init time)."""
    import torch

    from ..networks import build_network

    try:
        with torch.device('meta'):
            return build_network(network, config)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - a module whose __init__ needs real data: build it on the CPU
        return build_network(network, config)


def describe(network: str, config: str, height: int, width: int) -> dict[str, Any]:
    """One row of ``nitedr info``: counts at ``height x width`` (padded up to the network's multiple)."""
    from ..networks.complexity import count_flops, count_params

    spec: NetworkSpec = get_spec(network)
    check_config(config)
    padded_h = math.ceil(height / spec.multiple_of) * spec.multiple_of
    padded_w = math.ceil(width / spec.multiple_of) * spec.multiple_of
    model = _build(network, config)
    params = count_params(model)
    flops = count_flops(model, network, padded_h, padded_w)
    row: dict[str, Any] = {
        'network': network,
        'config': config,
        'title': spec.title,
        'params': params,
        'gflops': round(flops / 1e9, 3),
        'height': padded_h,
        'width': padded_w,
        'multiple_of': spec.multiple_of,
        'inputs': _tensors(spec.inputs),
        'outputs': _tensors(spec.outputs),
    }
    if config == 'paper' and spec.published_params:
        row['published_params'] = spec.published_params
        row['params_vs_published_pct'] = round(100.0 * (params - spec.published_params)
                                               / spec.published_params, 3)
    if config == 'paper' and spec.third_party_params:
        row['third_party_params'] = spec.third_party_params
        row['params_vs_third_party_pct'] = round(100.0 * (params - spec.third_party_params)
                                                 / spec.third_party_params, 3)
    return row


def collect(networks: list[str], configs: list[str], height: int, width: int) -> list[dict[str, Any]]:
    rows = [describe(n, c, height, width) for n in networks for c in configs]
    paper = {r['network']: r['gflops'] for r in rows if r['config'] == 'paper'}
    for row in rows:
        if row['config'] != 'paper' and paper.get(row['network']) and row['gflops']:
            row['paper_gflops_ratio'] = round(paper[row['network']] / row['gflops'], 1)
    return rows


def _io(tensors: list[dict[str, Any]]) -> str:
    return ', '.join(f'{t["name"]}[{t["channels"]}]' for t in tensors)


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '(nothing to show)'
    size = f'{rows[0]["width"]}x{rows[0]["height"]}'
    header = f'{"network":<10} {"config":<9} {"params":>12} {"reference":>14} {"GFLOPs@" + size:>16}  ' \
             f'{"paper/this":>10}  {"inputs":<26} {"outputs":<38} {"multiple":>8}'
    lines = [header, '-' * len(header)]
    for r in rows:
        ratio = f'{r["paper_gflops_ratio"]:g}x' if 'paper_gflops_ratio' in r else ''
        reference = ''
        if 'published_params' in r:
            reference = f'{r["published_params"]:,}'
        elif 'third_party_params' in r:
            reference = f'{r["third_party_params"]:,}*'
        lines.append(f'{r["network"]:<10} {r["config"]:<9} {r["params"]:>12,} {reference:>14} '
                     f'{r["gflops"]:>16,.2f}  {ratio:>10}  {_io(r["inputs"]):<26} {_io(r["outputs"]):<38} '
                     f'{r["multiple_of"]:>8}')
    notes = [f'{r["network"]} paper: {r["params"]:,} parameters vs {r["published_params"]:,} published '
             f'({r["params_vs_published_pct"]:+.2f}%)' for r in rows if 'published_params' in r]
    notes += [f'{r["network"]} paper: {r["params"]:,} parameters vs {r["third_party_params"]:,} third-party '
              f'figure, no published code ({r["params_vs_third_party_pct"]:+.2f}%)'
              for r in rows if 'third_party_params' in r]
    if any('third_party_params' in r for r in rows):
        notes.append('reference: published parameter count; * = third-party figure (no published code)')
    if any(r['width'] != rows[0]['width'] or r['height'] != rows[0]['height'] for r in rows):
        notes.append('sizes differ per network: each was padded up to its multiple (see --json)')
    return '\n'.join(lines + (['', *notes] if notes else []))


def run(args: argparse.Namespace) -> int:
    if args.parameters:
        from ..core.parameters import parameters_markdown

        print(parameters_markdown(), end='')
        return 0
    if args.height <= 0 or args.width <= 0:
        raise ConfigError(f'--height and --width must be positive, got {args.height}x{args.width}')
    networks = [args.network] if args.network else list(NETWORKS)
    configs = [args.config] if args.config else list(CONFIGS)
    rows = collect(networks, configs, args.height, args.width)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
