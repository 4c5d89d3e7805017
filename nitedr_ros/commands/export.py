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


def _checkpoint_header(args: argparse.Namespace) -> tuple[dict | None, str | None, str | None]:
    """(payload, network, config) of ``--checkpoint`` (read, not built), else the options; checked."""
    if not args.checkpoint:
        if not args.network or not args.config:
            raise ConfigError('give --network and --config (or --checkpoint)')
        return None, args.network, args.config
    from ..networks.checkpoint import read_checkpoint

    payload = read_checkpoint(args.checkpoint)
    for option, stored in (('network', payload['network']), ('config', payload['config'])):
        given = getattr(args, option)
        if given and given != stored:
            raise ConfigError(f'--{option} {given} does not match the checkpoint ({stored})')
    return payload, payload['network'], payload['config']


def _load_model(args: argparse.Namespace, payload: dict | None, network: str, config: str):
    """(model, metadata) from the checkpoint payload or random initialisation (seed 0)."""
    if payload is not None:
        from ..networks.checkpoint import checkpoint_metadata, model_from_payload

        return model_from_payload(payload, args.checkpoint), checkpoint_metadata(args.checkpoint, payload)
    import torch

    from ..networks import build_network

    torch.manual_seed(0)
    return build_network(network, config), {'nitedr.weights': 'random'}


def run(args: argparse.Namespace) -> int:
    from ..export.onnx_export import export_network, fp16_path_for
    from ..export.trt_compat import check_onnx
    from ..paths import ensure_writable_output

    payload, network, config = _checkpoint_header(args)
    output = Path(args.output or default_model_filename(network, config))
    # Fail before the (slow) model build when an output cannot be written.
    ensure_writable_output(output, args.force)
    if not args.no_fp16:
        ensure_writable_output(fp16_path_for(output), args.force)
    model, metadata = _load_model(args, payload, network, config)
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
            'parity_onnxruntime': result.parity_onnxruntime,
            'fallback_reason': result.fallback_reason, 'weights': metadata['nitedr.weights'],
            'tensorrt_check': [r.to_dict() for r in reports],
        }, indent=2))
    else:
        sizes = ', '.join(f'{h}x{w}' for h, w in result.parity_sizes)
        print(f'wrote {result.path} ({network}/{config}, {result.exporter} exporter, opset {result.opset})')
        if result.fallback_reason:
            print(f'  legacy exporter not used: {result.fallback_reason}')
        if result.parity_max_abs is not None:
            print(f'  parity: max |ONNX Runtime - torch| = {result.parity_max_abs:.3g} at {sizes} '
                  f'({result.parity_onnxruntime})')
        if result.fp16_path:
            print(f'wrote {result.fp16_path} (fp16 weights and compute, fp32 I/O); '
                  f'max |fp16 - fp32| = {result.fp16_max_abs:.3g}')
        for report in reports:
            print(report.format())
    return 0 if all(r.ok for r in reports) else 1
