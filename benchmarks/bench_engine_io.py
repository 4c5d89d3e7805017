#!/usr/bin/env python3
"""uint8 I/O engines against float I/O engines: NiteDR mode end to end at 1280x720 on the CPU (ONNX Runtime).

Two pipelines on the same shipped weights (``models/cleannet_realtime`` + ``fusionnet_realtime``): one opens
the float variants (``<stem>.onnx``: the host converts uint8 HWC -> float32 NCHW, pads, and back), one the
uint8 I/O variants (``<stem>.u8.onnx``: cast/normalise/transpose/pad inside the graph, only bytes in and out).
``models/`` ships only the uint8 variants and the weights: the float variants are exported from the weights
(``nitedr export --checkpoint models/<stem>.pt``) into a temporary folder first.
Frames alternate between the two, so both see the same machine load. Per variant: pre-processing,
inference, post-processing and the whole ``process`` call (p50, p90), and the bytes handed to and taken from
the engines per frame (RGB 1280x720 rgb8 + mono16 thermal).

Writes ``engine_io.{json,md}`` to a scratch folder (benchmarks/results with ``--publish``).

    python benchmarks/bench_engine_io.py [--frames 10] [--height 720 --width 1280] [--threads 0] [--publish]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from bench_output import TEMP_PREFIX, add_output_arguments, output_dir, write_result

from nitedr_ros.machine import machine_info

STAGES = ('preprocess_ms', 'inference_ms', 'postprocess_ms', 'total_ms')


class ByteCounter:
    """Wraps an engine and counts the bytes of what goes in and comes out of ``infer``."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.bytes_in = 0
        self.bytes_out = 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def infer(self, inputs):
        self.bytes_in += sum(np.asarray(v).nbytes for v in inputs.values())
        outputs = self.engine.infer(inputs)
        self.bytes_out += sum(np.asarray(v).nbytes for v in outputs.values())
        return outputs


MODELS = (('derain', 'cleannet_realtime'), ('fusion', 'fusionnet_realtime'))


def float_models(folder: Path) -> dict[str, str]:
    """Each shipped model's float-I/O variant: from models/ where shipped, else exported from the weights."""
    from nitedr_ros.engines.variants import existing_variants
    from nitedr_ros.paths import models_dir

    paths = {}
    for role, stem in MODELS:
        shipped = existing_variants(models_dir() / f'{stem}.onnx').get(('float', 'fp32'))
        if shipped is None:
            shipped = folder / f'{stem}.onnx'
            print(f'exporting the float variant of {stem} from its weights', flush=True)
            subprocess.run([sys.executable, '-m', 'nitedr_ros', 'export', '--checkpoint',
                            str(models_dir() / f'{stem}.pt'), '--output', str(shipped), '--no-fp16'],
                           check=True, stdout=subprocess.DEVNULL)
        paths[role] = str(shipped)
    return paths


def build(io: str, threads: int, models: dict[str, str]):
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.selection import open_engine
    from nitedr_ros.pipeline.derain import DerainPipeline

    options = EngineOptions('onnxruntime-cpu', threads=threads, io=io)
    engines = {role: ByteCounter(open_engine(name, options)) for role, name in models.items()}
    return DerainPipeline('nitedr', engines), engines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--threads', type=int, default=0, help='ONNX Runtime intra-op threads (0 = default)')
    add_output_arguments(parser)
    args = parser.parse_args()
    results_dir = output_dir(args)
    from nitedr_ros.fileio import scratch_folder

    with scratch_folder(TEMP_PREFIX) as folder:
        return measure(args, results_dir, float_models(folder))


def measure(args: argparse.Namespace, results_dir: Path, float_paths: dict[str, str]) -> int:
    from nitedr_ros.core.testing import pattern_image
    from nitedr_ros.pipeline.frames import ImageFrame


    frames = {'rgb': ImageFrame(pattern_image(args.height, args.width, 'rgb8', seed=1), 'rgb8'),
              'thermal': ImageFrame(pattern_image(args.height, args.width, 'mono16', seed=2), 'mono16')}
    shipped = {role: f'{stem}.onnx' for role, stem in MODELS}
    pipelines = {io: build(io, args.threads, float_paths if io == 'float' else shipped)
                 for io in ('float', 'uint8')}
    samples: dict[str, dict[str, list[float]]] = {io: {s: [] for s in STAGES} for io in pipelines}
    for index in range(args.warmup + args.frames):
        for io, (pipeline, engines) in pipelines.items():
            if index == args.warmup:
                for engine in engines.values():
                    engine.bytes_in = engine.bytes_out = 0
            timings = pipeline.process(frames).timings
            if index >= args.warmup:
                for stage in STAGES:
                    samples[io][stage].append(getattr(timings, stage))
        print(f'frame {index + 1}/{args.warmup + args.frames}: float {samples["float"]["total_ms"][-1:]} ms, '
              f'uint8 {samples["uint8"]["total_ms"][-1:]} ms', flush=True)
    report = {'size': f'{args.width}x{args.height}', 'frames': args.frames, 'threads': args.threads,
              'machine': machine_info(), 'variants': {}}
    for io, (_, engines) in pipelines.items():
        report['variants'][io] = {
            **{f'{stage}_p50': float(np.median(samples[io][stage])) for stage in STAGES},
            **{f'{stage}_p90': float(np.percentile(samples[io][stage], 90)) for stage in STAGES},
            'bytes_to_engines_per_frame': sum(e.bytes_in for e in engines.values()) // args.frames,
            'bytes_from_engines_per_frame': sum(e.bytes_out for e in engines.values()) // args.frames,
            'models': {role: e.describe().get('model', '') for role, e in engines.items()}}
    f, u = report['variants']['float'], report['variants']['uint8']
    report['total_ratio_float_over_uint8'] = f['total_ms_p50'] / u['total_ms_p50']
    moved = {io: v['bytes_to_engines_per_frame'] + v['bytes_from_engines_per_frame']
             for io, v in report['variants'].items()}
    report['bytes_ratio_float_over_uint8'] = moved['float'] / moved['uint8']
    write_result(results_dir, 'engine_io.json', json.dumps(report, indent=1, default=str))
    title = f'# Engine I/O: float against uint8, NiteDR mode, {args.width}x{args.height}, ONNX Runtime CPU'
    lines = [title, '',
             f'{args.frames} frames per variant after {args.warmup} warm-up, alternating; shipped realtime '
             'weights; p50 (p90) ms.', '',
             '| engine I/O | pre-processing | inference | post-processing | whole call | bytes to engines | '
             'bytes from engines |', '|---|---|---|---|---|---|---|']
    for io, values in report['variants'].items():
        cells = ' | '.join(f'{values[f"{s}_p50"]:.1f} ({values[f"{s}_p90"]:.1f})' for s in STAGES)
        lines.append(f'| {io} | {cells} | {values["bytes_to_engines_per_frame"] / 1e6:.2f} MB | '
                     f'{values["bytes_from_engines_per_frame"] / 1e6:.2f} MB |')
    lines += ['', f'Whole call, float / uint8: {report["total_ratio_float_over_uint8"]:.2f}x; bytes moved, '
                  f'float / uint8: {report["bytes_ratio_float_over_uint8"]:.2f}x.', '',
              f'Machine: {report["machine"]}', '']
    print('\n'.join(lines))
    write_result(results_dir, 'engine_io.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
