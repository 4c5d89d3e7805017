"""Node overhead per synchronized 1280x720 four-stream set, inference excluded (target < 2 ms).

Measures what the node core adds around inference: four ``on_image`` calls (validation, stamps,
synchronizer), the latest-only hand-off to the worker thread, message -> frame conversion, a pass-through
pipeline (outputs = inputs, no pre/post-processing, no model), output fields, four ``publish_image`` calls
and, amortised, diagnostics once per 30 sets. Streams: rgb (rgb8), left/right (bgr8, exact pair), thermal
(mono16), all 1280x720 in ``array.array('B')`` buffers as rclpy delivers them. Variants:

- ``core``: the sink only receives the fields (the DDS runtime and bag writer take the numpy view);
- ``core+array_copy``: the sink also builds ``array.array('B')`` per output, as the rclpy node does for
  ``msg.data`` (one copy of every output image; rclpy's own serialization is not included);
- ``offset_thermal``: thermal stamped 5 ms after the cameras (approximate path, slop 15 ms).

Writes benchmarks/results/node_overhead.json and .md. Run: ``python benchmarks/bench_node_overhead.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nitedr_ros.core.clock import ManualClock  # noqa: E402
from nitedr_ros.core.node_core import NodeCore  # noqa: E402
from nitedr_ros.core.testing import PassthroughPipeline, make_image, pattern_image  # noqa: E402
from nitedr_ros.machine import machine_info  # noqa: E402
from nitedr_ros.pipeline.timing import percentile_summary  # noqa: E402

RESULTS = ROOT / 'benchmarks' / 'results'
MS = 1_000_000
HEIGHT, WIDTH = 720, 1280
STREAMS = (('rgb', 'rgb8'), ('left', 'bgr8'), ('right', 'bgr8'), ('thermal', 'mono16'))
TARGET_MS = 2.0


class TimingSink:
    """Counts published images; signals when a set's four outputs are out."""

    def __init__(self, copy_arrays: bool) -> None:
        self.copy_arrays = copy_arrays
        self.count = 0
        self.done = threading.Event()
        self.expected = 4

    def publish_image(self, output, header, image) -> None:
        if self.copy_arrays:
            image.as_array()
        self.count += 1
        if self.count >= self.expected:
            self.done.set()

    def publish_camera_info(self, output, header, camera_info) -> None:
        pass

    def publish_diagnostics(self, statuses, stamp_ns) -> None:
        pass

    def publish_debug(self, name, value) -> None:
        pass


def _messages(count: int, thermal_offset_ms: int) -> list[list[tuple[str, object]]]:
    """Pre-built message sets (building them is the transport's deserialisation, not node overhead)."""
    pixels = {s: pattern_image(HEIGHT, WIDTH, e, seed=i) for i, (s, e) in enumerate(STREAMS)}
    sets = []
    for k in range(count):
        stamp = (1000 + 33 * k) * MS
        sets.append(
            [
                (s, make_image(pixels[s], e, stamp + (thermal_offset_ms * MS if s == 'thermal' else 0), s))
                for s, e in STREAMS
            ]
        )
    return sets


def run_variant(sets_count: int, copy_arrays: bool, thermal_offset_ms: int) -> dict[str, float]:
    clock = ManualClock(1000 * MS)
    sink = TimingSink(copy_arrays)
    core = NodeCore(
        {
            'mode': 'nitedr',
            'max_input_age_ms': 0.0,
            'sync.slop': 0.015,
            'sync.min_interval_ms': 25.0,
            'publish_camera_info': False,
        },
        sink=sink,
        clock=clock,
        pipeline=PassthroughPipeline(),
        streams=tuple(s for s, _ in STREAMS),
        own_timer=False,
    )
    core.start()
    message_sets = _messages(sets_count + 10, thermal_offset_ms)
    per_set, diagnostics = [], []
    try:
        for k, messages in enumerate(message_sets):
            sink.done.clear()
            sink.count = 0
            clock.set_ns(
                messages[0][1].header.stamp.sec * 1_000_000_000 + messages[0][1].header.stamp.nanosec
            )
            start = time.perf_counter()
            for stream, msg in messages:
                core.on_image(stream, msg)
            if not sink.done.wait(10):
                raise RuntimeError(f'set {k} was not published')
            elapsed = time.perf_counter() - start
            if k % 30 == 29:
                t0 = time.perf_counter()
                core.publish_diagnostics()
                diagnostics.append(time.perf_counter() - t0)
            if k >= 10:  # warm-up
                per_set.append(elapsed)
    finally:
        core.stop()
    latency = percentile_summary([t * 1000.0 for t in per_set])
    diag_ms = statistics.fmean(diagnostics) * 1000.0 if diagnostics else 0.0
    return {
        'sets': latency['count'],
        'mean_ms': latency['mean'] + diag_ms / 30.0,
        **{f'{key}_ms': latency[key] for key in ('p50', 'p95', 'p99', 'max')},
        'diagnostics_publish_ms': diag_ms,
        'drops': core.stats.drops_total(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sets', type=int, default=300, help='measured sets per variant')
    args = parser.parse_args(argv)
    variants = {'core': (False, 0), 'core+array_copy': (True, 0), 'offset_thermal': (False, 5)}
    results = {name: run_variant(args.sets, copy, offset) for name, (copy, offset) in variants.items()}
    report = {
        'benchmark': 'node overhead per 1280x720 four-stream set (inference excluded)',
        'target_ms': TARGET_MS,
        'machine': machine_info(),
        'results': results,
        'meets_target': {name: r['p50_ms'] < TARGET_MS for name, r in results.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / 'node_overhead.json').write_text(json.dumps(report, indent=2) + '\n')
    lines = [
        f'# Node overhead per 1280x720 four-stream set (inference excluded; target < {TARGET_MS} ms)',
        '',
        f'Machine: {report["machine"]}',
        '',
        '| variant | mean ms (incl. diagnostics) | p50 ms | p95 ms | p99 ms | max ms | diagnostics ms |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, r in results.items():
        lines.append(
            f'| {name} | {r["mean_ms"]:.3f} | {r["p50_ms"]:.3f} | {r["p95_ms"]:.3f} | {r["p99_ms"]:.3f} '
            f'| {r["max_ms"]:.3f} | {r["diagnostics_publish_ms"]:.3f} |'
        )
    lines.append('')
    (RESULTS / 'node_overhead.md').write_text('\n'.join(lines))
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
