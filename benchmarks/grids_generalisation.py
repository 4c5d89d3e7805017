#!/usr/bin/env python3
"""Grids to look at: the derain models on rain they were never trained on, and on real camera frames.

Three PNG grids, one row per image, columns ``rainy | <each model> | clean``:

- ``grid_held_out_pairs.png``: held-back pairs of the shared rain sets (Rain200H heavy streaks, Rain100L,
  Rain200L);
- ``grid_held_out_styles.png``: renderer styles never trained on (``storm_night``, ``crosswind``) on clean
  images never trained on;
- ``grid_real_bag.png``: real Raspberry Pi camera frames from the shared rosbag2 files (CompressedImage),
  as recorded (no rain: the models must leave them alone) and with held-out ``crosswind`` rain on them.

Default models: the shipped derain models; add earlier ones with ``--model NAME=PATH``. Images at most 480 px.
Writes to a scratch folder (benchmarks/results/grids with ``--publish``).

    python benchmarks/grids_generalisation.py [--model NAME=PATH ...] [--rows 3] [--publish]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from bench_output import add_output_arguments, output_dir, write_result

SHIPPED = ('cleannet_realtime', 'mspfn_realtime', 'rainmer_realtime')
REAL_BAGS = tuple(f'bags/derived_fiducials_converted_to_rosbag2/{name}_sqlite3'
                  for name in ('aruco_images', 'aruco_marker', 'fiducial_board_611'))
REAL_BAG_RAIN = 'crosswind'  # a held-out style
MAX_SIDE = 480
TILE_WIDTH = 240
LABEL_HEIGHT = 22


def bag_frame(bag: Path) -> np.ndarray | None:
    """The first compressed image of a bag, decoded to RGB (None when it has none)."""
    from nitedr_ros.transports.bag.reader import deserialize, iter_raw, open_bag

    with open_bag(bag) as reader:
        connections = [c for c in reader.connections if c.msgtype == 'sensor_msgs/msg/CompressedImage']
        for connection, _, raw in iter_raw(reader, connections[:1], bag):
            message = deserialize(reader, raw, connection)
            bgr = cv2.imdecode(np.frombuffer(bytes(message.data), np.uint8), cv2.IMREAD_COLOR)
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return None


def fit(image: np.ndarray) -> np.ndarray:
    scale = MAX_SIDE / max(image.shape[:2])
    return image if scale >= 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def tile(image: np.ndarray | None, label: str, height: int) -> np.ndarray:
    """An image scaled to the tile size with its label above; a grey tile where there is no image."""
    canvas = np.full((height + LABEL_HEIGHT, TILE_WIDTH, 3), 32, np.uint8)
    if image is not None:
        canvas[LABEL_HEIGHT:] = cv2.resize(image, (TILE_WIDTH, height), interpolation=cv2.INTER_AREA)
    cv2.putText(canvas, label, (4, LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas


def write_grid(path: Path, rows: list[np.ndarray]) -> None:
    from nitedr_ros.fileio import write_bytes_atomic

    ok, encoded = cv2.imencode('.png', cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f'could not encode {path}')
    write_bytes_atomic(path, encoded.tobytes())
    print(f'wrote {path}', flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', action='append', default=[], metavar='NAME=PATH',
                        help='a model to show before the shipped ones (repeatable)')
    parser.add_argument('--rows', type=int, default=3, help='images per grid (default 3)')
    add_output_arguments(parser, 'grids')
    args = parser.parse_args()
    results_dir = output_dir(args)
    from nitedr_ros.data.corpus import generalisation_pairs
    from nitedr_ros.data.imageio import to_uint8
    from nitedr_ros.data.rain_styles import render_style
    from nitedr_ros.evaluation.evaluate import ModelRunner
    from nitedr_ros.evaluation.metrics import derain_metrics
    from nitedr_ros.paths import models_dir, shared_data_dir

    data = shared_data_dir()
    if data is None:
        print('the shared data folder is needed (NITEDR_DATA)', file=sys.stderr)
        return 2
    models = [tuple(entry.split('=', 1)) for entry in args.model]
    models += [(stem, str(models_dir() / f'{stem}.onnx')) for stem in SHIPPED]
    runners = [(name, ModelRunner(path, 'onnxruntime-cpu')) for name, path in models]

    def row(name: str, rainy: np.ndarray, clean: np.ndarray | None) -> np.ndarray:
        rainy = np.ascontiguousarray(fit(rainy))
        height = round(rainy.shape[0] * TILE_WIDTH / rainy.shape[1])
        reference = clean if clean is not None else rainy
        tiles = [tile(rainy, f'{name[:30]} {derain_metrics(rainy, reference)["psnr_y"]:.1f} dB'
                      if clean is not None else f'{name[:40]}', height)]
        for model, runner in runners:
            output = to_uint8(runner(image=rainy.astype(np.float32) / 255.0)['derained'])
            score = derain_metrics(output, reference)['psnr_y']
            suffix = f'{score:.1f} dB' if clean is not None else f'{score:.1f} dB vs input'
            tiles.append(tile(output, f'{model[:30]} {suffix}', height))
        tiles.append(tile(clean, 'clean' if clean is not None else 'no ground truth', height))
        return np.hstack(tiles)

    pairs = generalisation_pairs(data)
    groups = {}
    for group in ('held_out_pairs', 'held_out_styles'):
        members = [p for p in pairs if p.group == group]
        picks = np.linspace(0, len(members) - 1, min(args.rows, len(members))).round().astype(int)
        groups[group] = [members[i] for i in picks]
    for group, members in groups.items():
        rows = []
        for pair in members:
            rainy, clean = pair.load()
            rows.append(row(pair.name, rainy, fit(clean)))
        write_grid(results_dir / f'grid_{group}.png', rows)
    rows = []
    for index, bag in enumerate(REAL_BAGS):
        frame = bag_frame(data / bag) if (data / bag).exists() else None
        if frame is None:
            print(f'no compressed image in {data / bag}: left out of the real-bag grid')
            continue
        frame, name = fit(frame), Path(bag).name
        rows.append(row(f'{name} as recorded', frame, None))
        sample = render_style(frame.astype(np.float32) / 255.0, np.random.default_rng(index), REAL_BAG_RAIN)
        rows.append(row(f'{name} + {REAL_BAG_RAIN}', to_uint8(sample.rainy), to_uint8(sample.clean)))
    if rows:
        write_grid(results_dir / 'grid_real_bag.png', rows)
    write_result(results_dir, 'grids.md', '# Generalisation grids\n\nColumns: rainy input (PSNR-Y against '
                 'the clean image) | ' + ' | '.join(name for name, _ in models) + ' | clean. Real-bag rows '
                 'without ground truth show each output\'s PSNR-Y against its input (high = left alone).\n')
    for _, runner in runners:
        runner.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
