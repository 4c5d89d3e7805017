#!/usr/bin/env python3
"""Calibrate the rain diagnostics: the derain residual of the shipped derain model on rendered rain of
known density, at night.

Renders the corpus styles ``light``, ``medium``, ``heavy`` and ``storm_night`` (always at night) and no rain
at all on the rain-free night images of the shared data (MSRS night and VIFB night visible images, at most
480 px on the long side), runs the shipped ``cleannet_realtime`` on each, and measures
``nitedr_ros.pipeline.rain_intensity`` exactly as the node does. Per style: the streak density the renderer
drew (mean streak-layer value) and the intensity (median, p10, p90). The thresholds:

- ``rain.warn_intensity`` (camera degraded): half way between the medians of ``light`` and ``medium``;
- ``rain.error_intensity`` (camera blinded): half way between the medians of ``medium`` and ``heavy``.

Writes ``rain_intensity.{json,md}`` to a scratch folder (benchmarks/results with ``--publish``); the node's
defaults (``RAIN_WARN_INTENSITY`` / ``RAIN_ERROR_INTENSITY`` in nitedr_ros/core/parameters.py) are the
published values, which a test checks.

    python benchmarks/calibrate_rain_intensity.py [--images 12] [--publish]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import cv2
import numpy as np
from bench_output import add_output_arguments, output_dir, write_result

from nitedr_ros.machine import machine_info

STYLES = ('light', 'medium', 'heavy', 'storm_night')
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
    from nitedr_ros.data.rain_styles import STYLES as STYLE_TABLE
    from nitedr_ros.data.rain_styles import render_style
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.selection import open_engine
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
    kinds = ('clean', *STYLES)
    rows: dict[str, dict[str, list[float]]] = {s: {'intensity': [], 'density': []} for s in kinds}
    jobs = [(name, path, style, seed) for name, path in images for style in ('clean', *STYLES)
            for seed in range(args.seeds if style != 'clean' else 1)]
    for name, path, style, seed in tqdm(jobs, desc='rain intensity', unit='image'):
        image = read_rgb(path)
        scale = MAX_SIDE / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if style == 'clean':
            rainy, density = image, 0.0
        else:
            rng = np.random.default_rng([seed, sum(name.encode())])
            night = replace(STYLE_TABLE[style], night=1.0)
            sample = render_style(image.astype(np.float32) / 255.0, rng, night)
            rainy = np.clip(np.rint(sample.rainy * 255.0), 0, 255).astype(np.uint8)
            density = sample.density
        result = pipeline.process({'rgb': ImageFrame(np.ascontiguousarray(rainy), 'rgb8')})
        rows[style]['intensity'].append(result.rain_intensity['derained_rgb'])
        rows[style]['density'].append(density)
    summary = {style: {'images': len(v['intensity']), 'density_median': float(np.median(v['density'])),
                       'median': float(np.median(v['intensity'])),
                       'p10': float(np.percentile(v['intensity'], 10)),
                       'p90': float(np.percentile(v['intensity'], 90))} for style, v in rows.items()}
    warn = round((summary['light']['median'] + summary['medium']['median']) / 2, 1)
    error = round((summary['medium']['median'] + summary['heavy']['median']) / 2, 1)
    result = {'model': args.model, 'images': [name for name, _ in images], 'styles': summary,
              'warn_intensity': warn, 'error_intensity': error, 'machine': machine_info()}
    write_result(results_dir, 'rain_intensity.json', json.dumps(result, indent=1))
    lines = ['# Rain intensity calibration (the rain diagnostics)', '',
             f'`{args.model}` on {len(images)} rain-free night images of the shared data (MSRS night, '
             f'VIFB night; at most {MAX_SIDE} px), each with the corpus styles rendered at night '
             f'({args.seeds} seeds) and without rain. Intensity = mean |luminance change| of the derain, in '
             '8-bit levels (what the node publishes on `~/rain_intensity`).', '',
             '| rain | renders | streak density (median) | intensity median | p10 | p90 |',
             '|---|---|---|---|---|---|']
    for style, values in summary.items():
        lines.append(f'| {style} | {values["images"]} | {values["density_median"]:.4f} | '
                     f'{values["median"]:.2f} | {values["p10"]:.2f} | {values["p90"]:.2f} |')
    lines += ['', f'Thresholds: `rain.warn_intensity` = {warn:g} (half way between light and medium), '
                  f'`rain.error_intensity` = {error:g} (half way between medium and heavy).', '',
              f'Machine: {result["machine"]}', '']
    print('\n'.join(lines))
    write_result(results_dir, 'rain_intensity.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
