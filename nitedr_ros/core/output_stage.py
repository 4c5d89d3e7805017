"""The core's last step: publish a processed set through the sink, in stamp order, and book its latency.

- **Order**: every output topic is strictly monotonic in stamp. A set whose source stamp is not newer than
  the last one published on that output is not published and counted (``out_of_order``): nothing is ever
  sent back in time to the detectors downstream.
- **Listeners**: :meth:`OutputStage.wanted` asks the sink how many subscribers each output has (where the
  transport knows); the core skips the work for outputs nobody listens to (``no_subscribers``, which is
  not a drop of a wanted frame).
- **Failures**: a sink call that raises is logged (throttled) and counted (``publish_error``); it never
  stops the node.
- **Latency**: ``processing_ms`` (set synchronized -> published), ``end_to_end_ms`` (publish time on the
  node clock - header stamp) and the pipeline's stage times go to the diagnostics windows, the optional
  ``on_published`` callback and the ``~/debug/*_ms`` values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..modes import FUSED_OUTPUT, OUTPUT_SOURCE
from .clock import NS_PER_MS, Clock
from .diagnostics import DROP_NO_SUBSCRIBERS, DROP_OUT_OF_ORDER, DROP_PUBLISH_ERROR, CoreStats
from .images import ImageFields, frame_to_fields, is_compressed, message_fields
from .log import CoreLog
from .sync import SyncedSet

LatencyCallback = Callable[[Mapping[str, float]], None]


class OutputStage:
    """Publishes the outputs of processed sets (see the module docstring). Called from one worker thread
    (or inline); :meth:`reset_order` may come from any thread."""

    def __init__(self, outputs: tuple[str, ...], *, sink: Any, clock: Clock, stats: CoreStats, log: CoreLog,
                 camera_info: Mapping[str, Any], on_published: LatencyCallback | None = None) -> None:
        self.outputs = outputs
        self._sink = sink
        self._clock = clock
        self._stats = stats
        self._log = log
        self._camera_info = camera_info
        self._on_published = on_published
        self._last_stamp: dict[str, int] = {}
        self._order_lock = threading.Lock()

    # -- listeners --------------------------------------------------------------------------------------
    def wanted(self) -> tuple[str, ...]:
        """Outputs with at least one subscriber (all of them where the sink cannot tell)."""
        counter = getattr(self._sink, 'subscriber_count', None)
        if counter is None:
            return self.outputs
        wanted = []
        for output in self.outputs:
            try:
                count = counter(output)
            except Exception:  # noqa: BLE001 - a transport that cannot count: assume someone listens
                count = None
            if count is None or count > 0:
                wanted.append(output)
        return tuple(wanted)

    # -- order ------------------------------------------------------------------------------------------
    def reset_order(self) -> None:
        """The clock was reset (bag loop, sim restart): stamps may start over."""
        with self._order_lock:
            self._last_stamp.clear()

    def _in_order(self, output: str, stamp_ns: int) -> bool:
        with self._order_lock:
            last = self._last_stamp.get(output)
            if last is not None and stamp_ns <= last:
                return False
            self._last_stamp[output] = stamp_ns
            return True

    # -- publishing -------------------------------------------------------------------------------------
    def passthrough(self, synced: SyncedSet, frames: Mapping[str, Any], fuse: bool,
                    wanted: tuple[str, ...]) -> dict[str, Any]:
        """The inputs unchanged, on the outputs this set would have produced."""
        outputs = {}
        for output in wanted:
            if output == FUSED_OUTPUT and not fuse:
                continue
            source = OUTPUT_SOURCE[output]
            msg = synced.messages.get(source)
            if msg is not None:
                compressed = is_compressed(msg)
                outputs[output] = frame_to_fields(frames[source]) if compressed else message_fields(msg)
        return outputs

    def publish(self, synced: SyncedSet, outputs: Mapping[str, Any], timings: Any, synced_perf_ns: int,
                params: Mapping[str, Any]) -> int:
        """Publish ``outputs`` (name -> ImageFrame or ImageFields) with their source headers; returns how
        many were published. A set with any output published counts as published for all its messages
        (and books its latency); otherwise its messages are counted as ``publish_error`` or
        ``out_of_order``."""
        published = 0
        stamps = []
        failed = False
        for output, image in outputs.items():
            source = OUTPUT_SOURCE.get(output)
            if source is None or source not in synced.messages:
                self._log.throttled(f'output-{output}', 'warning', f'pipeline output {output!r} has no '
                                    'source stream in this set: not published')
                continue
            stamp = synced.stamps[source]
            if not self._in_order(output, stamp):
                self._log.throttled(f'order-{output}', 'warning', f'{output}: a set stamped {stamp} is not '
                                    'newer than the last one published on this topic: not published '
                                    '(out_of_order)')
                continue
            header = synced.messages[source].header
            fields = image if isinstance(image, ImageFields) else frame_to_fields(image)
            failure = self._sink_failure('publish_image', output, header, fields)
            if failure is None:
                published += 1
                stamps.append(stamp)
            else:
                failed = True
                self._stats.publish_failed(f'{output}: {failure}')
            info = self._camera_info.get(source)
            if info is not None and params['publish_camera_info']:
                self.sink_call('publish_camera_info', output, header, info)
        if published:
            self._book(synced, stamps, published, timings, synced_perf_ns, params)
        elif outputs:
            self._stats.drop(synced.messages, DROP_PUBLISH_ERROR if failed else DROP_OUT_OF_ORDER)
        else:  # nothing to publish: the only wanted output (fused) cannot be made from this set
            self._stats.drop(synced.messages, DROP_NO_SUBSCRIBERS)
        return published

    def _book(self, synced: SyncedSet, stamps: list[int], published: int, timings: Any, synced_perf_ns: int,
              params: Mapping[str, Any]) -> None:
        done_ns = self._clock.now_ns()
        latencies = {'processing_ms': (time.perf_counter_ns() - synced_perf_ns) / NS_PER_MS}
        if done_ns > 0:
            latencies['end_to_end_ms'] = (done_ns - min(stamps)) / NS_PER_MS
        if timings is not None:
            latencies.update(preprocess_ms=float(timings.preprocess_ms),
                             inference_ms=float(timings.inference_ms),
                             postprocess_ms=float(timings.postprocess_ms),
                             pipeline_ms=float(timings.total_ms))
        self._stats.published(synced.messages, published, latencies)
        if self._on_published is not None:
            self._on_published(latencies)
        if params['debug.publish_timing']:
            self.sink_call('publish_debug', 'processing_time_ms', latencies['processing_ms'])
            self.sink_call('publish_debug', 'inference_time_ms', latencies.get('inference_ms', 0.0))
            if 'end_to_end_ms' in latencies:
                self.sink_call('publish_debug', 'pipeline_latency_ms', latencies['end_to_end_ms'])

    def sink_call(self, method: str, *args: Any) -> bool:
        return self._sink_failure(method, *args) is None

    def _sink_failure(self, method: str, *args: Any) -> str | None:
        """Call the sink; None when it worked, else the error (logged, throttled)."""
        try:
            getattr(self._sink, method)(*args)
            return None
        except Exception as exc:  # noqa: BLE001 - a transport error must not stop the node
            self._log.throttled(f'sink-{method}', 'error', f'{method} failed: {exc!r}')
            return str(exc) or type(exc).__name__
