"""``nitedr eval``: derain and fusion metrics of a checkpoint or ONNX model; markdown/JSON tables, grids."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..modelspec import NETWORKS

HELP = 'evaluate a checkpoint or ONNX model: derain PSNR/SSIM (Y, RGB), fusion metrics, tables and grids'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='training checkpoint (.pt), run with torch')
    model.add_argument('--onnx', help='ONNX model (as shipped), run with ONNX Runtime / TensorRT')
    fusion = parser.add_mutually_exclusive_group()
    fusion.add_argument('--fusion-checkpoint', help='NiteDR stage 2 (fusionnet) checkpoint')
    fusion.add_argument('--fusion-onnx', help='NiteDR stage 2 (fusionnet) ONNX model')
    parser.add_argument('--network', choices=sorted(NETWORKS), help='expected network (checked)')
    parser.add_argument('--data', required=True,
                        help='dataset folder: a known layout, or a plain folder of rainy images (real '
                             'photos: no ground truth, outputs only)')
    parser.add_argument('--layout', default='auto', help='dataset layout (default: detected)')
    parser.add_argument('--split', default='test', help='split folder inside datasets that have them')
    parser.add_argument('--split-file', help='recorded split (split.json of a run, or a split record)')
    parser.add_argument('--part', default='val', choices=('train', 'val'), help='part of --split-file')
    parser.add_argument('--val', action='store_true',
                        help='the recorded RoadScene-rain validation split (implies --split train)')
    parser.add_argument('--names', help='comma-separated sample names to evaluate')
    parser.add_argument('--max-images', type=int, default=0, help='evaluate at most N samples')
    parser.add_argument('--backend', default='auto',
                        help='engine backend for ONNX (auto, onnxruntime-cpu, onnxruntime-cuda, tensorrt)')
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'fp16'),
                        help='fp16: evaluate the exported <model>.fp16.onnx (the node\'s GPU default; on the '
                             'CPU through ONNX Runtime); ONNX models only')
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: default)')
    parser.add_argument('--no-fusion-metrics', action='store_true', help='skip the fusion metrics')
    parser.add_argument('--skip-fmi', action='store_true', help='skip the (slow) FMI metrics')
    parser.add_argument('--grid-height', type=int, default=240, help='panel height of the PNG grids')
    parser.add_argument('--no-grids', action='store_true', help='do not write PNG grids')
    parser.add_argument('--save-outputs', action='store_true',
                        help='also write the output images (outputs/<name>_derained.png, _fused.png, ...)')
    parser.add_argument('--unrounded-y', action='store_true',
                        help='PSNR/SSIM on fractional Y (BasicSR style) instead of MATLAB\'s rounded '
                             'rgb2ycbcr Y')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--out', required=True, help='output folder (metrics.json, metrics.md, grids/)')
    parser.add_argument('--force', action='store_true', help='overwrite an earlier evaluation in --out')


def run(args: argparse.Namespace) -> int:
    from ..data.split import RECORDED_SPLITS_DIR
    from ..evaluation.evaluate import EvalOptions, evaluate

    split, split_file = args.split, args.split_file
    if args.val:
        if split_file:
            raise ConfigError('give either --val or --split-file')
        split, split_file = 'train', str(RECORDED_SPLITS_DIR / 'roadscene_rain_train.json')
    options = EvalOptions(
        model=args.checkpoint or args.onnx, fusion_model=args.fusion_checkpoint or args.fusion_onnx,
        network=args.network, data=args.data, out=args.out, layout=args.layout, split=split,
        split_file=split_file, part=args.part, names=[n for n in (args.names or '').split(',') if n],
        max_images=args.max_images, backend=args.backend, precision=args.precision, threads=args.threads,
        round_y=not args.unrounded_y, progress=not args.no_progress,
        fusion_metrics=not args.no_fusion_metrics, skip_fmi=args.skip_fmi, grid_height=args.grid_height,
        grids=not args.no_grids, save_outputs=args.save_outputs, force=args.force)
    summary = evaluate(options)
    mean = summary['mean']
    if 'derained' in mean and 'input' in mean:
        print(f'{summary["count"]} samples: PSNR-Y {mean["input"]["psnr_y"]:.2f} dB (rainy) -> '
              f'{mean["derained"]["psnr_y"]:.2f} dB (derained); SSIM-Y {mean["input"]["ssim_y"]:.4f} -> '
              f'{mean["derained"]["ssim_y"]:.4f}')
    if 'clean_input' in mean:
        print(f'rain-free input: derained vs clean PSNR-Y {mean["clean_input"]["psnr_y"]:.2f} dB')
    for key, label in (('fusion', 'fusion'), ('baseline_visible', 'visible unchanged'),
                       ('baseline_average', 'average of visible and IR')):
        if mean.get(key):
            print(f'{label}: ' + ', '.join(f'{k} {v:.4f}' for k, v in mean[key].items()))
    print(f'wrote {args.out}/metrics.md, metrics.json' + ('' if args.no_grids else ', grids/'))
    return 0
