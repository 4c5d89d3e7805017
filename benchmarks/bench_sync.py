"""Synchronizer cost: nitedr_ros.core.sync.Synchronizer vs the message_filters Python algorithm.

The reference is a re-implementation of message_filters' Python ``ApproximateTimeSynchronizer.add`` written
from its description (ros2-node-conventions.md section 3.1), with integer-ns stamps instead of rclpy
Time/Duration objects (so it is, if anything, faster than the real one). Scenarios, four inputs:

- ``adversarial_q50``: queue 50, every queue full of candidates on both sides of the pivot, no combination
  within the slop (the notes' worst case: ~339 ms per message for message_filters);
- ``steady_30hz_q50`` / ``steady_30hz_q5``: four cameras at 30 Hz with +-3 ms jitter, one set per frame.

Writes ``sync_bench.{json,md}`` to a scratch folder (benchmarks/results with ``--publish``, which a
``--quick`` run should never use). Run: ``python benchmarks/bench_sync.py [--quick] [--publish]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import threading
import time
from pathlib import Path

from bench_output import add_output_arguments, output_dir, write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nitedr_ros.core.sync import Synchronizer  # noqa: E402
from nitedr_ros.machine import machine_info  # noqa: E402
from nitedr_ros.pipeline.timing import percentile_summary  # noqa: E402

MS = 1_000_000


class MessageFiltersPythonReference:
    """message_filters' Python ApproximateTimeSynchronizer ``add`` (6.0.6), as described in the notes."""

    def __init__(self, count: int, queue_size: int, slop_ns: int, callback) -> None:
        self.queues = [{} for _ in range(count)]  # one dict per input keyed by stamp
        self.queue_size = queue_size
        self.slop = slop_ns
        self.callback = callback
        self.lock = threading.Lock()

    def add(self, msg, stamp: int, index: int) -> None:
        self.lock.acquire()
        my_queue = self.queues[index]
        my_queue[stamp] = msg  # an equal stamp overwrites
        while len(my_queue) > self.queue_size:
            del my_queue[min(my_queue)]
        candidates = []  # pivot = the message that just arrived
        for i, queue in enumerate(self.queues):
            if i == index:
                continue
            near = sorted((s for s in queue if abs(s - stamp) <= self.slop), key=lambda s: abs(s - stamp))
            if not near:
                self.lock.release()
                return
            candidates.append(near)
        for combination in itertools.product(*candidates):
            stamps = list(combination)
            stamps.insert(index, stamp)
            if max(stamps) - min(stamps) < self.slop and all(s in q for s, q in zip(stamps, self.queues)):
                msgs = [q[s] for s, q in zip(stamps, self.queues)]
                for s, q in zip(stamps, self.queues):
                    del q[s]
                self.callback(*msgs)  # inside the lock, as the original
                break
        self.lock.release()


def adversarial(queue: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(fill events, measured events) as (input index, stamp ns); input 0 is the pivot stream."""
    fill = []
    for k in range(queue):
        fill.append((1, (1000 + k * 24 / queue) * MS))
        fill.append((2, (1076 + k * 24 / queue) * MS))
        fill.append((3, (1050 + k * 0.01) * MS))
    return [(i, int(s)) for i, s in fill], [(0, int((1050 + k * 0.01) * MS)) for k in range(queue)]


def steady(frames: int, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    events = []
    for k in range(frames):
        base = 1000 * MS + k * 33_333_333
        events += [(i, base + rng.randint(-3, 3) * MS) for i in range(4)]
    return events


def _time_ours(fill, measured, queue, slop_ns, min_interval_ns=0):
    sets = []
    sync = Synchronizer(
        ['a', 'b', 'c', 'd'],
        queue_size=queue,
        slop_ns=slop_ns,
        min_interval_ns=min_interval_ns,
        callback=sets.append,
    )
    names = sync.topics
    for i, stamp in fill:
        sync.add(names[i], stamp, None)
    times = []
    for i, stamp in measured:
        start = time.perf_counter()
        sync.add(names[i], stamp, None)
        times.append(time.perf_counter() - start)
    return times, len(sets)


def _time_reference(fill, measured, queue, slop_ns, limit_s):
    sets = []
    ref = MessageFiltersPythonReference(4, queue, slop_ns, lambda *m: sets.append(m))
    for i, stamp in fill:
        ref.add(None, stamp, i)
    times = []
    spent = 0.0
    for i, stamp in measured:
        start = time.perf_counter()
        ref.add(None, stamp, i)
        times.append(time.perf_counter() - start)
        spent += times[-1]
        if spent > limit_s:
            break
    return times, len(sets)


def _summary(times):
    latency = percentile_summary([t * 1000.0 for t in times], (50, 99))
    ms = {f'{key}_ms': latency[key] for key in ('mean', 'p50', 'p99', 'max')}
    return {'messages': latency['count'], **ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='fewer messages (smoke run)')
    parser.add_argument(
        '--reference-limit-s',
        type=float,
        default=20.0,
        help='stop timing the reference after this much time per scenario',
    )
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick and args.publish:
        parser.error('--quick numbers are smoke numbers: they are never published over the reference')
    results_dir = output_dir(args)
    frames = 150 if args.quick else 1500
    limit = 2.0 if args.quick else args.reference_limit_s
    slop = 50 * MS
    results = {}
    fill, measured = adversarial(50)
    ours, ours_sets = _time_ours(fill, measured, 50, slop)
    ref, ref_sets = _time_reference(fill, measured, 50, slop, limit)
    results['adversarial_q50'] = {
        'ours': _summary(ours),
        'message_filters_python': _summary(ref),
        'sets_ours': ours_sets,
        'sets_reference': ref_sets,
    }
    for queue in (50, 5):
        events = steady(frames)
        ours, ours_sets = _time_ours([], events, queue, 15 * MS, min_interval_ns=25 * MS)
        ref, ref_sets = _time_reference([], events, queue, 15 * MS, limit)
        results[f'steady_30hz_q{queue}'] = {
            'ours': _summary(ours),
            'message_filters_python': _summary(ref),
            'sets_ours': ours_sets,
            'sets_reference': ref_sets,
        }
    report = {
        'benchmark': 'synchronizer, four inputs',
        'machine': machine_info(),
        'results': results,
        'note': 'reference = message_filters Python algorithm re-implemented with int stamps (no rclpy '
        'Time/Duration allocation), so the real one is slower',
    }
    write_result(results_dir, 'sync_bench.json', json.dumps(report, indent=2))
    lines = [
        '# Synchronizer: four inputs, per-message cost',
        '',
        f'Machine: {report["machine"]}',
        '',
        '| scenario | ours mean ms | ours p99 ms | ours max ms | message_filters mean ms | '
        'message_filters max ms | sets ours / ref |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, r in results.items():
        o, m = r['ours'], r['message_filters_python']
        lines.append(
            f'| {name} | {o["mean_ms"]:.4f} | {o["p99_ms"]:.4f} | {o["max_ms"]:.4f} | {m["mean_ms"]:.3f} '
            f'| {m["max_ms"]:.3f} | {r["sets_ours"]} / {r["sets_reference"]} |'
        )
    lines += ['', report['note'], '']
    print('\n'.join(lines))
    write_result(results_dir, 'sync_bench.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
