#!/usr/bin/env python3
"""Derain models beyond their training rain: PSNR-Y gain per validation group, models side by side.

Runs ``nitedr_ros.evaluation.generalisation`` (images at most 480 px) on each model: the RoadScene-rain
validation split, paired rain sets never trained on, renderer styles held out of training, and rain-free
night images (output against the image itself: how much a model damages a clean frame). Default models:
the shipped derain models; add earlier ones by name, e.g. the first shipped models from git history:

    git show <commit>:models/cleannet_realtime.onnx > /tmp/cleannet_first.onnx
    python benchmarks/bench_generalisation.py --model "cleannet, first=/tmp/cleannet_first.onnx" --publish

Writes ``generalisation.{json,md}`` to a scratch folder (benchmarks/results with ``--publish``).
"""

from __future__ import annotations

import argparse
import json
import sys

from bench_output import add_output_arguments, output_dir, write_result

from nitedr_ros.machine import machine_info

SHIPPED = ('cleannet_realtime', 'mspfn_realtime', 'rainmer_realtime')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', action='append', default=[], metavar='NAME=PATH',
                        help='a model to evaluate before the shipped ones (repeatable)')
    parser.add_argument('--max-side', type=int, default=480, help='images are resized to this long side')
    add_output_arguments(parser)
    args = parser.parse_args()
    results_dir = output_dir(args)
    from nitedr_ros.evaluation.generalisation import (
        compare_markdown,
        evaluate_generalisation,
        generalisation_markdown,
    )
    from nitedr_ros.paths import models_dir, shared_data_dir

    data = shared_data_dir()
    if data is None:
        print('the shared data folder is needed (NITEDR_DATA)', file=sys.stderr)
        return 2
    models = []
    for entry in args.model:
        name, sep, path = entry.partition('=')
        if not sep:
            parser.error(f'--model {entry!r}: expected NAME=PATH')
        models.append((name, path))
    models += [(f'{stem} (shipped)', str(models_dir() / f'{stem}.onnx')) for stem in SHIPPED]
    rows = []
    for name, path in models:
        summary = evaluate_generalisation(path, data, max_side=args.max_side)
        rows.append((name, summary))
        print(name, {group: round(r['gain_db'], 2) for group, r in summary['groups'].items()}, flush=True)
    text = ('# Derain models beyond their training rain\n\nOutput PSNR-Y (gain over the rainy input) per '
            'validation group; RoadScene-rain validation = the recorded split; the other groups were never '
            f'trained on (`nitedr_ros/evaluation/generalisation.py`, images at most {args.max_side} px). '
            'Rain-free night images: PSNR-Y of the output against the image itself.\n\n'
            + compare_markdown(rows) + '\n'
            + '\n'.join(generalisation_markdown(summary, f'## {name}') for name, summary in rows)
            + f'\nMachine: {machine_info()}\n')
    write_result(results_dir, 'generalisation.md', text)
    write_result(results_dir, 'generalisation.json',
                 json.dumps({name: summary for name, summary in rows}, indent=1, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
