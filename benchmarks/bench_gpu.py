#!/usr/bin/env python3
"""GPU benchmark: each realtime network and each pipeline mode, host uint8 in -> host uint8 out.

For every case (a network alone, or a whole pipeline mode through ``DerainPipeline``) at 1280x720 and 640x360,
batch 1, the torch-cuda backend in four settings:

  eager-fp32       no graphs, fp32
  fp16             half weights and activations, channels-last
  fp16+graphs      + one CUDA graph per input size (the default of the node)
  fp16+graphs+compile  + torch.compile

and, where installed (not on the machine this was written on), TensorRT and ONNX Runtime GPU rows on the
shipped ONNX files. Reported per row: p50/p99 latency and fps of the whole call (host bytes in, host bytes
out), the engine's own split (network time by CUDA events, the pinned host<->device copies), peak GPU memory,
and the achieved TFLOP/s from the networks' FLOP counts (``networks.complexity``) against the device's
measured fp16 matrix-multiply rate, so the distance to the physical limit is a number. The paper
configurations run once at 720p (eager fp16) for scale.

Weights: the shipped ``models/<network>_realtime.pt`` where present, else seeded random weights (timing does
not depend on them; the table says which).

    python benchmarks/bench_gpu.py --publish --force                           # on a CUDA machine
    python benchmarks/bench_gpu.py --device cpu --smoke --output-dir /tmp/b    # CI: the script end to end

Results go to a scratch folder unless ``--publish`` (benchmarks/results/gpu) or ``--output-dir``; they are
rewritten after every row, so a run cut short by its GPU lease keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from bench_output import add_output_arguments, output_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nitedr_ros.fileio import write_text_atomic  # noqa: E402
from nitedr_ros.machine import machine_info  # noqa: E402
from nitedr_ros.modes import DEFAULT_NETWORKS, MODE_ROLES, MODE_STREAMS  # noqa: E402
from nitedr_ros.pipeline.frames import ImageFrame  # noqa: E402
from nitedr_ros.pipeline.timing import percentile_summary  # noqa: E402

SIZES = {'720p': (720, 1280), '360p': (360, 640)}
NETWORKS = ('cleannet', 'fusionnet', 'stereoirr', 'rainmer', 'mspfn')
MODES = ('nitedr', 'stereo', 'single', 'full')
VARIANTS = {
    'eager-fp32': dict(precision='fp32', cuda_graphs=False, channels_last=False, torch_compile=False),
    'fp16': dict(precision='fp16', cuda_graphs=False, channels_last=True, torch_compile=False),
    'fp16+graphs': dict(precision='fp16', cuda_graphs=True, channels_last=True, torch_compile=False),
    'fp16+graphs+compile': dict(precision='fp16', cuda_graphs=True, channels_last=True, torch_compile=True),
}


def say(*parts: object) -> None:
    print(*parts, flush=True)


def network_model(name: str, config: str, seed: int = 0):
    """(torch module, 'shipped weights' | 'random weights') of a network."""
    import torch

    from nitedr_ros.networks import build_network
    from nitedr_ros.networks.checkpoint import load_checkpoint

    shipped = ROOT / 'models' / f'{name}_{config}.pt'
    if config == 'realtime' and shipped.is_file():
        model, _ = load_checkpoint(shipped)
        return model, 'shipped weights'
    torch.manual_seed(seed)
    return build_network(name, config), 'random weights'


def flops(name: str, config: str, height: int, width: int) -> int:
    from nitedr_ros.networks import build_network
    from nitedr_ros.networks.complexity import count_flops

    return count_flops(build_network(name, config), name, height, width)


def matmul_peak_tflops(device: str) -> float | None:
    """Measured fp16 dense matrix-multiply rate (the practical ceiling of tensor-core work)."""
    import torch

    if not device.startswith('cuda'):
        return None
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.float16)
    b = torch.randn(n, n, device=device, dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    end.record()
    end.synchronize()
    return 10 * 2 * n ** 3 / (start.elapsed_time(end) / 1000.0) / 1e12


def frames_for(streams: tuple[str, ...], height: int, width: int, seed: int = 0) -> dict[str, ImageFrame]:
    rng = np.random.default_rng(seed)
    frames = {}
    for stream in streams:
        if stream == 'thermal':
            frames[stream] = ImageFrame(rng.integers(2000, 4000, (height, width), dtype=np.uint16), '16UC1')
        else:
            frames[stream] = ImageFrame(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), 'bgr8')
    return frames


def engine_for(name: str, config: str, variant: dict, device: str):
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.torch_engine import TorchEngine

    model, weights = network_model(name, config)
    backend = 'torch-cuda' if device.startswith('cuda') else 'torch-cpu'
    options = EngineOptions.make(backend, io='uint8', **variant)
    return TorchEngine(model, network=name, config=config, backend=backend, options=options), weights


def time_calls(call, frames: int, warmup: int, sync) -> list[float]:
    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(frames):
        started = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def run_case(kind: str, name: str, config: str, size: str, variant_name: str, args: argparse.Namespace,
             peak: float | None) -> dict:
    """One row: a network (kind 'network') or a pipeline mode (kind 'mode') in one variant."""
    import torch

    from nitedr_ros.modelspec import NETWORKS as SPECS
    from nitedr_ros.pipeline.derain import DerainPipeline

    height, width = SIZES[size] if not args.smoke else (64, 96)
    variant = VARIANTS[variant_name]
    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    roles = MODE_ROLES[name] if kind == 'mode' else ()
    networks = [DEFAULT_NETWORKS[name][r][0] for r in roles] if kind == 'mode' else [name]
    engines, weights = {}, set()
    try:
        if kind == 'mode':
            for role in roles:
                engines[role], w = engine_for(DEFAULT_NETWORKS[name][role][0], config, variant, args.device)
                weights.add(w)
            pipeline = DerainPipeline(name, engines)
            frames = frames_for(MODE_STREAMS[name], height, width)
            results: list = []

            def call() -> None:
                results.append(pipeline.process(frames))
        else:
            engine, w = engine_for(name, config, variant, args.device)
            engines['network'] = engine
            weights.add(w)
            spec = SPECS[name]
            feed = {}
            rng = np.random.default_rng(0)
            for input_name in engine.input_names:
                if input_name == 'channel_order':
                    feed[input_name] = np.array([2, 1, 0], np.int64)
                elif input_name == 'infrared_range':
                    feed[input_name] = np.array([2000.0, 4000.0], np.float32)
                elif input_name == 'infrared_u16':
                    counts = rng.integers(2000, 4000, (1, height, width), dtype=np.uint16).astype('<u2')
                    feed[input_name] = counts.view(np.uint8).reshape(1, height, width, 2)
                else:
                    feed[input_name] = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
            results = []

            def call() -> None:
                engine.infer(feed)
                results.append((engine.last_inference_ms, getattr(engine, 'last_transfer_ms', 0.0)))
            del spec
        times = time_calls(call, args.frames, args.warmup, sync)
    except Exception as exc:  # noqa: BLE001 - a variant that fails is a row that says why
        return {'kind': kind, 'name': name, 'config': config, 'size': size, 'variant': variant_name,
                'error': f'{type(exc).__name__}: {exc}'[:300], 'trace': traceback.format_exc()[-800:]}
    finally:
        for engine in engines.values():
            engine.close()
    summary = percentile_summary(times, (50, 99))
    row = {'kind': kind, 'name': name, 'config': config, 'size': size, 'variant': variant_name,
           'height': height, 'width': width, 'weights': ', '.join(sorted(weights)),
           'p50_ms': summary['p50'], 'p99_ms': summary['p99'], 'fps': 1000.0 / summary['p50'],
           'frames': len(times)}
    if kind == 'network':
        tail = results[-len(times):]
        row['network_ms_p50'] = float(np.median([r[0] for r in tail]))
        row['transfer_ms_p50'] = float(np.median([r[1] for r in tail]))
    else:
        tail = results[-len(times):]
        row['inference_ms_p50'] = float(np.median([r.timings.inference_ms for r in tail]))
        row['transfer_ms_p50'] = float(np.median([r.timings.transfer_ms for r in tail]))
        row['host_pre_post_ms_p50'] = float(np.median([r.timings.preprocess_ms + r.timings.postprocess_ms
                                                       for r in tail]))
    if cuda:
        row['gpu_memory_mib'] = torch.cuda.max_memory_allocated() / 2 ** 20
    total_flops = sum(flops(n, config, height, width) for n in networks)
    row['gflops'] = total_flops / 1e9
    compute_ms = row.get('network_ms_p50') or row.get('inference_ms_p50') or summary['p50']
    row['achieved_tflops'] = total_flops / (compute_ms / 1000.0) / 1e12
    if peak:
        row['of_matmul_peak'] = row['achieved_tflops'] / peak
    return row


def other_backends(args: argparse.Namespace) -> list[dict]:
    """TensorRT / ONNX Runtime GPU rows on the shipped ONNX files, where those are installed."""
    import importlib.util

    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.selection import open_engine

    rows = []
    candidates = []
    if importlib.util.find_spec('tensorrt') is not None:
        candidates.append('tensorrt')
    try:
        import onnxruntime as ort

        if 'CUDAExecutionProvider' in ort.get_available_providers():
            candidates.append('onnxruntime-cuda')
    except ImportError:
        pass
    for backend in candidates:
        for name in NETWORKS:
            model = ROOT / 'models' / f'{name}_realtime.onnx'
            if not model.is_file():
                continue
            for size in ('720p', '360p'):
                height, width = SIZES[size]
                try:
                    engine = open_engine(model, EngineOptions.make(backend, precision='fp16'))
                    rng = np.random.default_rng(0)
                    feed = {n: rng.random((1, 1 if n == 'infrared' else 3, height, width), dtype=np.float32)
                            for n in engine.input_names}
                    times = time_calls(lambda e=engine, f=feed: e.infer(f), args.frames, args.warmup,
                                       lambda: None)
                    s = percentile_summary(times, (50, 99))
                    rows.append({'kind': 'network', 'name': name, 'config': 'realtime', 'size': size,
                                 'variant': f'{backend}-fp16', 'p50_ms': s['p50'], 'p99_ms': s['p99'],
                                 'fps': 1000.0 / s['p50']})
                    engine.close()
                except Exception as exc:  # noqa: BLE001
                    rows.append({'kind': 'network', 'name': name, 'size': size, 'variant': backend,
                                 'error': str(exc)[:300]})
    return rows


def markdown(rows: list[dict], machine: dict, peak: float | None, args: argparse.Namespace) -> str:
    lines = ['# GPU benchmark (torch-cuda backend)', '',
             f'Machine: {machine.get("gpu", machine.get("cpu", "?"))}; torch {machine.get("torch", "?")}; '
             f'measured fp16 matmul peak: {f"{peak:.0f} TFLOP/s" if peak else "n/a"}. '
             f'{args.frames} timed frames after {args.warmup} warm-up frames per row; batch 1; host uint8 in '
             '-> host uint8 out (for modes: the whole `DerainPipeline.process` call).', '',
             '| case | size | variant | p50 ms | p99 ms | fps | network ms | copies ms | GPU MiB | GFLOP | '
             'TFLOP/s | of peak | weights |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        case = f'{r["kind"]} {r["name"]}' + (f' ({r["config"]})' if r.get('config') == 'paper' else '')
        if 'error' in r:
            lines.append(f'| {case} | {r["size"]} | {r["variant"]} | failed: {r["error"]} |||||||||')
            continue
        net = r.get('network_ms_p50', r.get('inference_ms_p50'))
        lines.append(
            f'| {case} | {r["size"]} | {r["variant"]} | {r["p50_ms"]:.2f} | {r["p99_ms"]:.2f} | '
            f'{r["fps"]:.0f} | {net:.2f} | {r.get("transfer_ms_p50", 0):.2f} | '
            f'{r.get("gpu_memory_mib", 0):.0f} | '
            f'{r.get("gflops", 0):.1f} | {r.get("achieved_tflops", 0):.1f} | '
            f'{100 * r.get("of_matmul_peak", 0):.1f} % | {r.get("weights", "")} |')
    return '\n'.join(lines) + '\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda')
    add_output_arguments(parser, 'gpu')
    parser.add_argument('--force', action='store_true', help='overwrite existing results')
    parser.add_argument('--frames', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--smoke', action='store_true',
                        help='64x96, 2 frames, two variants: checks the script')
    parser.add_argument('--deadline-s', type=float, default=0.0,
                        help='start no new row after this many seconds (a GPU lease); rows done are kept')
    parser.add_argument('--variants', default=','.join(VARIANTS))
    parser.add_argument('--no-compile', action='store_true', help='skip the torch.compile variant')
    args = parser.parse_args()
    import torch

    if args.device.startswith('cuda') and not torch.cuda.is_available():
        print('bench_gpu: no CUDA device (use --device cpu --smoke to check the script)', file=sys.stderr)
        return 2
    variants = [v for v in args.variants.split(',') if v in VARIANTS]
    if args.no_compile:
        variants = [v for v in variants if 'compile' not in v]
    if args.smoke:
        args.frames, args.warmup = 2, 1
        variants = variants[:2]
    out = output_dir(args)
    for name in ('gpu_bench.json', 'gpu_bench.md'):
        if (out / name).exists() and not args.force:
            print(f'bench_gpu: {out / name} exists (pass --force)', file=sys.stderr)
            return 2
    machine = machine_info()
    machine['torch'] = torch.__version__
    if args.device.startswith('cuda'):
        machine['gpu'] = torch.cuda.get_device_name(0)
    peak = matmul_peak_tflops(args.device)
    say(f'device {machine.get("gpu", "cpu")}, fp16 matmul peak {peak}')
    rows: list[dict] = []
    started = time.perf_counter()
    sizes = ('720p', '360p') if not args.smoke else ('720p',)
    cases = [('network', n) for n in NETWORKS] + [('mode', m) for m in MODES]
    plain = [v for v in variants if 'compile' not in v]
    plan = [(kind, name, 'realtime', size, v) for size in sizes for kind, name in cases for v in plain]
    if not args.smoke:  # the paper configurations once, for scale
        plan += [(kind, name, 'paper', '720p', 'fp16')
                 for kind, name in [('network', n) for n in NETWORKS] + [('mode', 'nitedr')]]
    # torch.compile last (its first frame per size takes long): the networks and modes of the node's default
    plan += [(kind, name, 'realtime', '720p', v) for v in variants if 'compile' in v
             for kind, name in (('network', 'cleannet'), ('mode', 'nitedr'), ('mode', 'single'))]

    def write(final: bool) -> None:
        report = {'machine': machine, 'matmul_peak_tflops': peak, 'frames': args.frames,
                  'warmup': args.warmup, 'complete': final, 'rows': rows}
        write_text_atomic(out / 'gpu_bench.json', json.dumps(report, indent=1, default=str) + '\n')
        write_text_atomic(out / 'gpu_bench.md', markdown(rows, machine, peak, args))

    for index, (kind, name, config, size, variant) in enumerate(plan, 1):
        if args.deadline_s and time.perf_counter() - started > args.deadline_s:
            say(f'deadline: {len(plan) - index + 1} row(s) not run')
            break
        row = run_case(kind, name, config, size, variant, args, peak)
        rows.append(row)
        status = row.get('error') or f'p50 {row["p50_ms"]:.2f} ms'
        say(f'[{index}/{len(plan)}] {kind} {name} {config} {size} {variant}: {status}')
        write(False)
    rows += other_backends(args)
    write(True)
    print(markdown(rows, machine, peak, args))
    return 0


if __name__ == '__main__':
    sys.exit(main())
