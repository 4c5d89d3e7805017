#!/usr/bin/env python3
"""DDS image latency between two processes: nitedr's ROS-2-wire Cyclone runtime, 1280x720 rgb8 at 30 Hz.

A publisher process sends sensor_msgs/Image on ``rt/bench/image`` with ``header.stamp`` set to the wall
clock just before encoding; a subscriber process decodes each sample into a numpy image and records
``receive_done - stamp``. Both use the shipped loopback Cyclone config (or CYCLONEDDS_URI).
Target: median under 10 ms with nothing lost. Writes ``dds_latency_*.{json,md}`` to a scratch folder (to
benchmarks/results with ``--publish``).

    python benchmarks/bench_dds_latency.py [--frames 300] [--rate 30] [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_output import TEMP_PREFIX, add_output_arguments, output_dir, write_result

TOPIC = '/bench/image'
IMAGE = 'sensor_msgs/msg/Image'


def _node(name: str, domain: int):
    from nitedr_ros.transports.dds.participant import DdsNode

    return DdsNode(name, domain_id=domain)


def run_subscriber(args: argparse.Namespace) -> None:
    from nitedr_ros.transports.dds.participant import RELIABLE, SENSOR_DATA

    node = _node('bench_sub', args.domain)
    latencies: list[float] = []
    shapes: set[tuple[int, ...]] = set()

    def on_image(msg, _receive_ns: int) -> None:
        image = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step // 3, 3)
        done = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((done - stamp) / 1e6)
        shapes.add(image.shape)

    qos = RELIABLE if args.qos == 'reliable' else SENSOR_DATA
    node.create_subscription(TOPIC, IMAGE, on_image, qos=qos)
    print('ready', flush=True)
    deadline = time.monotonic() + args.frames / args.rate + 30
    idle_since = None
    while time.monotonic() < deadline and len(latencies) < args.frames:
        if node.spin_once(0.1) == 0 and latencies:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 2.0:
                break
        else:
            idle_since = None
    Path(args.out).write_text(json.dumps({'latencies_ms': latencies, 'shapes': sorted(shapes)}))
    node.close()


def run_publisher(args: argparse.Namespace, warmup: int) -> int:
    from rosbags.typesys import Stores, get_typestore

    from nitedr_ros.transports.dds.participant import RELIABLE, SENSOR_DATA

    node = _node('bench_pub', args.domain)
    types = get_typestore(Stores.ROS2_JAZZY).types
    qos = RELIABLE if args.qos == 'reliable' else SENSOR_DATA
    publisher = node.create_publisher(TOPIC, IMAGE, qos=qos)
    if not node.wait_for_matches([publisher], 20.0):
        raise SystemExit('subscriber never matched')
    time.sleep(0.5)
    rng = np.random.default_rng(0)
    shape = (args.height, args.width, 3)
    frames = [rng.integers(0, 255, shape, dtype=np.uint8).reshape(-1) for _ in range(4)]
    period = 1.0 / args.rate
    next_time = time.monotonic()
    write_ms = []
    for index in range(args.frames + warmup):
        now = time.time_ns()
        header = types['std_msgs/msg/Header'](
            types['builtin_interfaces/msg/Time'](now // 1_000_000_000, now % 1_000_000_000), 'bench')
        msg = types[IMAGE](header, args.height, args.width, 'rgb8', 0, args.width * 3, frames[index % 4])
        start = time.perf_counter()
        publisher.publish(msg)
        write_ms.append((time.perf_counter() - start) * 1e3)
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    time.sleep(1.0)
    node.close()
    return int(np.median(write_ms) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--domain', type=int, default=61)
    parser.add_argument('--role', choices=('main', 'sub'), default='main')
    parser.add_argument('--out', default='', help='(internal) where the subscriber process writes')
    add_output_arguments(parser)
    args = parser.parse_args()

    from nitedr_ros.machine import machine_info
    from nitedr_ros.pipeline.timing import percentile_summary
    from nitedr_ros.transports.dds.participant import select_dds_config

    select_dds_config()
    if args.role == 'sub':
        run_subscriber(args)
        return 0

    warmup = 10
    results_dir = output_dir(args)
    from nitedr_ros.fileio import scratch_folder

    with scratch_folder(TEMP_PREFIX) as folder:
        sub_out = folder / 'dds_latency_sub.json'
        cmd = [sys.executable, __file__, '--role', 'sub', '--out', str(sub_out), '--frames',
               str(args.frames + warmup), '--rate', str(args.rate), '--qos', args.qos,
               '--domain', str(args.domain)]
        subscriber = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            assert subscriber.stdout is not None
            subscriber.stdout.readline()  # 'ready'
            print(f'publishing {args.frames + warmup} frames at {args.rate:g} Hz', flush=True)
            write_us = run_publisher(args, warmup)
            subscriber.wait(timeout=120)
        finally:
            if subscriber.poll() is None:
                subscriber.kill()
        received = json.loads(sub_out.read_text())
    latencies = np.array(received['latencies_ms'][warmup:] if len(received['latencies_ms']) > warmup
                         else received['latencies_ms'])
    sent = args.frames + warmup
    result = {
        'benchmark': 'dds_latency', 'width': args.width, 'height': args.height, 'encoding': 'rgb8',
        'payload_bytes': args.width * args.height * 3 + 48, 'rate_hz': args.rate, 'qos': args.qos,
        'sent': sent, 'received': len(received['latencies_ms']), 'warmup_excluded': warmup,
        'latency_ms': {**percentile_summary(latencies, (50, 90, 99)), 'min': float(latencies.min())}
        if latencies.size else {},
        'publish_call_ms_median': write_us / 1000,
        'machine': machine_info({'cyclonedds_uri': os.environ.get('CYCLONEDDS_URI', '')}),
        'time': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    stem = f'dds_latency_{args.width}x{args.height}_{args.qos}'
    write_result(results_dir, f'{stem}.json', json.dumps(result, indent=2))
    lat = result['latency_ms']
    markdown = (f'# DDS latency, {args.width}x{args.height} rgb8 at {args.rate:g} Hz, {args.qos}\n\n'
                f'| sent | received | median ms | p90 ms | p99 ms | max ms | publish call ms |\n'
                f'|---|---|---|---|---|---|---|\n'
                f'| {sent} | {result["received"]} | {lat.get("p50", float("nan")):.2f} | '
                f'{lat.get("p90", float("nan")):.2f} | {lat.get("p99", float("nan")):.2f} | '
                f'{lat.get("max", float("nan")):.2f} | {write_us / 1000:.2f} |\n\n'
                f'Machine: {result["machine"]}\n')
    print(markdown)
    write_result(results_dir, f'{stem}.md', markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
