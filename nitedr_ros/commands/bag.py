"""``nitedr bag <derain|make-sample|play|record|info>``: rosbag2 tools without a ROS install."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from ..modes import MODES
from .options import parse_models, parse_pairs, parse_param_overrides

HELP = 'rosbag2 tools without ROS: derain a bag, make the sample bag, play a bag over DDS, record, info'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest='action', required=True, metavar='ACTION')

    derain = sub.add_parser(
        'derain', help='run the node on a bag: OUT = all input topics + derained/fused images + /diagnostics',
        description='Runs the node core synchronously over a bag (rosbag2 sqlite3/mcap or ROS 1): same '
                    'synchronizer, pipeline and diagnostics as the live node, bag time as node time.')
    derain.add_argument('input', help='input bag: rosbag2 folder, .mcap file or ROS 1 .bag (never modified)')
    derain.add_argument('output', help='output rosbag2 folder (refused if it exists, unless --force)')
    derain.add_argument('--params', default='',
                        help='node parameter YAML (/**: ros__parameters:); default: the shipped '
                             'config/<mode>.yaml, with max_input_age_ms 0 (a bag\'s record delay is not '
                             'backlog) unless --params or --param sets it')
    derain.add_argument('--mode', choices=MODES,
                        help='pipeline mode (overrides params; default nitedr); full = all four cameras')
    derain.add_argument('--topic', action='append', default=[], metavar='STREAM=TOPIC',
                        help='bag topic of a stream (rgb, left, right, thermal); repeatable. Default: the '
                             "node's topic names, else auto-detected from the names")
    derain.add_argument('--namespace', default='/', help='node namespace (prefix of the output topics)')
    derain.add_argument('--backend', help='inference backend (overrides params), e.g. onnxruntime-cpu')
    derain.add_argument('--model', action='append', default=[], metavar='ROLE=PATH',
                        help='model of a role (derain, fusion, stereo); repeatable (overrides params)')
    derain.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='any node parameter, e.g. max_input_age_ms=200.0 (repeatable; overrides params)')
    derain.add_argument('--storage', choices=('sqlite3', 'mcap'),
                        help='output storage (default: as the input)')
    derain.add_argument('--add-latency', action='store_true',
                        help='record outputs at input time + measured processing time (default: at the '
                             'record time of the newest input of the set)')
    derain.add_argument('--no-progress', action='store_true', help='no progress bar')
    derain.add_argument('--json', action='store_true', help='print the summary as JSON')
    derain.add_argument('--strict', action='store_true',
                        help='stop at the first message that cannot be decoded (default: skip it, count it '
                             'and name it in the summary)')
    derain.add_argument('--force', action='store_true', help='replace an existing OUTPUT')

    sample = sub.add_parser('make-sample',
                            help='write the small night-rain sample bag (RGB, stereo, thermal)')
    sample.add_argument('output', help='output rosbag2 folder')
    sample.add_argument('--duration', type=float, default=4.0, help='seconds of recording (default 4)')
    sample.add_argument('--width', type=int, default=320, help='image width in pixels (default 320)')
    sample.add_argument('--height', type=int, default=240, help='image height in pixels (default 240)')
    sample.add_argument('--rgb-hz', type=float, default=20.0, help='RGB camera rate (default 20)')
    sample.add_argument('--stereo-hz', type=float, default=15.0, help='stereo pair rate (default 15)')
    sample.add_argument('--thermal-hz', type=float, default=10.0, help='thermal camera rate (default 10)')
    sample.add_argument('--cameras', default='rgb,stereo,thermal', help='comma list of rgb, stereo, thermal')
    sample.add_argument('--seed', type=int, default=7, help='random seed of the rain and the timing jitter')
    sample.add_argument('--storage', choices=('sqlite3', 'mcap'), default='sqlite3',
                        help='rosbag2 storage plugin (default sqlite3)')
    sample.add_argument('--thermal-offset', default='0,0', metavar='DX,DY',
                        help='make the thermal camera a separate, misaligned sensor: its image shifted by '
                             'DX,DY thermal pixels (default 0,0: registered, as in the datasets)')
    sample.add_argument('--thermal-scale', type=float, default=1.0,
                        help='thermal resolution relative to RGB (default 1; e.g. 0.8)')
    sample.add_argument('--force', action='store_true', help='replace an existing OUTPUT')

    play = sub.add_parser('play', help='publish a bag over DDS with its recorded timing (ROS 2 wire format)')
    play.add_argument('bag', help='rosbag2 folder, .mcap file or ROS 1 .bag')
    play.add_argument('--rate', type=float, default=1.0, help='playback speed factor (default 1)')
    play.add_argument('--loop', action='store_true', help='play again from the start until interrupted')
    play.add_argument('--clock', action='store_true',
                      help='publish /clock (bag time): nitedr run switches to it by itself; a ROS 2 node '
                           'needs use_sim_time:=true, or it drops the old stamps as stale')
    play.add_argument('--clock-hz', type=float, default=100.0,
                      help='/clock messages per second (default 100)')
    play.add_argument('--topics', nargs='+', default=[], help='only these topics')
    play.add_argument('--wait-for', nargs='+', default=[], metavar='TOPIC',
                      help='wait until these topics have a subscriber before playing')
    play.add_argument('--wait-timeout', type=float, default=30.0,
                      help='seconds to wait for --wait-for subscribers before giving up (default 30)')
    play.add_argument('--delay', type=float, default=0.0, help='seconds to wait before playing')
    play.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable',
                      help='publisher reliability (default reliable: a best-effort node subscription '
                           'matches it too; best_effort as a live camera driver publishes)')
    play.add_argument('--publish-log', default='', metavar='CSV',
                      help='write topic,stamp ns,publish wall time ns per message (latency studies)')
    _dds_arguments(play)

    record = sub.add_parser('record', help='record ROS 2 topics from DDS into a rosbag2')
    record.add_argument('output', help='output rosbag2 folder (refused if it exists, unless --force)')
    record.add_argument('--topics', nargs='+', default=[], help='topics to record (default: all ROS topics)')
    record.add_argument('--duration', type=float, default=0.0, help='stop after this many seconds')
    record.add_argument('--idle', type=float, default=0.0,
                        help='stop after this many seconds without messages (once one arrived)')
    record.add_argument('--storage', choices=('sqlite3', 'mcap'), default='sqlite3',
                        help='rosbag2 storage plugin (default sqlite3)')
    record.add_argument('--qos', choices=('auto', 'reliable', 'best_effort'), default='auto',
                        help='reader reliability: auto = what each publisher offers (as ros2 bag record); '
                             'a fixed value misses publishers it does not match (reported)')
    record.add_argument('--force', action='store_true', help='replace an existing OUTPUT')
    _dds_arguments(record)

    info = sub.add_parser('info', help='topics, types, counts and image topics of a bag')
    info.add_argument('bag', help='rosbag2 folder, .mcap file or ROS 1 .bag')
    info.add_argument('--json', action='store_true', help='print the information as JSON')


def _dds_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--domain', type=int, default=None, help='DDS domain (default: $ROS_DOMAIN_ID or 0)')
    parser.add_argument('--dds-config', default=None,
                        help='Cyclone DDS XML (default: $CYCLONEDDS_URI, else the shipped loopback config)')


def _stop_on_signals(stop: Any) -> None:
    def handler(_signum: int, _frame: Any) -> None:
        stop()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    return {'derain': _derain, 'make-sample': _make_sample, 'play': _play, 'record': _record,
            'info': _info}[args.action](args)


def _derain(args: argparse.Namespace) -> int:
    from ..transports.bag.derain import BagDerainOptions, derain_bag, format_summary

    options = BagDerainOptions(
        input=args.input, output=args.output, params=args.params, mode=args.mode,
        topics=parse_pairs(args.topic, '--topic', 'STREAM=TOPIC'), namespace=args.namespace,
        backend=args.backend, models=parse_models(args.model), overrides=parse_param_overrides(args.param),
        storage=args.storage,
        add_latency=args.add_latency,
        progress=not args.no_progress, force=args.force, strict=args.strict)
    summary = derain_bag(options)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _make_sample(args: argparse.Namespace) -> int:
    from ..transports.bag.sample import SampleSpec, make_sample

    spec = SampleSpec(duration_s=args.duration, width=args.width, height=args.height, rgb_hz=args.rgb_hz,
                      stereo_hz=args.stereo_hz, thermal_hz=args.thermal_hz, seed=args.seed,
                      cameras=tuple(c.strip() for c in args.cameras.split(',') if c.strip()),
                      storage=args.storage, thermal_offset=_offset(args.thermal_offset),
                      thermal_scale=args.thermal_scale)
    summary = make_sample(args.output, spec, force=args.force)
    print(f'wrote {summary["path"]}: {summary["messages"]} messages, {summary["duration_s"]:g} s, '
          f'{summary["size"]}, {summary["storage"]}')
    for topic, count in summary['topics'].items():
        print(f'  {topic}: {count} images (+ camera_info)')
    print(f'  images from {summary["sources"]}; stereo rain: {summary["stereo_rain"]}')
    if summary['thermal_homography']:
        values = ', '.join(f'{v:g}' for v in summary['thermal_homography'])
        print('  thermal camera misaligned on purpose; its registration: --param '
              f'registration.mode=homography --param "registration.homography=[{values}]"')
    return 0


def _offset(text: str) -> tuple[float, float]:
    from ..errors import ConfigError

    try:
        dx, dy = (float(v) for v in text.split(','))
    except ValueError:
        raise ConfigError(f'--thermal-offset needs DX,DY in pixels, got {text!r}') from None
    return dx, dy


def _play(args: argparse.Namespace) -> int:
    from ..transports.bag.player import BagPlayer
    from ..transports.dds.participant import RELIABLE, SENSOR_DATA

    log_lines: list[str] = []

    def on_publish(topic: str, stamp_ns: int | None, wall_ns: int) -> None:
        log_lines.append(f'{topic},{"" if stamp_ns is None else stamp_ns},{wall_ns}\n')

    player = BagPlayer(args.bag, rate=args.rate, loop=args.loop, clock=args.clock, clock_hz=args.clock_hz,
                       topics=args.topics, domain_id=args.domain,
                       qos=RELIABLE if args.qos == 'reliable' else SENSOR_DATA, wait_for=args.wait_for,
                       wait_timeout_s=args.wait_timeout, delay_s=args.delay, dds_config=args.dds_config,
                       on_publish=on_publish if args.publish_log else None)
    _stop_on_signals(player.stop)
    stats = player.run()
    if args.publish_log:
        from pathlib import Path

        log_path = Path(args.publish_log)
        log_path.write_text('topic,stamp_ns,wall_ns\n' + ''.join(log_lines))
    print(f'played {stats.total} messages in {stats.wall_s:.2f} s ({stats.loops} loop(s), '
          f'{stats.clock_messages} /clock), max lateness {stats.late_ms_max:.1f} ms')
    for topic, count in sorted(stats.published.items()):
        print(f'  {topic}: {count}')
    return 0


def _record(args: argparse.Namespace) -> int:
    from ..transports.bag.recorder import RECORD_DEPTH, BagRecorder
    from ..transports.dds.participant import QosProfile

    def matched(topic: str) -> None:
        print(f'matched {topic}', flush=True)

    recorder = BagRecorder(args.output, args.topics, storage=args.storage, force=args.force,
                           domain_id=args.domain,
                           qos=None if args.qos == 'auto' else QosProfile(args.qos, RECORD_DEPTH),
                           duration_s=args.duration, idle_s=args.idle, dds_config=args.dds_config,
                           on_matched=matched)
    _stop_on_signals(recorder.stop)
    print('recording', flush=True)
    stats = recorder.run()
    print(f'recorded {stats.total} messages in {stats.wall_s:.2f} s to {stats.path}')
    for topic, count in sorted(stats.received.items()):
        print(f'  {topic}: {count}')
    for topic, type_name in sorted(stats.skipped_types.items()):
        print(f'  skipped {topic}: unknown type {type_name}', file=sys.stderr)
    for topic, problem in sorted(stats.qos_mismatches.items()):
        print(f'  incompatible QoS on {topic}: {problem}; its messages were not recorded (try --qos auto)',
              file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..transports.bag.reader import image_topics, open_bag

    with open_bag(args.bag) as reader:
        topics = [{'topic': name, 'type': info.msgtype, 'count': info.msgcount}
                  for name, info in sorted(reader.topics.items())]
        images = [item.describe() for item in image_topics(reader)]
        info = {'bag': args.bag, 'format': 'rosbag2' if reader.is2 else 'ROS 1',
                'messages': reader.message_count,
                'duration_s': reader.duration / 1e9 if reader.message_count else 0.0,
                'topics': topics, 'image_topics': images}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f'{info["bag"]}: {info["format"]}, {info["messages"]} messages, {info["duration_s"]:.3f} s')
    for topic in topics:
        print(f'  {topic["topic"]}  {topic["type"]}  {topic["count"]}')
    print('image topics: ' + (', '.join(images) or 'none'))
    return 0
