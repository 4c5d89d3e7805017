#!/usr/bin/env python3
"""``nitedr bag derain`` throughput: synchronized sets (frames) per second over a recorded bag.

Makes a night-rain sample bag (RGB 20 Hz + thermal 10 Hz, default 1280x720, 3 s) in a temporary folder and
derains it in nitedr mode with ONNX Runtime CPU, twice:

- ``tool``: tiny pass-through models (no real inference): the cost of the tool itself (bag read, ROS 1/2
  decode, synchronizer, image conversion, serialization, bag write, diagnostics);
- ``shipped``: the shipped realtime models (models/cleannet_realtime.onnx + fusionnet_realtime.onnx), when
  they exist.

Writes ``bag_derain_<W>x<H>.{json,md}`` to a scratch folder, or to benchmarks/results with ``--publish``;
shows a progress bar per case.

    python benchmarks/bench_bag_derain.py [--width 1280 --height 720] [--duration 3] [--threads 0] [--publish]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench_output import TEMP_PREFIX, add_output_arguments, output_dir, write_result

from nitedr_ros.engines.variants import existing_variants
from nitedr_ros.fileio import scratch_folder
from nitedr_ros.machine import machine_info


def run_case(name: str, bag: Path, out: Path, models: dict[str, str], threads: int) -> dict:
    from nitedr_ros.transports.bag.derain import BagDerainOptions, derain_bag

    print(f'case {name}:', flush=True)
    options = BagDerainOptions(input=bag, output=out, mode='nitedr', backend='onnxruntime-cpu', models=models,
                               overrides={'threads': threads}, progress=True)
    start = time.perf_counter()
    summary = derain_bag(options)
    wall = time.perf_counter() - start
    return {'case': name, 'models': models, 'sets': summary['sets_made'], 'wall_s': wall,
            'sets_per_s': summary['sets_made'] / wall, 'messages_copied': summary['messages_copied'],
            'messages_per_s': summary['messages_copied'] / wall, 'latency_ms': summary['latency_ms'],
            'dropped': summary['dropped']}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--duration', type=float, default=3.0)
    parser.add_argument('--threads', type=int, default=0, help='ONNX Runtime intra-op threads (0 = default)')
    add_output_arguments(parser)
    args = parser.parse_args()
    results_dir = output_dir(args)

    from nitedr_ros.engines import tiny_models
    from nitedr_ros.paths import models_dir
    from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

    cases = []
    with scratch_folder(TEMP_PREFIX) as folder:
        bag = folder / 'sample'
        spec = SampleSpec(duration_s=args.duration, width=args.width, height=args.height,
                          cameras=('rgb', 'thermal'))
        print(f'making the {args.width}x{args.height} sample bag ({args.duration:g} s)', flush=True)
        make_sample(bag, spec)
        tiny = {'derain': str(tiny_models.identity_model(folder / 'cleannet_identity.onnx')),
                'fusion': str(tiny_models.blend_fusion_model(folder / 'fusionnet_blend.onnx', 0.5))}
        cases.append(run_case('tool', bag, folder / 'out_tool', tiny, args.threads))
        shipped = {'derain': models_dir() / 'cleannet_realtime.onnx',
                   'fusion': models_dir() / 'fusionnet_realtime.onnx'}
        if all(existing_variants(path) for path in shipped.values()):
            cases.append(run_case('shipped', bag, folder / 'out_shipped',
                                  {role: str(path) for role, path in shipped.items()}, args.threads))
        else:
            print(f'shipped models not found in {models_dir()}: only the tool case was measured')
        bag_mb = sum(f.stat().st_size for f in bag.rglob('*') if f.is_file()) / 1e6

    result = {'benchmark': 'bag_derain', 'width': args.width, 'height': args.height,
              'duration_s': args.duration, 'bag_mb': bag_mb, 'rates_hz': {'rgb': spec.rgb_hz,
                                                                          'thermal': spec.thermal_hz},
              'cases': cases, 'machine': machine_info(), 'time': time.strftime('%Y-%m-%d %H:%M:%S')}
    stem = f'bag_derain_{args.width}x{args.height}'
    write_result(results_dir, f'{stem}.json', json.dumps(result, indent=2))
    lines = [f'# bag derain throughput, {args.width}x{args.height}, nitedr mode, ONNX Runtime CPU', '',
             f'Sample bag: RGB {spec.rgb_hz:g} Hz + thermal {spec.thermal_hz:g} Hz, {args.duration:g} s, '
             f'{bag_mb:.0f} MB.', '',
             '| case | sets | wall s | sets/s | input msgs/s | processing p50 ms | inference p50 ms |',
             '|---|---|---|---|---|---|---|']
    for case in cases:
        processing = case['latency_ms'].get('processing_time_ms', {}).get('p50', float('nan'))
        inference = case['latency_ms'].get('inference_time_ms', {}).get('p50', float('nan'))
        lines.append(f'| {case["case"]} | {case["sets"]} | {case["wall_s"]:.2f} | {case["sets_per_s"]:.1f} | '
                     f'{case["messages_per_s"]:.0f} | {processing:.1f} | {inference:.1f} |')
    lines += ['', f'Machine: {result["machine"]}', '']
    print('\n'.join(lines))
    write_result(results_dir, f'{stem}.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
