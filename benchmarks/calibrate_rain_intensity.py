#!/usr/bin/env python3
"""Calibrate the rain diagnostics: the derain residual of the shipped derain model on rendered rain of
known density, at night.

Renders streaks of known density (``CALIBRATION_DENSITIES``, streaks per 1000 px in two layers of the
renderer's ``medium`` geometry; streaks only, so density is the one thing that changes) and no rain at all on
the rain-free night images of the shared data (MSRS night and VIFB night visible images, at most 480 px on the
long side), runs the shipped ``cleannet_realtime`` on each, and measures
``nitedr_ros.pipeline.rain_intensity`` exactly as the node does. Per density: the intensity (median, p10,
p90) and the rainy frame's PSNR-Y against the clean one. The thresholds are the median intensity,
interpolated, at two densities named in ``nitedr_ros/data/rain_styles.py``:

- ``rain.warn_intensity`` (camera degraded): ``DEGRADED_DENSITY`` (the lower end of the ``medium`` style);
- ``rain.error_intensity`` (camera blinded): ``BLINDED_DENSITY`` (the mean of the ``medium`` style).

The intensity measures the rain the network removed: rain it leaves in place does not count.

Writes ``rain_intensity.{json,md}`` to a scratch folder (benchmarks/results with ``--publish``); the node's
defaults (``RAIN_WARN_INTENSITY`` / ``RAIN_ERROR_INTENSITY`` in nitedr_ros/core/parameters.py) are the
published values, which a test checks.

    python benchmarks/calibrate_rain_intensity.py [--images 12] [--seeds 2] [--publish]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import cv2
import numpy as np
from bench_output import add_output_arguments, output_dir, write_result

from nitedr_ros.data.rain_styles import BLINDED_DENSITY as BLINDED
from nitedr_ros.data.rain_styles import DEGRADED_DENSITY as DEGRADED
from nitedr_ros.machine import machine_info

MAX_SIDE = 480



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=12, help='clean night images to use (default 12)')
    parser.add_argument('--seeds', type=int, default=2, help='renders per image and style (default 2)')
    parser.add_argument('--model', default='cleannet_realtime.onnx')
    add_output_arguments(parser)
    args = parser.parse_args()
    results_dir = output_dir(args)
    from tqdm import tqdm

    from nitedr_ros.data.corpus import clean_night_images
    from nitedr_ros.data.imageio import read_rgb
    from nitedr_ros.data.rain_styles import CALIBRATION_DENSITIES as DENSITIES
    from nitedr_ros.data.rain_styles import render_style, streak_density_style
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.selection import open_engine
    from nitedr_ros.evaluation.metrics import derain_metrics
    from nitedr_ros.paths import shared_data_dir
    from nitedr_ros.pipeline.derain import DerainPipeline
    from nitedr_ros.pipeline.frames import ImageFrame

    data = shared_data_dir()
    if data is None:
        print('the shared data folder is needed (NITEDR_DATA)', file=sys.stderr)
        return 2
    images = clean_night_images(data)[: args.images]
    engine = open_engine(args.model, EngineOptions('onnxruntime-cpu', threads=0))
    pipeline = DerainPipeline('single', {'derain': engine})
    rows: dict[float, dict[str, list[float]]] = {d: {'intensity': [], 'psnr': []} for d in DENSITIES}
    jobs = [(name, path, density, seed) for name, path in images for density in DENSITIES
            for seed in range(args.seeds if density else 1)]
    for name, path, density, seed in tqdm(jobs, desc='rain intensity', unit='image'):
        image = read_rgb(path)
        scale = MAX_SIDE / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rainy = image
        if density:
            rng = np.random.default_rng([seed, sum(name.encode())])
            sample = render_style(image.astype(np.float32) / 255.0, rng, streak_density_style(density))
            rainy = np.clip(np.rint(sample.rainy * 255.0), 0, 255).astype(np.uint8)
            rows[density]['psnr'].append(derain_metrics(rainy, image)['psnr_y'])
        result = pipeline.process({'rgb': ImageFrame(np.ascontiguousarray(rainy), 'rgb8')})
        rows[density]['intensity'].append(result.rain_intensity['derained_rgb'])
    summary = {f'{density:g}': {
        'renders': len(v['intensity']), 'median': float(np.median(v['intensity'])),
        'p10': float(np.percentile(v['intensity'], 10)), 'p90': float(np.percentile(v['intensity'], 90)),
        'rainy_psnr_y': float(np.mean(v['psnr'])) if v['psnr'] else None} for density, v in rows.items()}
    medians = [summary[f'{d:g}']['median'] for d in DENSITIES]
    warn = round(float(np.interp(DEGRADED, DENSITIES, medians)), 1)
    error = round(float(np.interp(BLINDED, DENSITIES, medians)), 1)
    monotonic = all(a < b for a, b in itertools.pairwise(medians))
    result = {'model': args.model, 'images': [name for name, _ in images], 'densities': summary,
              'monotonic': monotonic, 'degraded_density': DEGRADED, 'blinded_density': BLINDED,
              'warn_intensity': warn, 'error_intensity': error, 'machine': machine_info()}
    write_result(results_dir, 'rain_intensity.json', json.dumps(result, indent=1))
    lines = ['# Rain intensity calibration (the rain diagnostics)', '',
             f'`{args.model}` on {len(images)} rain-free night images of the shared data (MSRS night, '
             f'VIFB night; at most {MAX_SIDE} px), each with streaks of known density ({args.seeds} seeds; '
             'two layers of the renderer\'s `medium` streak geometry, nothing else) and without rain. '
             'Intensity = mean |luminance change| of the derain, in 8-bit levels (what the node publishes on '
             '`~/rain_intensity`).', '',
             '| streaks per 1000 px | renders | rainy PSNR-Y dB | intensity median | p10 | p90 |',
             '|---|---|---|---|---|---|']
    for density, values in summary.items():
        psnr = f'{values["rainy_psnr_y"]:.2f}' if values['rainy_psnr_y'] is not None else 'clean'
        lines.append(f'| {density} | {values["renders"]} | {psnr} | {values["median"]:.2f} | '
                     f'{values["p10"]:.2f} | {values["p90"]:.2f} |')
    lines += ['', f'Median rises with density: {"yes" if monotonic else "NO"}. Thresholds: '
                  f'`rain.warn_intensity` = {warn:g} (at {DEGRADED:g} streaks per 1000 px, camera degraded), '
                  f'`rain.error_intensity` = {error:g} (at {BLINDED:g}, camera blinded).', '',
              f'Machine: {result["machine"]}', '']
    print('\n'.join(lines))
    write_result(results_dir, 'rain_intensity.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
