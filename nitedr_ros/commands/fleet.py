"""``nitedr fleet derain INPUT OUTPUT_DIR``: ``nitedr bag derain`` over an archive of bags, on Ray or a
local process pool; resumable (a manifest in OUTPUT_DIR), one progress bar, a report at the end."""

from __future__ import annotations

import argparse
import json

from ..modes import MODES
from .options import parse_models, parse_pairs, parse_param_overrides

HELP = 'derain a whole archive of bags on a Ray cluster (or a local process pool); resumable'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest='action', required=True, metavar='ACTION')
    derain = sub.add_parser(
        'derain', help='derain every bag under INPUT into OUTPUT_DIR (same as bag derain, bag by bag)',
        description='Each bag is one task: exactly nitedr bag derain (same outputs and diagnostics), '
                    'written under a temporary name and renamed when complete; inputs are never modified. '
                    'OUTPUT_DIR/fleet_manifest.jsonl records every finished bag: a second run skips them and '
                    'retries failed ones. Ctrl-C stops cleanly; finished bags stay recorded.')
    derain.add_argument('input', help='a folder (searched recursively for rosbag2 folders, .mcap files and '
                                      'ROS 1 .bag files) or a text file listing bags, one per line')
    derain.add_argument('output_dir', help='outputs go here under the input\'s relative path, with the '
                                           'manifest and fleet_report.md/.json')
    derain.add_argument('--address', default='local',
                        help='local: a process pool on this machine, no Ray (default); start: a Ray on this '
                             'machine (loopback); auto: the Ray cluster this machine is part of; '
                             'ray://HOST:PORT: a Ray client connection; HOST:PORT: the cluster head')
    derain.add_argument('--workers', type=int, default=0,
                        help='workers (each holds its engines across bags); default: CPUs / --cpus-per-task, '
                             'or GPUs / --gpus-per-task')
    derain.add_argument('--cpus-per-task', type=float, default=1.0,
                        help='CPUs per worker (default 1; also its ONNX Runtime threads unless --param '
                             'threads=N)')
    derain.add_argument('--gpus-per-task', type=float, default=0.0,
                        help='GPUs per worker (Ray only; 1 = one actor per GPU)')
    derain.add_argument('--params', default='', help='node parameter YAML, as for bag derain')
    derain.add_argument('--mode', choices=MODES, help='pipeline mode (overrides params; default nitedr)')
    derain.add_argument('--model', action='append', default=[], metavar='ROLE=PATH',
                        help='model of a role (derain, fusion, stereo); repeatable. Paths must exist on '
                             'every worker machine')
    derain.add_argument('--backend', help='inference backend (overrides params)')
    derain.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='any node parameter (repeatable)')
    derain.add_argument('--topic', action='append', default=[], metavar='STREAM=TOPIC',
                        help='bag topic of a stream in every bag (default: auto-detected per bag)')
    derain.add_argument('--namespace', default='/', help='node namespace (prefix of the output topics)')
    derain.add_argument('--storage', choices=('sqlite3', 'mcap'),
                        help='output storage (default: as each input)')
    derain.add_argument('--strict', action='store_true',
                        help='a bag with an undecodable message fails (default: skipped and counted)')
    derain.add_argument('--checksum', action='store_true',
                        help='recognise unchanged inputs by sha256 (default: size + modification time)')
    derain.add_argument('--no-progress', action='store_true', help='no progress bar')
    derain.add_argument('--json', action='store_true', help='print the summary as JSON')


def run(args: argparse.Namespace) -> int:
    from ..fleet.run import FleetOptions, derain_fleet, validate_address
    from ..fleet.runners import Resources
    from ..fleet.worker import FleetSettings

    overrides = parse_param_overrides(args.param)
    overrides.setdefault('threads', max(1, int(args.cpus_per_task)))
    settings = FleetSettings(params=args.params, mode=args.mode,
                             topics=parse_pairs(args.topic, '--topic', 'STREAM=TOPIC'),
                             namespace=args.namespace, backend=args.backend, models=parse_models(args.model),
                             overrides=overrides, storage=args.storage, strict=args.strict)
    options = FleetOptions(input=args.input, output_dir=args.output_dir, settings=settings,
                           address=validate_address(args.address),
                           resources=Resources(args.workers, args.cpus_per_task, args.gpus_per_task),
                           checksum=args.checksum, progress=not args.no_progress)
    summary = derain_fleet(options)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f'{summary["done"]} bags derained, {summary["failed"]} failed, '
              f'{summary["skipped_done_before"]} skipped (done before), {summary["not_run"]} not run; '
              f'{summary["bags_per_min"]:.1f} bags/min, {summary["frames_per_s"]:.1f} frames/s')
        if summary['failures_by_reason']:
            print('failures: ' + ', '.join(f'{k} {v}' for k, v in summary['failures_by_reason'].items()))
        print(f'report:   {summary["report"]}\nmanifest: {summary["manifest"]}')
    if summary['interrupted']:
        print('interrupted: finished bags are recorded; run the same command again to finish', flush=True)
        return 130
    return 1 if summary['failed'] else 0
