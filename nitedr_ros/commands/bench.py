"""``nitedr bench``: per-stage latency percentiles and fps of one network on one backend.

Runs the real pipeline (pre-process, inference, post-process) on synthetic frames. Without ``--model`` the
network is built with random weights (seeded) and exported to a temporary ONNX file. ``--compare torch``
runs the torch eager path of the same network and weights in the same process, interleaved frame by
frame with the backend under test so that machine load hits both alike, and reports
``speedup = torch inference p50 / backend inference p50`` (``speedup_total`` the same on whole calls).
Results: a table (or one JSON object with ``--json``), plus a JSON file and a latency histogram PNG in
``--output-dir`` with the machine they ran on.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.base import BACKENDS, InferenceEngine
from ..errors import ConfigError
from ..figures import pyplot, save_figure
from ..fileio import write_text_atomic
from ..machine import machine_info
from ..modelspec import CONFIGS, NETWORKS, get_spec
from ..paths import ensure_writable_output
from ..pipeline.derain import DerainPipeline
from ..pipeline.frames import ImageFrame
from ..pipeline.timing import STAGES, StageTimings, percentile_summary

HELP = 'benchmark a network on a backend: per-stage latency p50/p95/p99, fps, optional torch comparison'
LOG = logging.getLogger('nitedr_ros.bench')

# Which pipeline mode exercises a network; fusionnet runs in nitedr mode behind a pass-through derainer.
NETWORK_MODE = {'cleannet': 'single', 'rainmer': 'single', 'mspfn': 'single', 'stereoirr': 'stereo',
                'fusionnet': 'nitedr'}
NETWORK_ROLE = {'single': 'derain', 'stereo': 'stereo', 'nitedr': 'fusion'}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--network', default='', choices=['', *sorted(NETWORKS)],
                        help="network (cleannet; with --model: the model's nitedr.network metadata)")
    parser.add_argument('--config', default='', choices=['', *CONFIGS],
                        help="configuration (realtime; with --model: the model's nitedr.config metadata)")
    parser.add_argument('--backend', default='auto', choices=[b for b in BACKENDS if b != 'identity'],
                        help='backend under test (auto)')
    parser.add_argument('--height', type=int, default=360, help='frame height (360)')
    parser.add_argument('--width', type=int, default=640, help='frame width (640)')
    parser.add_argument('--frames', type=int, default=20, help='timed frames (20)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed warm-up frames (2)')
    parser.add_argument('--compare', choices=['torch'], help='also run torch eager on the same weights')
    parser.add_argument('--json', action='store_true', help='print one JSON object instead of a table')
    parser.add_argument('--output-dir', default='benchmarks/results',
                        help="where the JSON and histogram PNG go ('' = write nothing)")
    parser.add_argument('--name', default='', help='result file stem (runtime_<net>_<cfg>_<backend>_<HxW>)')
    parser.add_argument('--model', default='', help='ONNX file to run (default: random weights, exported)')
    parser.add_argument('--checkpoint', default='', help='weights for the export or for --compare torch')
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'], help='(fp32)')
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime intra-op and torch threads (0 = library defaults)')
    parser.add_argument('--ort-optimization', default='all', choices=['disable', 'basic', 'extended', 'all'],
                        help='ONNX Runtime graph optimisation level (all)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights and frames (0)')
    parser.add_argument('--force', action='store_true', help='overwrite existing result files')


def _say(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr if args.json else sys.stdout, flush=True)


def _torch_model(args: argparse.Namespace):
    """The torch network the benchmark compares with or exports: a checkpoint or seeded random weights."""
    import torch

    if args.checkpoint:
        from ..networks.checkpoint import load_checkpoint

        model, payload = load_checkpoint(args.checkpoint)
        if payload.get('network') != args.network:
            raise ConfigError(f'{args.checkpoint} holds {payload.get("network")}, not {args.network}')
        return model, f'checkpoint {args.checkpoint}'
    from ..networks import build_network

    torch.manual_seed(args.seed)
    return build_network(args.network, args.config), f'random weights (torch seed {args.seed})'


def export_for_bench(model: Any, network: str, config: str, path: Path, fp16: bool) -> str:
    """Export ``model`` to ``path`` with the export helper (fallback: legacy torch.onnx.export)."""
    try:
        from ..export.onnx_export import export_network
    except ImportError:
        export_network = None
    if export_network is not None:
        result = export_network(model, network, config, path, fp16=fp16, parity=False, force=True)
        return f'export_network ({result.exporter} exporter, opset {result.opset})'
    import warnings

    import onnx
    import torch

    spec = get_spec(network)
    trace = tuple(torch.rand(1, t.channels, 64, 64) for t in spec.inputs)
    axes = {name: {2: 'height', 3: 'width'} for name in (*spec.input_names, *spec.output_names)}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, trace, str(path), input_names=list(spec.input_names),
                          output_names=list(spec.output_names), dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    proto = onnx.load(str(path))
    for key, value in (('nitedr.network', network), ('nitedr.config', config), ('nitedr.precision', 'fp32'),
                       ('nitedr.multiple_of', str(spec.multiple_of))):
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return 'torch.onnx.export (legacy, opset 17; export helper not available)'


def make_pipeline(network: str, engine: InferenceEngine) -> DerainPipeline:
    """The pipeline that runs ``engine`` as its network's role."""
    from ..engines.identity_engine import IdentityEngine

    mode = NETWORK_MODE[network]
    engines = {NETWORK_ROLE[mode]: engine}
    if mode == 'nitedr':
        engines['derain'] = IdentityEngine('cleannet')
    return DerainPipeline(mode, engines)


def make_frames(network: str, height: int, width: int, seed: int,
                count: int = 2) -> list[dict[str, ImageFrame]]:
    """A few synthetic frame sets (noise plus bright streaks) with the streams the network's mode needs."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(count):
        rgb = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        rows = rng.integers(0, height, 50)
        cols = rng.integers(0, width, 50)
        rgb[rows, cols] = 255
        mode = NETWORK_MODE[network]
        if mode == 'stereo':
            right = np.roll(rgb, 4, axis=1)
            sets.append({'left': ImageFrame(rgb, 'rgb8'), 'right': ImageFrame(right, 'rgb8')})
        elif mode == 'nitedr':
            thermal = rng.integers(2000, 4000, (height, width), dtype=np.uint16)
            sets.append({'rgb': ImageFrame(rgb, 'rgb8'), 'thermal': ImageFrame(thermal, '16UC1')})
        else:
            sets.append({'rgb': ImageFrame(rgb, 'rgb8')})
    return sets


def measure(pipelines: dict[str, DerainPipeline], frame_sets: list[dict[str, ImageFrame]], frames: int,
            warmup: int, role: str, progress=None) -> dict[str, list[StageTimings]]:
    """Run every pipeline on the same frames, interleaved; timings of the frames after the warm-up."""
    recorded: dict[str, list[StageTimings]] = {label: [] for label in pipelines}
    for index in range(warmup + frames):
        for label, pipeline in pipelines.items():
            timings = pipeline.process(frame_sets[index % len(frame_sets)]).timings
            timings.inference_ms = timings.inference_by_role.get(role, timings.inference_ms)
            if index >= warmup:
                recorded[label].append(timings)
        if progress is not None:
            progress(index + 1, warmup + frames)
    return recorded


def summarize(timings: list[StageTimings]) -> dict[str, Any]:
    """Per-stage p50/p95/p99/max/mean, fps (1000 / mean total ms) and the raw samples."""
    stages = {}
    for stage in STAGES:
        summary = percentile_summary([getattr(t, stage) for t in timings])
        stages[stage] = {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}
    mean_total = stages['total_ms']['mean']
    return {'stages': stages, 'fps': round(1000.0 / mean_total, 3) if mean_total > 0 else 0.0,
            'samples_ms': {stage: [round(getattr(t, stage), 3) for t in timings] for stage in
                           ('inference_ms', 'total_ms')}}


def write_histogram(path: Path, results: dict[str, dict[str, Any]], title: str) -> None:
    """Histograms of inference and total latency per backend, written atomically."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, stage in zip(axes, ('inference_ms', 'total_ms')):
        every = np.concatenate([r['samples_ms'][stage] for r in results.values()])
        low, high = max(float(every.min()), 1e-3) * 0.95, float(every.max()) * 1.05
        if high / low > 5.0:  # backends far apart: shared logarithmic bins keep both visible
            bins = np.geomspace(low, high, 40)
            axis.set_xscale('log')
        else:
            bins = np.linspace(low, high, 30)
        for label, result in results.items():
            samples = result['samples_ms'][stage]
            axis.hist(samples, bins=bins, alpha=0.6, label=f'{label} (p50 {np.median(samples):.1f} ms)')
        axis.set_xlabel(f'{stage.replace("_ms", "")} latency [ms]')
        axis.set_ylabel('frames')
        axis.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix='nitedr-bench-') as folder:
        yield Path(folder)


def _table(result: dict[str, Any]) -> str:
    lines = [f'{"stage":<16}{"p50":>10}{"p95":>10}{"p99":>10}{"max":>10}  (ms)']
    for stage, s in result['stages'].items():
        lines.append(f'{stage:<16}{s["p50"]:>10.2f}{s["p95"]:>10.2f}{s["p99"]:>10.2f}{s["max"]:>10.2f}')
    lines.append(f'fps {result["fps"]:.2f}')
    return '\n'.join(lines)


def _without_samples(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_samples(v) for k, v in data.items() if k != 'samples_ms'}
    return data


def _check_args(args: argparse.Namespace) -> None:
    metadata: dict[str, str] = {}
    if args.model and not (args.network and args.config):
        from ..engines.onnx_info import read_model_info
        from ..paths import resolve_model

        metadata = read_model_info(resolve_model(args.model)).metadata
    args.network = args.network or metadata.get('nitedr.network') or 'cleannet'
    if args.network not in NETWORKS:
        raise ConfigError(f'{args.model} is a {args.network!r} model; pass --network')
    args.config = args.config or metadata.get('nitedr.config') or 'realtime'
    if args.height <= 0 or args.width <= 0:
        raise ConfigError(f'frame size must be positive, got {args.height}x{args.width}')
    if args.frames < 1 or args.warmup < 0:
        raise ConfigError('--frames must be >= 1 and --warmup >= 0')
    if args.compare == 'torch' and args.model and not args.checkpoint:
        raise ConfigError('--compare torch with --model needs the same weights: pass --checkpoint, '
                          'or omit --model to benchmark random weights')


def run(args: argparse.Namespace) -> int:
    from ..engines.selection import open_engine

    _check_args(args)
    started = time.time()
    stem = args.name or f'runtime_{args.network}_{args.config}_{args.backend}_{args.height}x{args.width}'
    json_path = png_path = None
    if args.output_dir:
        json_path = ensure_writable_output(Path(args.output_dir) / f'{stem}.json', args.force)
        png_path = ensure_writable_output(Path(args.output_dir) / f'{stem}.png', args.force)
    torch_backend = args.backend.startswith('torch')
    with _workdir() as workdir:
        torch_model, source = None, args.model
        if torch_backend or args.compare == 'torch' or not args.model:
            torch_model, source = _torch_model(args)
        if torch_backend:
            engine = open_engine(torch_model, args.backend, network=args.network, config=args.config,
                                 threads=args.threads)
        else:
            model_path = args.model
            if not model_path:
                model_path = workdir / f'{args.network}_{args.config}.onnx'
                _say(args, f'exporting {args.network}/{args.config} ({source}) to ONNX ...')
                how = export_for_bench(torch_model, args.network, args.config, model_path,
                                       fp16=args.precision == 'fp16')
                source = f'{source}, {how}'
            engine = open_engine(model_path, args.backend, precision=args.precision, threads=args.threads,
                                 ort_optimization=args.ort_optimization)
        engines = {engine.backend: engine}
        if args.compare == 'torch':
            compare = open_engine(torch_model, 'torch', network=args.network, config=args.config,
                                  threads=args.threads)
            engines[f'{compare.backend} (compare)'] = compare
        mode = NETWORK_MODE[args.network]
        pipelines = {label: make_pipeline(args.network, e) for label, e in engines.items()}
        frame_sets = make_frames(args.network, args.height, args.width, args.seed)
        _say(args, f'{args.network}/{args.config} {args.height}x{args.width} on {engine.backend} '
                   f'({engine.describe().get("why", "")}); {args.warmup} warm-up + {args.frames} frames'
                   + (', interleaved with torch' if args.compare else ''))
        progress = None if args.json else (lambda i, n: print(f'\rframe {i}/{n}', end='', flush=True))
        recorded = measure(pipelines, frame_sets, args.frames, args.warmup, NETWORK_ROLE[mode], progress)
        if progress:
            print()
        summaries = {label: summarize(t) for label, t in recorded.items()}
        described = {label: e.describe() for label, e in engines.items()}
        for e in engines.values():
            e.close()
    main = summaries[engine.backend]
    result: dict[str, Any] = {
        'network': args.network, 'config': args.config, 'backend': engine.backend,
        'requested_backend': args.backend, 'height': args.height, 'width': args.width,
        'frames': args.frames, 'warmup': args.warmup, 'threads': args.threads, 'precision': args.precision,
        'ort_optimization': args.ort_optimization, 'model': str(source), 'mode': mode,
        'stages': main['stages'], 'fps': main['fps'], 'engine': described[engine.backend],
        'samples_ms': main['samples_ms'],
    }
    if args.compare == 'torch':
        label = next(k for k in summaries if k.endswith('(compare)'))
        other = summaries[label]
        result['compare'] = {'backend': label.split()[0], 'stages': other['stages'], 'fps': other['fps'],
                             'engine': described[label], 'samples_ms': other['samples_ms']}
        for key, stage in (('speedup', 'inference_ms'), ('speedup_total', 'total_ms')):
            result[key] = round(other['stages'][stage]['p50'] / main['stages'][stage]['p50'], 3)
    result['machine'] = machine_info()
    result['started_at'] = _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat('T', 'seconds')
    result['duration_s'] = round(time.time() - started, 1)
    if json_path is not None and png_path is not None:
        result['files'] = {'json': str(json_path), 'histogram': str(png_path)}
        write_text_atomic(json_path, json.dumps(result, indent=2) + '\n')
        write_histogram(png_path, summaries, f'{args.network}/{args.config} {args.height}x{args.width} '
                                             f'({result["machine"]["cpu_model"]})')
    if args.json:
        print(json.dumps(_without_samples(result)))
        return 0
    for label, summary in summaries.items():
        print(f'\n{label}:')
        print(_table(summary))
    if 'speedup' in result:
        print(f'\nspeedup over torch eager: {result["speedup"]:.2f}x inference p50, '
              f'{result["speedup_total"]:.2f}x whole call p50')
    if json_path is not None:
        print(f'\nwrote {json_path} and {png_path}')
    return 0
