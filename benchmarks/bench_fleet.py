#!/usr/bin/env python3
"""Fleet throughput on this machine: bags per minute with 1 and 2 workers, and the scheduling overhead per
bag against ``nitedr bag derain`` in a loop.

Makes an archive of N sample bags (RGB 20 Hz + thermal 10 Hz, default 8 bags x 3 s at 320x240) and derains
it, nitedr mode, with

- ``bag derain loop (CLI)``: ``nitedr bag derain`` once per bag from a shell-like loop (a process start,
  imports and a pipeline load per bag: what people do without the fleet);
- ``bag derain loop (in-process)``: ``derain_bag`` per bag in one process, a new pipeline each time;
- ``fleet local, W workers``: ``nitedr fleet derain --address local --workers W`` (W = 1, 2);
- ``fleet Ray, W workers``: ``--address start`` (a one-machine Ray on loopback; Ray's start-up is reported
  separately), when Ray is installed.

Overhead per bag = (fleet wall time with 1 worker - in-process loop wall time) / bags: what planning, the
manifest, the worker processes and the scheduler add. Backend: the shipped ONNX models on the CPU
(``--backend identity`` measures the tool alone). Writes ``fleet.{json,md}`` to a scratch folder
(benchmarks/results with ``--publish``).

    python benchmarks/bench_fleet.py [--bags 8] [--duration 3] [--width 320 --height 240] [--publish]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_output import TEMP_PREFIX, add_output_arguments, output_dir, write_result

from nitedr_ros.fileio import scratch_folder
from nitedr_ros.machine import machine_info


def make_archive(folder: Path, bags: int, duration: float, width: int, height: int) -> list[Path]:
    from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

    paths = []
    for index in range(bags):
        path = folder / 'archive' / f'drive{index // 4}' / f'bag{index}'
        make_sample(path, SampleSpec(duration_s=duration, width=width, height=height, seed=index,
                                     cameras=('rgb', 'thermal')))
        paths.append(path)
    return paths


def backend_args(args: argparse.Namespace) -> list[str]:
    return ['--backend', args.backend, '--param', 'threads=1']


def timed(name: str, work) -> dict:
    print(f'{name} ...', flush=True)
    started = time.perf_counter()
    extra = work() or {}
    wall = time.perf_counter() - started
    print(f'  {wall:.1f} s', flush=True)
    return {'case': name, 'wall_s': wall, **extra}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bags', type=int, default=8)
    parser.add_argument('--duration', type=float, default=3.0)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--backend', default='onnxruntime-cpu', help='onnxruntime-cpu (shipped models) or '
                                                                     'identity (the tool alone)')
    parser.add_argument('--no-ray', action='store_true', help='skip the Ray cases')
    add_output_arguments(parser)
    args = parser.parse_args()
    results_dir = output_dir(args)
    from nitedr_ros.transports.bag.derain import BagDerainOptions, derain_bag

    cases = []
    with scratch_folder(TEMP_PREFIX) as folder:
        print(f'making {args.bags} sample bags ({args.duration:g} s, {args.width}x{args.height})', flush=True)
        bags = make_archive(folder, args.bags, args.duration, args.width, args.height)
        archive = folder / 'archive'

        def cli_loop() -> None:
            for index, bag in enumerate(bags):
                subprocess.run([sys.executable, '-m', 'nitedr_ros', 'bag', 'derain', str(bag),
                                str(folder / 'cli' / str(index)), '--no-progress', *backend_args(args)],
                               check=True, capture_output=True)

        def in_process_loop() -> None:
            for index, bag in enumerate(bags):
                derain_bag(BagDerainOptions(input=bag, output=folder / 'loop' / str(index),
                                            backend=args.backend, overrides={'threads': 1}, progress=False))

        def fleet(address: str, workers: int, out: str):
            def run() -> dict:
                done = subprocess.run([sys.executable, '-m', 'nitedr_ros', 'fleet', 'derain', str(archive),
                                       str(folder / out), '--address', address, '--workers', str(workers),
                                       '--no-progress', '--json', *backend_args(args)],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(done.stderr[-2000:])
                summary = json.loads(done.stdout[done.stdout.index('{'):])
                return {'done': summary['done'], 'frames_in': summary['frames_in']}
            return run

        cases.append(timed('bag derain loop (CLI)', cli_loop))
        cases.append(timed('bag derain loop (in-process)', in_process_loop))
        for workers in (1, 2):
            name = f'fleet local, {workers} worker(s)'
            cases.append(timed(name, fleet('local', workers, f'local{workers}')))
        if not args.no_ray:
            try:
                import ray
            except ImportError:
                print('Ray is not installed: the Ray cases are skipped', flush=True)
            else:
                start = time.perf_counter()
                ray.init(num_cpus=2, include_dashboard=False, _node_ip_address='127.0.0.1',
                         log_to_driver=False)
                ray_start_s = time.perf_counter() - start
                ray.shutdown()
                for workers in (1, 2):
                    case = timed(f'fleet Ray (start), {workers} worker(s)', fleet('start', workers,
                                                                                  f'ray{workers}'))
                    case['ray_start_s'] = ray_start_s
                    cases.append(case)

    loop = next(c for c in cases if c['case'] == 'bag derain loop (in-process)')['wall_s']
    for case in cases:
        case['bags_per_min'] = args.bags / case['wall_s'] * 60.0
        case['overhead_per_bag_s'] = (case['wall_s'] - loop) / args.bags
    result = {'benchmark': 'fleet', 'bags': args.bags, 'duration_s': args.duration,
              'size': f'{args.width}x{args.height}', 'backend': args.backend, 'cases': cases,
              'machine': machine_info()}
    write_result(results_dir, 'fleet.json', json.dumps(result, indent=2, default=str))
    lines = [f'# Fleet derain on this machine: {args.bags} bags x {args.duration:g} s, '
             f'{args.width}x{args.height}, nitedr mode, backend {args.backend}', '',
             '| case | wall s | bags/min | vs the in-process loop, per bag s |', '|---|---|---|---|']
    for case in cases:
        lines.append(f'| {case["case"]} | {case["wall_s"]:.1f} | {case["bags_per_min"]:.1f} | '
                     f'{case["overhead_per_bag_s"]:+.2f} |')
    ray_start = next((c['ray_start_s'] for c in cases if 'ray_start_s' in c), None)
    if ray_start is not None:
        lines += ['', f'Ray start-up on this machine (ray.init, 2 CPUs, loopback): {ray_start:.1f} s, '
                      'included in the Ray rows.']
    lines += ['', f'Machine: {result["machine"]}', '']
    print('\n'.join(lines))
    write_result(results_dir, 'fleet.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
