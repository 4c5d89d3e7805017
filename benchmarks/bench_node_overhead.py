"""Node overhead per synchronized 1280x720 four-stream set, inference excluded (target < 2 ms).

The node runs in mode ``full`` (rgb8 RGB, bgr8 stereo pair with identical stamps, mono16 thermal) with the
``identity`` backend: the real pipeline (pre-processing, identity engines, post-processing) built from the
parameters as the node builds it. Per set the benchmark times everything from the first ``on_image`` until
the fourth output is published and subtracts the pipeline's own time (``PipelineResult.timings.total_ms``:
pre-processing, inference, post-processing), leaving what the node adds: four ``on_image`` calls
(validation, stamps, synchronizer), the latest-only hand-off to the worker thread, message -> frame
conversion, output fields, four ``publish_image`` calls and, amortised, diagnostics once per 30 sets.
Messages carry ``array.array('B')`` buffers as rclpy delivers them. Variants, reported separately:

- ``core``: the sink only receives the fields (the DDS runtime and the bag writer take the numpy view);
- ``rclpy_path``: as the rclpy node's sink: the pipeline writes each output straight into the sink's
  ``array.array('B')`` (``allocate_image``) and ``msg.data`` takes that array (``ImageFields.as_array()``,
  no copy); rclpy's own serialization is not included; ``copy_ms`` is the ``as_array()`` call alone;
- ``rclpy_publish`` (only where ROS 2 is sourced): the node's real rclpy sink with real publishers and a
  subscriber in the process, so rclpy's serialization and the DDS write are included;
- ``offset_thermal``: thermal stamped 5 ms after the cameras (approximate matching, slop 15 ms), core.

A second table measures ways to turn a pipeline output (numpy uint8) into the ``array.array('B')`` rclpy
takes without per-element checks, per 1280x720 rgb8 image, for the record: every one of them is a copy,
which the rclpy path no longer makes (the pipeline writes into the array).

Writes ``node_overhead.{json,md}`` to a scratch folder (benchmarks/results with ``--publish``).
Run: ``python benchmarks/bench_node_overhead.py [--publish]``.
"""

from __future__ import annotations

import argparse
import array
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
from bench_output import add_output_arguments, output_dir, write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nitedr_ros.core.clock import ManualClock  # noqa: E402
from nitedr_ros.core.images import ArrayBuffers, ImageFields  # noqa: E402
from nitedr_ros.core.node_core import NodeCore  # noqa: E402
from nitedr_ros.core.testing import make_image, pattern_image  # noqa: E402
from nitedr_ros.machine import machine_info  # noqa: E402
from nitedr_ros.modes import MODE_OUTPUTS  # noqa: E402
from nitedr_ros.pipeline.timing import percentile_summary  # noqa: E402

MS = 1_000_000
HEIGHT, WIDTH = 720, 1280
STREAMS = (('rgb', 'rgb8'), ('left', 'bgr8'), ('right', 'bgr8'), ('thermal', 'mono16'))
TARGET_MS = 2.0
WARM_UP = 5


class TimingSink:
    """Counts published images (optionally copying them as the rclpy sink does); signals a full set."""

    def __init__(self, copy_arrays: bool) -> None:
        self.copy_arrays = copy_arrays
        self.count = 0
        self.copy_ns = 0
        self.done = threading.Event()
        self.expected = len(MODE_OUTPUTS['full'])

    def publish_image(self, output, header, image) -> None:
        if self.copy_arrays:
            started = time.perf_counter_ns()
            image.as_array()
            self.copy_ns += time.perf_counter_ns() - started
        self._published()

    def _published(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


class ArrayTimingSink(TimingSink):
    """As the rclpy node's sink: outputs are written into reused ``array.array('B')`` buffers."""

    def __init__(self) -> None:
        super().__init__(copy_arrays=True)
        self._buffers = ArrayBuffers()

    def allocate_image(self, output, shape, dtype):
        return self._buffers.allocate(output, shape, dtype)


class RclpyTimingSink(TimingSink):
    """The rclpy node's own sink with real publishers (and a subscriber, so messages are really sent)."""

    def __init__(self) -> None:
        super().__init__(copy_arrays=False)
        import rclpy
        from sensor_msgs.msg import Image

        from nitedr_ros.core.topics import OUTPUT_TOPICS
        from nitedr_ros.transports.rclpy_node import _RclpySink

        rclpy.init()
        self.node = rclpy.create_node('nitedr_overhead_bench')
        self.inner = _RclpySink()
        for output in MODE_OUTPUTS['full']:
            self.inner.images[output] = self.node.create_publisher(Image, OUTPUT_TOPICS[output], 1)
            self.node.create_subscription(Image, OUTPUT_TOPICS[output], lambda _msg: None, 1)

    def allocate_image(self, output, shape, dtype):
        return self.inner.allocate_image(output, shape, dtype)

    def subscriber_count(self, output):
        return self.inner.subscriber_count(output)

    def publish_image(self, output, header, image) -> None:
        started = time.perf_counter_ns()
        self.inner.publish_image(output, header, image)
        self.copy_ns += time.perf_counter_ns() - started
        self._published()

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.shutdown()


def rclpy_available() -> bool:
    try:
        import rclpy  # noqa: F401
        from sensor_msgs.msg import Image  # noqa: F401
    except ImportError:
        return False
    return True

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


def make_sink(kind: str) -> TimingSink:
    return {'fields': lambda: TimingSink(False), 'arrays': ArrayTimingSink, 'rclpy': RclpyTimingSink}[kind]()


def run_variant(sets_count: int, sink_kind: str, thermal_offset_ms: int) -> dict[str, object]:
    clock = ManualClock(1000 * MS)
    sink = make_sink(sink_kind)
    pipeline_ms: list[float] = []
    core = NodeCore(
        {
            'mode': 'full',
            'backend': 'identity',
            'max_input_age_ms': 0.0,
            'sync.slop': 0.015,
            'sync.min_interval_ms': 25.0,
            'publish_camera_info': False,
        },
        sink=sink,
        clock=clock,
        own_timer=False,
        on_published=lambda latencies: pipeline_ms.append(latencies.get('pipeline_ms', 0.0)),
    )
    core.start()
    message_sets = _messages(sets_count + WARM_UP, thermal_offset_ms)
    overhead, pipeline, copies, diagnostics = [], [], [], []
    try:
        for k, messages in enumerate(message_sets):
            sink.done.clear()
            sink.count = sink.copy_ns = 0
            clock.set_ns(
                messages[0][1].header.stamp.sec * 1_000_000_000 + messages[0][1].header.stamp.nanosec
            )
            start = time.perf_counter()
            for stream, msg in messages:
                core.on_image(stream, msg)
            if not sink.done.wait(60):
                raise RuntimeError(f'set {k} was not published')
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            if not core.wait_idle(10):  # on_published has run for this set
                raise RuntimeError(f'set {k} did not finish')
            if k % 30 == 29:
                t0 = time.perf_counter()
                core.publish_diagnostics()
                diagnostics.append((time.perf_counter() - t0) * 1000.0)
            if k >= WARM_UP:
                pipeline.append(pipeline_ms[-1])
                overhead.append(elapsed_ms - pipeline_ms[-1])
                copies.append(sink.copy_ns / MS)
        backend = next(s for s in core.statuses() if s.name.endswith(': pipeline')).value('backend')
    finally:
        core.stop()
        if hasattr(sink, 'close'):
            sink.close()
    summary = percentile_summary(overhead)
    diag_ms = statistics.fmean(diagnostics) if diagnostics else 0.0
    return {
        'sets': summary['count'],
        'backend': backend,
        'mean_ms': summary['mean'] + diag_ms / 30.0,
        **{f'{key}_ms': summary[key] for key in ('p50', 'p95', 'p99', 'max')},
        'copy_ms_p50': percentile_summary(copies)['p50'] if sink_kind != 'fields' else 0.0,
        'pipeline_ms_p50': percentile_summary(pipeline)['p50'],
        'diagnostics_publish_ms': diag_ms,
        'drops': {reason: n for reason, n in core.stats.drops_total().items() if n},
    }


# -- numpy output -> array.array('B') -------------------------------------------------------------------
def copy_alternatives(repeats: int) -> dict[str, float]:
    """Milliseconds (best of ``repeats`` x 20) per 1280x720 rgb8 image for each way to build msg.data."""
    source = pattern_image(HEIGHT, WIDTH, 'rgb8', seed=9).reshape(-1)
    fields = ImageFields(HEIGHT, WIDTH, 'rgb8', 0, WIDTH * 3, source)
    pooled = array.array('B', bytes(source.size))

    def frombytes_memoryview():
        out = array.array('B')
        out.frombytes(memoryview(source))
        return out

    def reused_buffer_copyto():  # only safe while rclpy copies msg.data before publish() returns
        np.copyto(np.frombuffer(pooled, np.uint8), source)
        return pooled

    def reused_buffer_slice():
        memoryview(pooled)[:] = memoryview(source)
        return pooled

    candidates = {
        'ImageFields.as_array of a numpy image': fields.as_array,
        "array('B') + frombytes(memoryview)": frombytes_memoryview,
        "array('B', bytes(memoryview))": lambda: array.array('B', bytes(memoryview(source))),
        "array('B', ndarray.tobytes())": lambda: array.array('B', source.tobytes()),
        'reused array, np.copyto': reused_buffer_copyto,
        'reused array, memoryview slice': reused_buffer_slice,
    }
    results = {}
    for name, make in candidates.items():
        made = make()
        assert len(made) == source.size and made[12345] == source[12345], name
        best = float('inf')
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(20):
                make()
            best = min(best, (time.perf_counter() - start) / 20)
        results[name] = best * 1000.0
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sets', type=int, default=100, help='measured sets per variant')
    parser.add_argument('--copy-repeats', type=int, default=15)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    results_dir = output_dir(args)
    variants = {'core': ('fields', 0), 'rclpy_path': ('arrays', 0), 'offset_thermal': ('fields', 5)}
    if rclpy_available():
        variants['rclpy_publish'] = ('rclpy', 0)
    else:
        print('rclpy is not importable (source ROS 2): the rclpy_publish variant is skipped', flush=True)
    results = {}
    for name, (kind, offset) in variants.items():
        print(f'variant {name}: {args.sets + WARM_UP} sets', flush=True)
        results[name] = run_variant(args.sets, kind, offset)
    copies = copy_alternatives(args.copy_repeats)
    fastest = min(copies, key=copies.get)
    report = {
        'benchmark': 'node overhead per 1280x720 four-stream set, mode full, identity backend '
                     '(pipeline time subtracted)',
        'target_ms': TARGET_MS,
        'machine': machine_info(),
        'results': results,
        'meets_target': {name: r['p50_ms'] < TARGET_MS for name, r in results.items()},
        'copy_alternatives_ms': copies,
        'fastest_copy': fastest,
    }
    write_result(results_dir, 'node_overhead.json', json.dumps(report, indent=2))
    lines = [
        f'# Node overhead per 1280x720 four-stream set (mode full, identity backend, pipeline time '
        f'subtracted; target < {TARGET_MS} ms)',
        '',
        f'Machine: {report["machine"]}',
        '',
        '| variant | p50 ms | p95 ms | p99 ms | max ms | mean ms (incl. diagnostics) | of which msg.data '
        '(rclpy_publish: whole publish) p50 ms | pipeline p50 ms (excluded) | diagnostics ms |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for name, r in results.items():
        lines.append(
            f'| {name} | {r["p50_ms"]:.3f} | {r["p95_ms"]:.3f} | {r["p99_ms"]:.3f} | {r["max_ms"]:.3f} '
            f'| {r["mean_ms"]:.3f} | {r["copy_ms_p50"]:.3f} | {r["pipeline_ms_p50"]:.1f} '
            f'| {r["diagnostics_publish_ms"]:.3f} |'
        )
    lines += [
        '',
        '`core`: what the DDS runtime and `nitedr bag derain` pay; `rclpy_path`: what the rclpy node pays '
        "before rclpy's own serialization: the pipeline writes each output into the `array.array('B')` that "
        '`msg.data` takes (no copy); `rclpy_publish`: the rclpy node\'s real sink and publishers (real '
        'ROS 2, a subscriber in the process): serialization and the DDS write included.',
        '',
        '## numpy output -> `array.array(\'B\')` for `msg.data` (one 1280x720 rgb8 image, best of runs)',
        '',
        'What a copy into `msg.data` would cost (the rclpy node made one before it wrote into the array).',
        '',
        '| method | ms |',
        '|---|---|',
        *[f'| {name}{" (fastest)" if name == fastest else ""} | {ms:.3f} |' for name, ms in copies.items()],
        '',
    ]
    print('\n'.join(lines))
    write_result(results_dir, 'node_overhead.md', '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
