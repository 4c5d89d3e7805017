#!/usr/bin/env python3
"""Runtime benchmark of issue 3, unattended: ONNX Runtime vs torch eager on NiteDR (CleanNet + FusionNet).

Runs ``nitedr bench --mode nitedr`` (each case in its own process: both networks, the whole pipeline call,
torch eager on the same weights interleaved frame by frame) for
  1. the NiteDR paper configuration at 256x256, ONNX Runtime CPU vs torch eager (target: >= 1.5x),
  2. the NiteDR realtime configuration at 640x360 and 1280x720 (fps), also against torch eager,
and writes ``runtime_*.json`` / ``.png`` per case plus ``runtime_summary.md`` with the machine they ran on,
to a scratch folder (to benchmarks/results with ``--publish``). ``--sweep`` adds ONNX Runtime
graph-optimisation levels and thread counts for the paper case, to explain the ratio. ``--quick`` is
1 warm-up + 1 frame per case at the real sizes; ``--smoke`` the same at 64x64 (checks the script end to
end in about two minutes; numbers meaningless).

    python benchmarks/bench_runtime.py --publish --force  # full run, ~20-30 min on 2 cores
    python benchmarks/bench_runtime.py --quick --force    # one frame per case
    python benchmarks/bench_runtime.py --smoke --output-dir /tmp/bench --force
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path

from bench_output import add_output_arguments, output_dir

from nitedr_ros.fileio import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent

MODE = 'nitedr'  # CleanNet (derain) + FusionNet (fusion): what the node runs by default
CASES = [
    # name, config, height, width, frames, warmup, compare
    ('paper_256', 'paper', 256, 256, 5, 1, True),
    ('realtime_360p', 'realtime', 360, 640, 10, 2, True),
    ('realtime_720p', 'realtime', 720, 1280, 5, 1, True),
]


def bench(args: argparse.Namespace, name: str, config: str, height: int, width: int,
          frames: int, warmup: int, compare: bool, extra: list[str] | None = None) -> dict | None:
    if args.quick or args.smoke:
        frames, warmup = 1, 1
    if args.smoke:
        height = width = 64
    cmd = [sys.executable, '-m', 'nitedr_ros', 'bench', '--mode', MODE, '--config', config,
           '--backend', 'onnxruntime-cpu', '--height', str(height), '--width', str(width),
           '--frames', str(frames), '--warmup', str(warmup), '--threads', str(args.threads), '--json',
           '--output-dir', str(args.output_dir), '--name', f'runtime_{name}', *(extra or [])]
    if compare:
        cmd += ['--compare', 'torch']
    if args.force:
        cmd.append('--force')
    print('$', ' '.join(cmd[1:]), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    roles = ', '.join(f'{role} {ms:.1f}' for role, ms in result['inference_p50_by_role'].items())
    line = (f'  {name}: ORT inference p50 {result["stages"]["inference_ms"]["p50"]:.1f} ms ({roles}), '
            f'fps {result["fps"]:.3f}')
    if 'speedup' in result:
        line += (f'; torch p50 {result["compare"]["stages"]["inference_ms"]["p50"]:.1f} ms, '
                 f'speedup {result["speedup"]:.2f}x')
    print(line, flush=True)
    return result


def summary(results: dict[str, dict], args: argparse.Namespace) -> str:
    machine = next(iter(results.values()))['machine']
    versions = ', '.join(f'{k} {v}' for k, v in machine['versions'].items())
    lines = [
        '# Runtime benchmark (NiteDR: CleanNet + FusionNet, CPU)',
        '',
        f'Written by `benchmarks/bench_runtime.py` on {_dt.date.today().isoformat()}'
        f'{" (quick run: 1 frame per case)" if args.quick else ""}'
        f'{" (SMOKE run: 1 frame per case at 64x64, numbers meaningless)" if args.smoke else ""}.',
        f'Machine: {machine["cpu_model"]}, {machine["usable_cpus"]} usable CPUs, '
        f'{machine.get("memory_gb", "?")} GB, load average at the end {machine.get("load_average")}; '
        f'{machine["platform"]}, Python {machine["python"]}; {versions}.',
        f'Threads: {args.threads or "library defaults"} (ONNX Runtime intra-op and torch). Each case is '
        f'`nitedr bench --mode {MODE}`: the whole pipeline call with both networks (derain, then fusion of '
        'the derained RGB with the thermal frame); inference = sum of both networks. Backend and torch run '
        'interleaved frame by frame on the same random weights (seed 0) and frames.',
        '',
        '| case | networks/config | size (HxW) | frames | ORT inference p50 / p95 ms (derain + fusion) '
        '| ORT total p50 ms | ORT fps | torch inference p50 ms | torch fps | speedup (inference p50) |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for name, r in results.items():
        inf, total = r['stages']['inference_ms'], r['stages']['total_ms']
        torch_p50 = torch_fps = speedup = '-'
        if 'compare' in r:
            torch_p50 = f'{r["compare"]["stages"]["inference_ms"]["p50"]:.1f}'
            torch_fps = f'{r["compare"]["fps"]:.3f}'
            speedup = f'{r["speedup"]:.2f}x'
        opts = f' (ORT {r["ort_optimization"]})' if r.get('ort_optimization', 'all') != 'all' else ''
        threads = f', {r["threads"]} threads' if r.get('threads') else ''
        roles = ' + '.join(f'{ms:.1f}' for ms in r.get('inference_p50_by_role', {}).values())
        lines.append(f'| {name} | {r["network"]}/{r["config"]}{opts}{threads} | {r["height"]}x{r["width"]} '
                     f'| {r["frames"]} | {inf["p50"]:.1f} / {inf["p95"]:.1f} ({roles}) | {total["p50"]:.1f} '
                     f'| '
                     f'{r["fps"]:.3f} | {torch_p50} | {torch_fps} | {speedup} |')
    lines += ['', 'Per-case JSON (all percentiles, raw samples, engine description) and latency histograms: '
              '`benchmarks/results/runtime_<case>.{json,png}`.', '']
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser)
    parser.add_argument('--threads', type=int, default=0, help='0 = library defaults (all cores)')
    parser.add_argument('--quick', action='store_true', help='1 warm-up + 1 timed frame per case')
    parser.add_argument('--smoke', action='store_true', help='as --quick, at 64x64 (checks the script)')
    parser.add_argument('--sweep', action='store_true', help='also ORT optimisation levels / threads (paper)')
    parser.add_argument('--only', nargs='*', default=None, help='case names to run (default: all)')
    parser.add_argument('--force', action='store_true', help='overwrite existing result files')
    args = parser.parse_args()
    args.output_dir = output_dir(args)
    summary_path = args.output_dir / 'runtime_summary.md'
    if summary_path.exists() and not args.force:
        print(f'{summary_path} exists; pass --force to overwrite it', file=sys.stderr)
        return 2
    results: dict[str, dict] = {}
    for case in CASES:
        if args.only is not None and case[0] not in args.only:
            continue
        result = bench(args, *case)
        if result is not None:
            results[case[0]] = result
    if args.sweep:
        for level in ('basic', 'extended'):
            result = bench(args, f'paper_256_ort_{level}', 'paper', 256, 256, 3, 1, False,
                           ['--ort-optimization', level])
            if result is not None:
                results[f'paper_256_ort_{level}'] = result
        for threads in (1, 2):
            sweep_args = argparse.Namespace(**{**vars(args), 'threads': threads})
            result = bench(sweep_args, f'paper_256_threads{threads}', 'paper', 256, 256, 3, 1, True)
            if result is not None:
                results[f'paper_256_threads{threads}'] = result
    if not results:
        print('no benchmark case succeeded', file=sys.stderr)
        return 1
    write_text_atomic(summary_path, summary(results, args))
    print(f'wrote {summary_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
