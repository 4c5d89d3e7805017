"""``nitedr calibrate-thermal``: measure how the thermal camera maps onto the RGB camera, or check it.

Calibrate: frame pairs showing a heated or backlit checkerboard / circle grid in both cameras (a bag, or two
image folders) -> the target's corners in both -> the homography (RANSAC) and, with both cameras'
intrinsics (their camera_info in the bag, or --rgb-intrinsics/--thermal-intrinsics), the extrinsic pose ->
a parameter YAML the node loads (--params / params_file:=) and the errors in pixels.

Check (--check): thermal edges drawn over the RGB frame for a few frames of a bag, without and with the
registration of --params, as a PNG, with an edge-alignment score for each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .options import parse_pairs

HELP = 'calibrate the thermal-to-RGB registration from a target seen by both cameras, or check it (--check)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group('frames (a bag, or two folders)')
    source.add_argument('--bag', default='', help='bag with both cameras (rosbag2 or ROS 1)')
    source.add_argument('--topic', action='append', default=[], metavar='STREAM=TOPIC',
                        help='bag topic of rgb / thermal (default: the node\'s names, else auto-detected)')
    source.add_argument('--rgb-dir', default='',
                        help='folder of RGB images (paired with --thermal-dir by name)')
    source.add_argument('--thermal-dir', default='', help='folder of thermal images (16-bit PNG kept as is)')
    source.add_argument('--frames', type=int, default=20, help='frame pairs to use, spread over the input')
    source.add_argument('--slop', type=float, default=0.02,
                        help='bag: the most two stamps of a pair may differ, s (default 0.02)')
    target = parser.add_argument_group('target')
    target.add_argument('--pattern', default='chessboard', choices=('chessboard', 'circles', 'acircles'))
    target.add_argument('--columns', type=int, default=9, help='inner corners (circles) per row (default 9)')
    target.add_argument('--rows', type=int, default=6, help='inner corners (circles) per column (default 6)')
    target.add_argument('--square-size', type=float, default=0.05,
                        help='corner spacing in metres (extrinsics only; default 0.05)')
    parser.add_argument('--rgb-intrinsics', default='', metavar='FX,FY,CX,CY',
                        help='RGB intrinsics when there is no camera_info (folders)')
    parser.add_argument('--thermal-intrinsics', default='', metavar='FX,FY,CX,CY',
                        help='thermal intrinsics when there is no camera_info (folders)')
    parser.add_argument('--mode', choices=('homography', 'extrinsics'), default='homography',
                        help='registration.mode written to the YAML (extrinsics needs intrinsics; both '
                             'values are written when measured, so either can be chosen later)')
    parser.add_argument('--plane-distance', type=float, default=20.0,
                        help='registration.plane_distance_m written to the YAML (extrinsics mode)')
    parser.add_argument('--check', action='store_true',
                        help='instead of calibrating: overlay thermal edges on RGB with the registration of '
                             '--params, write a PNG (--out)')
    parser.add_argument('--params', default='',
                        help='--check: the parameter YAML whose registration is shown')
    parser.add_argument('--out', required=True,
                        help='calibrate: the parameter YAML to write; --check: the PNG to write')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')


def _pairs(args: argparse.Namespace):
    from ..calibration.frame_pairs import pairs_from_bag, pairs_from_folders

    if args.bag and (args.rgb_dir or args.thermal_dir):
        raise ConfigError('give either --bag or --rgb-dir and --thermal-dir, not both')
    if args.bag:
        return pairs_from_bag(args.bag, parse_pairs(args.topic, '--topic', 'STREAM=TOPIC'), args.frames,
                              args.slop)
    if not (args.rgb_dir and args.thermal_dir):
        raise ConfigError('give the frames: --bag BAG, or --rgb-dir and --thermal-dir')
    return pairs_from_folders(args.rgb_dir, args.thermal_dir, args.frames), {}


def _intrinsics(args: argparse.Namespace, pairs, camera_info):
    from ..calibration.thermal_rgb import Intrinsics

    found = {}
    for stream, given, image in (('rgb', args.rgb_intrinsics, pairs[0][0]),
                                 ('thermal', args.thermal_intrinsics, pairs[0][1])):
        if given:
            values = [float(v) for v in given.split(',')]
            found[stream] = Intrinsics.from_values(values, image.shape[0], image.shape[1])
        elif stream in camera_info:
            found[stream] = Intrinsics.from_camera_info(camera_info[stream])
    return found.get('rgb'), found.get('thermal')


def run(args: argparse.Namespace) -> int:
    if args.check:
        return _check(args)
    from ..calibration.thermal_rgb import TargetSpec, calibrate, parameter_yaml, write_parameters
    from ..paths import ensure_writable_output, portable_path

    ensure_writable_output(Path(args.out), args.force)
    target = TargetSpec(args.pattern, args.columns, args.rows, args.square_size)
    pairs, camera_info = _pairs(args)
    rgb_k, thermal_k = _intrinsics(args, pairs, camera_info)
    if args.mode == 'extrinsics' and (rgb_k is None or thermal_k is None):
        raise ConfigError('--mode extrinsics needs both cameras\' intrinsics: camera_info in the bag with a '
                          'non-zero K, or --rgb-intrinsics and --thermal-intrinsics')
    print(f'looking for the {args.columns}x{args.rows} {args.pattern} in {len(pairs)} frame pairs ...',
          flush=True)
    calibration = calibrate(pairs, target, rgb_intrinsics=rgb_k, thermal_intrinsics=thermal_k)
    source = portable_path(args.bag) if args.bag else f'{portable_path(args.rgb_dir)} + ' \
                                                      f'{portable_path(args.thermal_dir)}'
    text = parameter_yaml(calibration, mode=args.mode, plane_distance_m=args.plane_distance, source=source)
    path = write_parameters(args.out, text, force=args.force)
    print(calibration.summary())
    print(f'wrote {path}: load it with --params {path} (nitedr run / bag derain) or params_file:={path}; '
          f'check it with nitedr calibrate-thermal --check --params {path} --bag BAG --out check.png')
    return 0


def _check(args: argparse.Namespace) -> int:
    from ..calibration.overlay import write_check
    from ..core.parameters import load_parameter_file, registration_spec, validate
    from ..paths import ensure_writable_output

    if not args.params:
        raise ConfigError('--check needs --params, the parameter YAML with the registration to show')
    out = ensure_writable_output(Path(args.out), args.force)
    params = validate(load_parameter_file(args.params).given)
    spec = registration_spec(params)
    args.frames = min(args.frames, 4) if args.frames == 20 else args.frames
    pairs, camera_info = _pairs(args)
    intrinsics = {stream: (tuple(float(v) for v in msg.k), int(msg.height), int(msg.width))
                  for stream, msg in camera_info.items()}
    scores = write_check(out, pairs, spec, intrinsics)
    print(f'edge alignment (gradient correlation, 1 = every edge on the other\'s): without registration '
          f'{scores["without"]:.3f}, with {spec.mode} {scores["with"]:.3f}')
    print(f'wrote {out}')
    return 0
