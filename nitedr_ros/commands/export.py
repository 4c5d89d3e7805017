"""``nitedr export``: a network (random or checkpoint weights) to ONNX + fp16 ONNX, checked."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from ..modelspec import CONFIGS, NETWORKS, default_model_filename

HELP = 'export a network to ONNX (fp32 + fp16 variant) with parity and TensorRT checks'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--network', choices=sorted(NETWORKS),
                        help='network to export (default: the checkpoint\'s)')
    parser.add_argument('--config', choices=CONFIGS, help='configuration (default: the checkpoint\'s)')
    parser.add_argument('--checkpoint', help='weights to export (default: random initialisation)')
    parser.add_argument('--output', help='ONNX file to write (default: ./<network>_<config>.onnx)')
    parser.add_argument('--force', action='store_true', help='overwrite existing output files')
    parser.add_argument('--opset', type=int, default=19, help='ONNX opset (>= 19, default 19)')
    parser.add_argument('--no-fp16', action='store_true', help='do not write the <stem>.fp16.onnx variant')
    parser.add_argument('--height', type=int, default=64, help='trace/parity height (default 64)')
    parser.add_argument('--width', type=int, default=64, help='trace/parity width (default 64)')
    parser.add_argument('--exporter', choices=('auto', 'legacy', 'dynamo'), default='auto',
                        help='torch exporter (default auto: legacy, dynamo where legacy fails)')
    parser.add_argument('--json', action='store_true', help='print the result as JSON')


def _load_model(args: argparse.Namespace):
    """(model, network, config, metadata) from a checkpoint or random initialisation."""
    if args.checkpoint:
        from ..networks.checkpoint import load_checkpoint

        model, payload = load_checkpoint(args.checkpoint)
        for option, stored in (('network', payload['network']), ('config', payload['config'])):
            given = getattr(args, option)
            if given and given != stored:
                raise ConfigError(f'--{option} {given} does not match the checkpoint ({stored})')
        metadata = {'nitedr.weights': 'checkpoint', 'nitedr.checkpoint': Path(args.checkpoint).name}
        if payload.get('overrides'):
            metadata['nitedr.overrides'] = payload['overrides']
        if payload.get('meta'):
            metadata['nitedr.training'] = payload['meta']
        return model, payload['network'], payload['config'], metadata
    if not args.network or not args.config:
        raise ConfigError('give --network and --config (or --checkpoint)')
    import torch

    from ..networks import build_network

    torch.manual_seed(0)
    model = build_network(args.network, args.config)
    return model, args.network, args.config, {'nitedr.weights': 'random'}


def run(args: argparse.Namespace) -> int:
    from ..export.onnx_export import export_network
    from ..export.trt_compat import check_onnx
    from ..paths import ensure_writable_output

    if args.network and args.config and not args.checkpoint:
        default_name = default_model_filename(args.network, args.config)
    else:
        default_name = None
    if args.output:  # fail before the (slow) model build when the output cannot be written
        ensure_writable_output(args.output, args.force)
    elif default_name:
        ensure_writable_output(default_name, args.force)
    model, network, config, metadata = _load_model(args)
    output = Path(args.output or default_model_filename(network, config))
    if metadata['nitedr.weights'] == 'random':
        print(f'note: no --checkpoint given: exporting randomly initialised {network}/{config} weights '
              f'(for structure and speed tests, not for deraining)')
    result = export_network(model, network, config, output, opset=args.opset, fp16=not args.no_fp16,
                            trace_hw=(args.height, args.width), force=args.force, metadata=metadata,
                            exporter=args.exporter)
    reports = [check_onnx(result.path)] + ([check_onnx(result.fp16_path)] if result.fp16_path else [])
    if args.json:
        print(json.dumps({
            'network': network, 'config': config, 'path': str(result.path),
            'fp16_path': str(result.fp16_path) if result.fp16_path else None,
            'exporter': result.exporter, 'opset': result.opset, 'parity_max_abs': result.parity_max_abs,
            'fp16_max_abs': result.fp16_max_abs, 'parity_sizes': [list(s) for s in result.parity_sizes],
            'fallback_reason': result.fallback_reason, 'weights': metadata['nitedr.weights'],
            'tensorrt_check': [r.to_dict() for r in reports],
        }, indent=2))
    else:
        sizes = ', '.join(f'{h}x{w}' for h, w in result.parity_sizes)
        print(f'wrote {result.path} ({network}/{config}, {result.exporter} exporter, opset {result.opset})')
        if result.fallback_reason:
            print(f'  legacy exporter not used: {result.fallback_reason}')
        print(f'  parity: max |ONNX Runtime - torch| = {result.parity_max_abs:.3g} at {sizes}')
        if result.fp16_path:
            print(f'wrote {result.fp16_path} (fp16 weights and compute, fp32 I/O); '
                  f'max |fp16 - fp32| = {result.fp16_max_abs:.3g}')
        for report in reports:
            print(report.format())
    return 0 if all(r.ok for r in reports) else 1
