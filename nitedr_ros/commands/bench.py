"""``nitedr bench``: per-stage latency percentiles and fps of one network, or of a whole pipeline mode.

Runs the real pipeline (pre-process, inference, transfers, post-process) on synthetic frames.

- ``--network NET``: one network in the mode that exercises it (``fusionnet`` runs in ``nitedr`` mode behind
  a pass-through derainer, whose time is left out of ``inference_ms``).
- ``--mode MODE``: every model role of a pipeline mode, e.g. ``--mode nitedr --config paper`` is NiteDR
  (CleanNet + FusionNet) called as the node calls it; ``inference_ms`` is the sum over the roles.

Without ``--model`` each network is built with random weights (seeded) or from ``--checkpoint`` and exported
to a temporary ONNX file. With a mode, ``--model`` and ``--checkpoint`` take ``ROLE=PATH``. ``--compare
torch`` runs torch eager on the same networks and weights in the same process, interleaved frame by frame
with the backend under test so that machine load hits both alike, and reports
``speedup = torch inference p50 / backend inference p50`` (``speedup_total`` the same on whole calls).
With ``--model`` and ``--checkpoint`` both given, the ONNX file must record that checkpoint's sha256
(``nitedr.checkpoint_sha256``, written by ``nitedr export --checkpoint``): both sides hold the same weights.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.base import InferenceEngine
from ..engines.options import BACKENDS, EngineOptions
from ..errors import ConfigError
from ..figures import pyplot, save_figure
from ..fileio import write_text_atomic
from ..machine import machine_info
from ..modelspec import CONFIGS, NETWORKS
from ..modes import DEFAULT_NETWORKS, MODE_ROLES, MODE_STREAMS, MODES, ROLE_MODE
from ..paths import benchmark_scratch_dir, ensure_writable_output
from ..pipeline.derain import DerainPipeline
from ..pipeline.frames import ImageFrame
from ..pipeline.timing import STAGES, StageTimings, percentile_summary

HELP = ('benchmark a network or a pipeline mode on a backend: per-stage latency p50/p95/p99, fps, '
        'torch comparison')
LOG = logging.getLogger('nitedr_ros.bench')


@dataclass
class RoleBench:
    """One model role under test: its network, configuration and where its weights come from."""

    network: str
    config: str
    model: str = ''  # ONNX file given
    checkpoint: str = ''
    payload: dict[str, Any] | None = None  # the checkpoint, read once
    torch_model: Any = None
    source: str = ''


@dataclass
class BenchPlan:
    """What to run: the pipeline mode, the roles under test and pass-through stand-ins for the others."""

    mode: str
    roles: dict[str, RoleBench]
    standins: dict[str, str] = field(default_factory=dict)  # role -> network of an identity engine
    label: str = ''


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--mode', default='', choices=['', *MODES],
                        help="benchmark every role of a pipeline mode (e.g. nitedr = CleanNet + FusionNet)")
    parser.add_argument('--network', default='', choices=['', *sorted(NETWORKS)],
                        help="one network (cleannet; with --model/--checkpoint: the file's network; with "
                             "--mode single: the derain network)")
    parser.add_argument('--config', default='', choices=['', *CONFIGS],
                        help="configuration (realtime; with --model/--checkpoint: the file's)")
    parser.add_argument('--backend', default='auto', choices=[b for b in BACKENDS if b != 'identity'],
                        help='backend under test (auto)')
    parser.add_argument('--height', type=int, default=360, help='frame height (360)')
    parser.add_argument('--width', type=int, default=640, help='frame width (640)')
    parser.add_argument('--frames', type=int, default=20, help='timed frames (20)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed warm-up frames (2)')
    parser.add_argument('--compare', choices=['torch'], help='also run torch eager on the same weights')
    parser.add_argument('--json', action='store_true', help='print one JSON object instead of a table')
    parser.add_argument('--output-dir', default=str(benchmark_scratch_dir()),
                        help="where the JSON and histogram PNG go ('' = write nothing; default: a scratch "
                             'folder, never the committed benchmarks/results unless given)')
    parser.add_argument('--name', default='',
                        help='result file stem (runtime_<network or mode>_<cfg>_<backend>_<HxW>)')
    parser.add_argument('--model', action='append', default=[], metavar='[ROLE=]PATH',
                        help='ONNX file to run (default: random weights or --checkpoint, exported); '
                             'ROLE=PATH with --mode (repeatable)')
    parser.add_argument('--checkpoint', action='append', default=[], metavar='[ROLE=]PATH',
                        help='weights for the export and --compare torch; ROLE=PATH with --mode (repeatable)')
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'], help='(fp32)')
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime intra-op and torch threads (0 = library defaults)')
    parser.add_argument('--ort-optimization', default='all', choices=['disable', 'basic', 'extended', 'all'],
                        help='ONNX Runtime graph optimisation level (all)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights and frames (0)')
    parser.add_argument('--force', action='store_true', help='overwrite existing result files')


def _say(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr if args.json else sys.stdout, flush=True)


# -- what to run -------------------------------------------------------------------------------------------
def _by_role(values: list[str], option: str, roles: tuple[str, ...], bare_role: str | None) -> dict[str, str]:
    """``[ROLE=]PATH`` values -> role -> path; a bare PATH goes to ``bare_role`` (one role under test)."""
    out: dict[str, str] = {}
    for value in values:
        role, sep, path = value.partition('=')
        if sep and role in MODE_ROLES['full']:
            if role not in roles:
                where = f'this mode has roles {", ".join(roles)}' if roles else 'ROLE=PATH needs --mode'
                raise ConfigError(f'{option} {value!r}: {where}')
            target = role
        elif bare_role is not None:
            target, path = bare_role, value
        else:
            raise ConfigError(f'{option} {value!r}: give ROLE=PATH with ROLE one of {", ".join(roles)}')
        if target in out:
            raise ConfigError(f'{option} given twice for {target}')
        out[target] = path
    return out


def _onnx_metadata(model: str) -> dict[str, str]:
    from ..engines.onnx_info import read_metadata_props
    from ..paths import resolve_model

    return read_metadata_props(resolve_model(model))


def _read_checkpoint(path: str) -> dict[str, Any]:
    from ..networks.checkpoint import read_checkpoint

    return read_checkpoint(path)


def _fill_from_files(role: RoleBench, network_given: bool, config_given: bool) -> None:
    """Network and configuration from the checkpoint (read once) or the ONNX metadata, checked."""
    if role.checkpoint:
        role.payload = _read_checkpoint(role.checkpoint)
        stored = (role.payload['network'], role.payload['config'])
        if network_given and role.network != stored[0]:
            raise ConfigError(f'{role.checkpoint} holds {stored[0]}, not {role.network}')
        if config_given and role.config != stored[1]:
            raise ConfigError(f'{role.checkpoint} holds the {stored[1]} configuration, not {role.config}')
        role.network, role.config = stored
    if role.model:
        metadata = _onnx_metadata(role.model)
        network = metadata.get('nitedr.network', '')
        if role.checkpoint or network_given:
            if network and network in NETWORKS and network != role.network:
                raise ConfigError(f'{role.model} is a {network} model, not {role.network}')
        elif network:
            if network not in NETWORKS:
                raise ConfigError(f'{role.model} is a {network!r} model; pass --network')
            role.network = network
        if not (role.checkpoint or config_given) and metadata.get('nitedr.config'):
            role.config = metadata['nitedr.config']
        if role.checkpoint:
            _check_same_weights(role.model, role.checkpoint, metadata)


def _check_same_weights(model: str, checkpoint: str, metadata: dict[str, str]) -> None:
    from ..networks.checkpoint import checkpoint_sha256

    recorded = metadata.get('nitedr.checkpoint_sha256')
    if not recorded:
        raise ConfigError(f'{model} does not record which checkpoint it was exported from '
                          f'(no nitedr.checkpoint_sha256), so it cannot be compared with {checkpoint}; '
                          f'export it with `nitedr export --checkpoint {checkpoint}`')
    if recorded != checkpoint_sha256(checkpoint):
        raise ConfigError(f'{model} was exported from other weights than {checkpoint} '
                          f'(checkpoint sha256 {recorded[:12]}... recorded in the ONNX file)')


def plan_benchmark(args: argparse.Namespace) -> BenchPlan:
    """The roles to benchmark from the options (files are read for their network/config, not built)."""
    if args.mode:
        mode = args.mode
        roles_of_mode = MODE_ROLES[mode]
        bare = roles_of_mode[0] if len(roles_of_mode) == 1 else None
        models = _by_role(args.model, '--model', roles_of_mode, bare)
        checkpoints = _by_role(args.checkpoint, '--checkpoint', roles_of_mode, bare)
        if args.network and mode != 'single':
            raise ConfigError(f'--network picks the derain network of --mode single; mode {mode} runs '
                              f'{", ".join(n for n, _ in DEFAULT_NETWORKS[mode].values())}')
        roles = {}
        for role in roles_of_mode:
            network = args.network if args.network and role == 'derain' else DEFAULT_NETWORKS[mode][role][0]
            roles[role] = RoleBench(network, args.config or 'realtime', models.get(role, ''),
                                    checkpoints.get(role, ''))
            _fill_from_files(roles[role], bool(args.network and role == 'derain'), bool(args.config))
        return BenchPlan(mode, roles, label=f'{mode}-mode')
    bench = RoleBench(args.network or 'cleannet', args.config or 'realtime')
    bench.model = _by_role(args.model, '--model', (), 'network').get('network', '')
    bench.checkpoint = _by_role(args.checkpoint, '--checkpoint', (), 'network').get('network', '')
    _fill_from_files(bench, bool(args.network), bool(args.config))
    role = NETWORKS[bench.network].role
    mode = ROLE_MODE[role]
    standins = {other: DEFAULT_NETWORKS[mode][other][0] for other in MODE_ROLES[mode] if other != role}
    return BenchPlan(mode, {role: bench}, standins, label=bench.network)


def _check_args(args: argparse.Namespace, plan: BenchPlan) -> None:
    if args.height <= 0 or args.width <= 0:
        raise ConfigError(f'frame size must be positive, got {args.height}x{args.width}')
    if args.frames < 1 or args.warmup < 0:
        raise ConfigError('--frames must be >= 1 and --warmup >= 0')
    for role, bench in plan.roles.items():
        if args.compare == 'torch' and bench.model and not bench.checkpoint:
            where = f' for role {role}' if args.mode else ''
            raise ConfigError(f'--compare torch with --model{where} needs the same weights: pass '
                              f'--checkpoint, or omit --model to benchmark random weights')


# -- building ----------------------------------------------------------------------------------------------
def _torch_model(args: argparse.Namespace, bench: RoleBench) -> tuple[Any, str]:
    """The torch network a role compares with or exports: its checkpoint or seeded random weights."""
    import torch

    if bench.checkpoint:
        from ..networks.checkpoint import model_from_payload

        payload = bench.payload if bench.payload is not None else _read_checkpoint(bench.checkpoint)
        return model_from_payload(payload, bench.checkpoint), f'checkpoint {bench.checkpoint}'
    from ..networks import build_network

    torch.manual_seed(args.seed)
    return build_network(bench.network, bench.config), f'random weights (torch seed {args.seed})'


def export_for_bench(model: Any, bench: RoleBench, path: Path, fp16: bool) -> str:
    """Export ``model`` to ``path`` with the export module (no parity check: speed, not accuracy)."""
    from ..export.onnx_export import export_network

    metadata = None
    if bench.checkpoint and bench.payload is not None:
        from ..networks.checkpoint import checkpoint_metadata

        metadata = checkpoint_metadata(bench.checkpoint, bench.payload)
    result = export_network(model, bench.network, bench.config, path, fp16=fp16, parity=False, force=True,
                            metadata=metadata)
    return f'export_network ({result.exporter} exporter, opset {result.opset})'


def make_pipeline(mode: str, engines: dict[str, InferenceEngine], standins: dict[str, str]) -> DerainPipeline:
    """The pipeline of ``mode`` running ``engines``, with pass-through engines for the ``standins`` roles."""
    from ..engines.identity_engine import IdentityEngine

    every = dict(engines)
    for role, network in standins.items():
        every[role] = IdentityEngine(network)
    return DerainPipeline(mode, every)


def make_frames(mode: str, height: int, width: int, seed: int, count: int = 2) -> list[dict[str, ImageFrame]]:
    """A few synthetic frame sets (noise plus bright streaks) with the streams ``mode`` needs."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(count):
        rgb = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        rows, cols = rng.integers(0, height, 50), rng.integers(0, width, 50)
        rgb[rows, cols] = 255
        frames = {}
        for stream in MODE_STREAMS[mode]:
            if stream == 'thermal':
                thermal = rng.integers(2000, 4000, (height, width), dtype=np.uint16)
                frames[stream] = ImageFrame(thermal, '16UC1')
            elif stream == 'right':
                frames[stream] = ImageFrame(np.roll(rgb, 4, axis=1), 'rgb8')
            else:
                frames[stream] = ImageFrame(rgb, 'rgb8')
        sets.append(frames)
    return sets


def measure(pipelines: dict[str, DerainPipeline], frame_sets: list[dict[str, ImageFrame]], frames: int,
            warmup: int, roles: tuple[str, ...], progress=None) -> dict[str, list[StageTimings]]:
    """Run every pipeline on the same frames, interleaved; timings of the frames after the warm-up.

    ``inference_ms`` is the sum over ``roles`` (the roles under test; stand-ins are left out).
    """
    recorded: dict[str, list[StageTimings]] = {label: [] for label in pipelines}
    for index in range(warmup + frames):
        for label, pipeline in pipelines.items():
            timings = pipeline.process(frame_sets[index % len(frame_sets)]).timings
            timings.inference_ms = sum(timings.inference_by_role.get(role, 0.0) for role in roles)
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
    roles = sorted({role for t in timings for role in t.inference_by_role})
    by_role = {role: round(float(np.median([t.inference_by_role.get(role, 0.0) for t in timings])), 3)
               for role in roles}
    return {'stages': stages, 'fps': round(1000.0 / mean_total, 3) if mean_total > 0 else 0.0,
            'inference_p50_by_role': by_role,
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
    if len(result['inference_p50_by_role']) > 1:
        lines.append('inference p50 by role: ' + ', '.join(f'{role} {ms:.2f}' for role, ms in
                                                             result['inference_p50_by_role'].items()))
    lines.append(f'fps {result["fps"]:.2f}')
    return '\n'.join(lines)


def _without_samples(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_samples(v) for k, v in data.items() if k != 'samples_ms'}
    return data


def _open_engines(args: argparse.Namespace, plan: BenchPlan, workdir: Path, opened: list[InferenceEngine]
                  ) -> tuple[dict[str, InferenceEngine], dict[str, InferenceEngine]]:
    """(engines under test, torch engines to compare) by role; every engine opened is added to ``opened``."""
    from ..engines.selection import open_engine

    torch_backend = args.backend.startswith('torch')
    tested: dict[str, InferenceEngine] = {}
    compared: dict[str, InferenceEngine] = {}
    for role, bench in plan.roles.items():
        bench.source = bench.model
        if torch_backend or args.compare == 'torch' or not bench.model:
            bench.torch_model, bench.source = _torch_model(args, bench)
        options = EngineOptions.make(args.backend, precision=args.precision, threads=args.threads,
                                     ort_optimization=args.ort_optimization)
        if torch_backend:
            engine = open_engine(bench.torch_model, options, network=bench.network, config=bench.config)
        else:
            model_path: Any = bench.model
            if not model_path:
                model_path = workdir / f'{bench.network}_{bench.config}.onnx'
                _say(args, f'exporting {bench.network}/{bench.config} ({bench.source}) to ONNX ...')
                how = export_for_bench(bench.torch_model, bench, model_path, fp16=args.precision == 'fp16')
                bench.source = f'{bench.source}, {how}'
            engine = open_engine(model_path, options)
        opened.append(engine)
        tested[role] = engine
        if args.compare == 'torch':
            compare = open_engine(bench.torch_model, EngineOptions('torch', threads=args.threads),
                                  network=bench.network, config=bench.config)
            opened.append(compare)
            compared[role] = compare
    return tested, compared


def run(args: argparse.Namespace) -> int:
    plan = plan_benchmark(args)
    _check_args(args, plan)
    started = time.time()
    configs = sorted({b.config for b in plan.roles.values()})
    config_label = '+'.join(configs)
    stem = args.name or f'runtime_{plan.label}_{config_label}_{args.backend}_{args.height}x{args.width}'
    json_path = png_path = None
    if args.output_dir:
        json_path = ensure_writable_output(Path(args.output_dir) / f'{stem}.json', args.force)
        png_path = ensure_writable_output(Path(args.output_dir) / f'{stem}.png', args.force)
    opened: list[InferenceEngine] = []
    try:
        with _workdir() as workdir:
            tested, compared = _open_engines(args, plan, workdir, opened)
            backend = next(iter(tested.values())).backend
            pipelines = {backend: make_pipeline(plan.mode, tested, plan.standins)}
            if compared:
                pipelines[f'{next(iter(compared.values())).backend} (compare)'] = make_pipeline(
                    plan.mode, compared, plan.standins)
            frame_sets = make_frames(plan.mode, args.height, args.width, args.seed)
            networks = '+'.join(b.network for b in plan.roles.values())
            why = next(iter(tested.values())).describe().get('why', '')
            _say(args, f'{networks}/{config_label} ({plan.mode} mode) {args.height}x{args.width} on '
                       f'{backend} ({why}); {args.warmup} warm-up + {args.frames} frames'
                       + (', interleaved with torch' if compared else ''))
            progress = None if args.json else (lambda i, n: print(f'\rframe {i}/{n}', end='', flush=True))
            recorded = measure(pipelines, frame_sets, args.frames, args.warmup, tuple(plan.roles), progress)
            if progress:
                print()
            summaries = {key: summarize(t) for key, t in recorded.items()}
            described = {role: e.describe() for role, e in tested.items()}
            described_compare = {role: e.describe() for role, e in compared.items()}
    finally:
        for engine in opened:
            engine.close()
    main = summaries[backend]
    result: dict[str, Any] = {
        'network': networks, 'config': config_label, 'mode': plan.mode, 'backend': backend,
        'requested_backend': args.backend, 'height': args.height, 'width': args.width,
        'frames': args.frames, 'warmup': args.warmup, 'threads': args.threads, 'precision': args.precision,
        'ort_optimization': args.ort_optimization,
        'roles': {role: {'network': b.network, 'config': b.config, 'model': str(b.source)}
                  for role, b in plan.roles.items()},
        'model': '; '.join(str(b.source) for b in plan.roles.values()),
        'stages': main['stages'], 'fps': main['fps'], 'inference_p50_by_role': main['inference_p50_by_role'],
        'engine': next(iter(described.values())), 'engines': described, 'samples_ms': main['samples_ms'],
    }
    if plan.standins:
        result['standins'] = {role: f'pass-through {network} (left out of inference_ms)'
                              for role, network in plan.standins.items()}
    if compared:
        key = next(k for k in summaries if k.endswith('(compare)'))
        other = summaries[key]
        result['compare'] = {'backend': key.split()[0], 'stages': other['stages'], 'fps': other['fps'],
                             'inference_p50_by_role': other['inference_p50_by_role'],
                             'engine': next(iter(described_compare.values())), 'engines': described_compare,
                             'samples_ms': other['samples_ms']}
        for name, stage in (('speedup', 'inference_ms'), ('speedup_total', 'total_ms')):
            result[name] = round(other['stages'][stage]['p50'] / main['stages'][stage]['p50'], 3)
    result['machine'] = machine_info()
    result['started_at'] = _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat('T', 'seconds')
    result['duration_s'] = round(time.time() - started, 1)
    if json_path is not None and png_path is not None:
        result['files'] = {'json': str(json_path), 'histogram': str(png_path)}
        write_text_atomic(json_path, json.dumps(result, indent=2) + '\n')
        write_histogram(png_path, summaries, f'{networks}/{config_label} ({plan.mode} mode) '
                                             f'{args.height}x{args.width} ({result["machine"]["cpu_model"]})')
    if args.json:
        print(json.dumps(_without_samples(result)))
        return 0
    for key, summary in summaries.items():
        print(f'\n{key}:')
        print(_table(summary))
    if 'speedup' in result:
        print(f'\nspeedup over torch eager: {result["speedup"]:.2f}x inference p50, '
              f'{result["speedup_total"]:.2f}x whole call p50')
    if json_path is not None:
        print(f'\nwrote {json_path} and {png_path}')
    return 0
