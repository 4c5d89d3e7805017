"""``nitedr check-onnx FILE...``: will the TensorRT ONNX parser take these graphs? (exit 0 yes, 1 no)."""

from __future__ import annotations

import argparse
import json

from ..export.trt_compat import DEFAULT_MAX_HW, check_onnx

HELP = 'check ONNX files against the TensorRT ONNX parser op table and limits (exit 1 when not ok)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('files', nargs='+', metavar='FILE', help='ONNX file(s) to check')
    parser.add_argument('--max-height', type=int, default=DEFAULT_MAX_HW[0],
                        help=f'largest input height bounds are derived at (default {DEFAULT_MAX_HW[0]})')
    parser.add_argument('--max-width', type=int, default=DEFAULT_MAX_HW[1],
                        help=f'largest input width bounds are derived at (default {DEFAULT_MAX_HW[1]})')
    parser.add_argument('--json', action='store_true', help='print one JSON report per file (a list)')


def run(args: argparse.Namespace) -> int:
    reports = [check_onnx(path, max_hw=(args.max_height, args.max_width)) for path in args.files]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for report in reports:
            print(report.format())
    return 0 if all(r.ok for r in reports) else 1
