"""The node's logic without ROS: inputs -> synchronizer -> latest-only buffer -> worker -> pipeline -> sink.

:class:`NodeCore` is shared by the rclpy node, the DDS runtime and ``nitedr bag derain``. The transport
hands it messages (``on_image``, ``on_camera_info``), implements :class:`OutputSink` and a
:class:`~nitedr_ros.core.clock.Clock`, and calls ``publish_diagnostics()`` every ``diagnostics.period``
(or lets the core's own ticker do it). Behaviour:

- **Frame flow**: callbacks only validate cheaply and hand the message to the synchronizer. Sets go into
  a latest-only buffer (:mod:`~nitedr_ros.core.frame_flow`: sets made while the worker is idle all wait,
  a set made while it is busy replaces the previous such set: ``busy`` drop); one worker thread converts,
  runs ``pipeline.process`` and publishes. ``synchronous=True`` (bag tool) has no worker and no ticker:
  each set is processed inline, in order, and diagnostics follow the (bag) clock.
- **Stale sets**: a set older than ``max_input_age_ms`` on the node clock is dropped (``stale``), never while
  the clock reads 0 (sim time not started); when every set is stale the core says so early and loudly.
- **Listeners**: outputs without subscribers (where the transport can tell) are not computed; a set none of
  whose outputs has a subscriber is skipped (``no_subscribers``, not a drop of a wanted frame).
- **Degradation** (nitedr and full modes, :mod:`~nitedr_ros.core.thermal_watch`): no current thermal frame
  for the IR timeout -> the other streams are synchronized without it and derained with ``fuse=False`` (no
  ``fused`` output), diagnostics WARN; the next current thermal frame resumes fusion. Switching hands the
  messages one synchronizer still holds to the other (thermal ones are counted as ``sync`` drops), so no
  set is lost or released late. An inference error publishes the inputs unchanged when
  ``passthrough_on_error`` (else drops the set, ``error``) and raises diagnostics to ERROR. A bad message
  (encoding, size, non-finite numbers, undecodable: the transport calls :meth:`NodeCore.report_bad_message`)
  is dropped, counted and named in diagnostics. Nothing raises to the caller.
- **Outputs** (:mod:`~nitedr_ros.core.output_stage`) keep the original input header object and encoding,
  are strictly monotonic in stamp per topic (``out_of_order`` otherwise), and republish the source
  stream's camera_info with the same header. A failed publish is counted (``publish_error``).
- **Time jumps**: a stamp more than 1 s older than its stream's previous one (bag loop, sim restart)
  resets the synchronizers and the output order; a smaller step back is refused as ``out_of_order``.
- **Accounting**: every image message ends published (as part of a set) or in exactly one reason of
  ``CoreStats`` (drops, or ``no_subscribers``), or is still pending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ConfigError, FrameError
from ..modes import FUSED_OUTPUT, FUSION_MODES, MODE_STREAMS, OUTPUT_SOURCE, OUTPUTS, STREAMS, THERMAL_STREAM
from . import sync as sync_mod
from .clock import NS_PER_MS, NS_PER_S, Clock, header_stamp_ns
from .diagnostics import (
    DROP_BAD_MESSAGE,
    DROP_BUSY,
    DROP_DISABLED,
    DROP_ERROR,
    DROP_NO_SUBSCRIBERS,
    DROP_OUT_OF_ORDER,
    DROP_SHUTDOWN,
    DROP_STALE,
    DROP_SYNC,
    CoreStats,
    DiagnosticsContext,
    DiagnosticStatus,
    describe_pipeline,
)
from .frame_flow import LatestOnlyBuffer, Ticker, Worker
from .images import ImageFields, check_image, message_to_frame
from .log import CoreLog
from .output_stage import LatencyCallback, OutputStage
from .parameters import check_changes, exact_groups_for, pipeline_config, registration_spec, validate
from .rain_watch import RainWatch
from .sync import Dropped, SyncedSet, Synchronizer
from .thermal_watch import ThermalWatch
from .topics import OUTPUT_CAMERA_INFO_TOPICS, OUTPUT_TOPICS, STREAM_CAMERA_INFO_TOPICS, image_topic

JUMP_BACK_NS = NS_PER_S  # a stamp this much older than its predecessor means the clock was reset
STALE_ALARM_SETS = 5  # this many stale sets in a row, none published: say why, loudly
SHUTDOWN_DRAIN_S = 2.0  # stop(): how long the worker may finish the sets already made


class OutputSink(Protocol):
    """What a transport implements to publish. Calls come from the worker thread (or inline).

    Optional: ``subscriber_count(output) -> int | None`` (None = unknown); outputs with 0 subscribers are
    not computed.
    """

    def publish_image(self, output: str, header: Any, image: ImageFields) -> None:
        """Publish ``image`` on the output's topic with ``header`` (the input's own header object)."""

    def publish_camera_info(self, output: str, header: Any, camera_info: Any) -> None:
        """Publish a copy of the cached input ``camera_info`` with its header replaced by ``header``."""

    def publish_diagnostics(self, statuses: list[DiagnosticStatus], stamp_ns: int) -> None:
        """Publish one DiagnosticArray stamped ``stamp_ns`` (node clock) holding ``statuses``."""

    def publish_debug(self, name: str, value: float) -> None:
        """Publish a ``std_msgs/Float64`` on ``~/debug/<name>``."""


PipelineFactory = Callable[[Mapping[str, Any]], Any]


def default_pipeline_factory(params: Mapping[str, Any]) -> Any:
    """``build_pipeline(pipeline_config(params))`` from :mod:`nitedr_ros.pipeline`."""
    from ..pipeline.builders import build_pipeline

    return build_pipeline(pipeline_config(params))


@dataclass
class _Work:
    synced: SyncedSet
    degraded: bool
    synced_perf_ns: int


class NodeCore:
    """See the module docstring. ``parameters``: any subset of the schema (validated, defaults filled).

    ``pipeline``: a ready pipeline (caller keeps ownership), else ``pipeline_factory(params)`` builds one in
    the worker thread (closed on ``stop``). ``streams`` overrides the mode's streams (benchmarks, tests).
    ``own_timer``: run a ticker thread calling :meth:`tick` (default: when not synchronous).
    ``on_published(latencies_ms)``: called after each published set with its latencies (``processing_ms``,
    ``end_to_end_ms``, and with a pipeline result ``preprocess_ms``, ``inference_ms``, ``postprocess_ms``,
    ``pipeline_ms``), e.g. for a whole-run summary.
    """

    def __init__(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        sink: OutputSink,
        clock: Clock,
        node_name: str = 'nitedr_node',
        pipeline: Any = None,
        pipeline_factory: PipelineFactory | None = None,
        synchronous: bool = False,
        own_timer: bool | None = None,
        streams: tuple[str, ...] | None = None,
        logger: Any = None,
        on_published: LatencyCallback | None = None,
    ) -> None:
        self.params: dict[str, Any] = validate(dict(parameters or {}))
        self.node_name = node_name
        self.mode: str = self.params['mode']
        self.streams: tuple[str, ...] = tuple(streams) if streams else MODE_STREAMS[self.mode]
        unknown = [s for s in self.streams if s not in STREAMS]
        if unknown:
            raise ConfigError(f'unknown stream(s) {unknown}; streams: {", ".join(STREAMS)}')
        self.fusion = self.mode in FUSION_MODES and THERMAL_STREAM in self.streams and 'rgb' in self.streams
        self.outputs: tuple[str, ...] = tuple(
            o for o in OUTPUTS if OUTPUT_SOURCE[o] in self.streams and (o != FUSED_OUTPUT or self.fusion)
        )
        self.synchronous = synchronous
        self._clock = clock
        self._log = CoreLog(logger or logging.getLogger('nitedr_ros.core'))
        self._pipeline = pipeline
        self._owns_pipeline = pipeline is None
        self._intrinsics_sent: dict[str, tuple] = {}
        self._rain = RainWatch()
        self._factory = pipeline_factory or default_pipeline_factory
        self._backend_facts: dict[str, str] = {}
        self._stats = CoreStats(
            {s: image_topic(s, self.params['image_transport']) for s in self.streams},
            self.params['diagnostics.window_size'],
        )
        self._camera_info: dict[str, Any] = {}
        self._output = OutputStage(self.outputs, sink=sink, clock=clock, stats=self._stats, log=self._log,
                                   camera_info=self._camera_info, on_published=on_published)
        self._thermal = ThermalWatch(self.params['ir_timeout_ms'])
        # where the transport wants output pixels written (rclpy: its message buffers), if it says
        self._allocate = getattr(sink, 'allocate_image', None)
        self._sync = self._make_sync(self.streams, degraded=False)
        non_thermal = tuple(s for s in self.streams if s != THERMAL_STREAM)
        self._degraded_sync = self._make_sync(non_thermal, degraded=True) if self.fusion else None
        self._switch_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._param_lock = threading.Lock()
        self._last_stamp: dict[str, int] = {}
        self._stale_run = 0
        self._last_diag_ns: int | None = None
        self._last_diag_mono = 0.0
        # one message (or a hand-over) completes at most a synchronizer queue of sets: all of them wait
        self._buffer = LatestOnlyBuffer(idle_max=self.params['sync.queue_size'] + 1)
        self._worker: Worker | None = None
        self._ticker: Ticker | None = None
        self._own_timer = (not synchronous) if own_timer is None else own_timer
        self._started = False
        self._stopped = False

    # -- topics for transports --------------------------------------------------------------------------
    def input_topics(self) -> dict[str, str]:
        """stream -> image topic (``/compressed`` suffix with ``image_transport: compressed``)."""
        return {s: image_topic(s, self.params['image_transport']) for s in self.streams}

    def camera_info_topics(self) -> dict[str, str]:
        return {s: STREAM_CAMERA_INFO_TOPICS[s] for s in self.streams}

    def set_input_topic_names(self, names: Mapping[str, str]) -> None:
        """stream -> the topic name the transport really subscribes (namespace, remaps applied; a bag's own
        topic): shown in the ``input <stream>`` diagnostics instead of the relative name."""
        for stream, name in names.items():
            if stream in self.streams:
                self._stats.set_topic(stream, str(name))

    def output_topics(self) -> dict[str, str]:
        return {o: OUTPUT_TOPICS[o] for o in self.outputs}

    def output_camera_info_topics(self) -> dict[str, str]:
        return {o: OUTPUT_CAMERA_INFO_TOPICS[o] for o in self.outputs}

    @property
    def diagnostics_period_s(self) -> float:
        return float(self.params['diagnostics.period'])

    @property
    def degraded(self) -> bool:
        return self._thermal.degraded

    @property
    def ir_timeout_ms(self) -> float:
        """The IR timeout in use (the parameter, or derived from the thermal rate)."""
        return self._thermal.timeout_ms()

    @property
    def pipeline(self) -> Any:
        return self._pipeline

    @property
    def stats(self) -> CoreStats:
        return self._stats

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the pipeline (in the worker thread when threaded) and start processing.

        Raises what the pipeline factory raises (e.g. ConfigError for a missing model)."""
        if self._started:
            return
        if self.synchronous:
            self._setup()
        else:
            self._worker = Worker(
                self._buffer, self._process_safely, setup=self._setup, name=f'{self.node_name}-worker'
            )
            self._worker.start()
            if self._own_timer:
                period = min(0.1, self.diagnostics_period_s / 2)
                self._ticker = Ticker(self.tick, period, name=f'{self.node_name}-ticker')
                self._ticker.start()
        self._started = True

    def stop(self, drain_s: float = SHUTDOWN_DRAIN_S) -> None:
        """Stop: the worker finishes the sets already made (up to ``drain_s``), the rest are counted
        (``shutdown``), messages still waiting for partners are counted (``sync``); then the ticker and
        worker end and a pipeline this core built is closed. Idempotent. Call it before the transport's
        publishers go away (rclpy: before ``rclpy.shutdown``)."""
        if self._stopped:
            return
        self._stopped = True
        if self._ticker is not None:
            self._ticker.stop()
        if self._worker is not None:
            if drain_s > 0:
                self._buffer.wait_idle(drain_s)
            for work in self._worker.stop():
                self._stats.drop(work.synced.messages, DROP_SHUTDOWN)
        else:
            self._buffer.close()
        self.discard_pending()
        if self._owns_pipeline and self._pipeline is not None and hasattr(self._pipeline, 'close'):
            try:
                self._pipeline.close()
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                self._log.warning(f'closing the pipeline failed: {exc}')

    def __enter__(self) -> NodeCore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush(self, timeout: float | None = 30.0) -> None:
        """End of input (bag end): emit and process every set still possible, then wait until idle. The
        synchronizer not in use goes first, so outputs stay in stamp order."""
        with self._switch_lock:
            syncs = [self._sync, self._degraded_sync]
            if self._thermal.degraded:
                syncs.reverse()
            for sync in syncs:
                if sync is not None:
                    sync.flush()
        self.wait_idle(timeout)

    def discard_pending(self) -> None:
        """End of input without flushing: every message still waiting in the synchronizers is dropped and
        counted (``sync``), so the totals still add up."""
        self._sync.reset()
        if self._degraded_sync is not None:
            self._degraded_sync.reset()

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        """Block until no set is waiting or being processed (threaded mode); True when idle."""
        return True if self.synchronous else self._buffer.wait_idle(timeout)

    def _setup(self) -> None:
        if self._pipeline is None:
            self._pipeline = self._factory(self.params)
        self._backend_facts = describe_pipeline(self._pipeline)
        self._log.info(f'pipeline ready: mode {self.mode}, streams {", ".join(self.streams)}, '
                       f'backend {self._backend_facts.get("backend", "unknown")}')

    # -- inputs (any thread) ----------------------------------------------------------------------------
    def on_image(self, stream: str, msg: Any) -> bool:
        """An Image or CompressedImage of ``stream``; False when it was dropped (and counted)."""
        try:
            return self._on_image(stream, msg)
        finally:
            if self.synchronous:
                self.tick()

    def _on_image(self, stream: str, msg: Any) -> bool:
        if stream not in self.streams:
            self._log.throttled(f'unknown-{stream}', 'warning',
                                f'message for inactive stream {stream!r} ignored')
            return False
        now = self._clock.now_ns()
        self._stats.arrival(stream, now)
        try:
            stamp = header_stamp_ns(msg)
            check_image(stream, msg)
        except FrameError as exc:
            self._bad_message(stream, exc.problem)
            return False
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            self._bad_message(stream, f'malformed message: {exc}')
            return False
        self._stats.stamp(stream, stamp)
        self._check_time_jump(stream, stamp)
        thermal_current = False
        if stream == THERMAL_STREAM:
            self._thermal.thermal_stamp(stamp)
            thermal_current = self._thermal.is_current(now, stamp)
        with self._switch_lock:  # a switch of synchronizers hands over what they hold before this message
            degraded = self._update_degradation(now, thermal_arrived=thermal_current)
            if degraded and stream != THERMAL_STREAM:
                assert self._degraded_sync is not None
                target = self._degraded_sync
            else:
                target = self._sync
        return target.add(stream, stamp, msg)

    def on_camera_info(self, stream: str, msg: Any) -> None:
        """Cache the latest camera_info of a stream (republished with each output's header); its intrinsics
        go to the pipeline (the extrinsics registration of thermal to RGB needs them)."""
        if stream not in self.streams:
            return
        self._camera_info[stream] = msg
        set_camera_info = getattr(self._pipeline, 'set_camera_info', None)
        if set_camera_info is None:
            return
        try:
            intrinsics = (tuple(float(v) for v in msg.k), int(msg.height), int(msg.width))
        except (TypeError, ValueError, AttributeError) as exc:
            self._log.throttled(f'camera-info-{stream}', 'warning',
                                f'{stream} camera_info unusable for registration: {exc}')
            return
        if self._intrinsics_sent.get(stream) != intrinsics:  # once per change, not per message
            self._intrinsics_sent[stream] = intrinsics
            set_camera_info(stream, *intrinsics)

    def report_bad_message(self, stream: str, problem: str, *, counts_as_frame: bool = True) -> None:
        """A message of ``stream`` the transport could not even decode (e.g. a malformed DDS sample): dropped,
        counted (``bad_message``) and named in the ``input <stream>`` diagnostics. ``counts_as_frame``: it was
        an image (counted as received, like any frame); False for a camera_info."""
        if stream not in self.streams:
            self._log.throttled(f'unknown-{stream}', 'warning', f'bad message for inactive stream {stream!r}')
            return
        if counts_as_frame:
            self._stats.arrival(stream, self._clock.now_ns())
        self._bad_message(stream, problem)

    def report_qos_event(self, topic: str, description: str) -> None:
        """A transport saw an incompatible-QoS event: counted, logged loudly, WARN in diagnostics."""
        self._stats.qos_event(topic, description)
        self._log.error(f'incompatible QoS on {topic}: {description}; no data flows on this connection '
                        '(see qos.* parameters and qos_overrides)')

    def _bad_message(self, stream: str, problem: str) -> None:
        self._stats.bad(stream, problem)
        self._log.throttled(f'bad-{stream}', 'warning', f'{stream}: bad message dropped: {problem}')

    def _check_time_jump(self, stream: str, stamp: int) -> None:
        with self._state_lock:
            last = self._last_stamp.get(stream)
            jumped = last is not None and stamp < last - JUMP_BACK_NS
            if jumped:
                self._last_stamp.clear()
            self._last_stamp[stream] = stamp if last is None or jumped else max(stamp, last)
        if jumped:
            self._log.warning(f'{stream}: stamp jumped back {(last - stamp) / NS_PER_S:.1f} s (bag loop or '
                              'clock reset): synchronizer reset')
            self._sync.reset()
            if self._degraded_sync is not None:
                self._degraded_sync.reset()
            self._output.reset_order()

    def _update_degradation(self, now: int, thermal_arrived: bool = False) -> bool:
        """Track thermal silence on the node clock (call under ``_switch_lock``); returns whether RGB runs
        without fusion now. On a switch, the synchronizer left hands what it holds to the other one."""
        if not self.fusion:
            return False
        change = self._thermal.update(now, thermal_arrived)
        if change.entered:
            late = self._stats.streams[THERMAL_STREAM].last_stamp_ns
            if late is not None and now - late < self._thermal.timeout_ms() * NS_PER_MS:
                why = 'thermal frames arrive but none is current'
            elif late is None:
                why = 'no thermal frame yet'
            else:
                why = f'last thermal frame stamped {(now - late) / NS_PER_MS:.0f} ms before the node clock'
            others_seen = any(self._stats.streams[s].last_stamp_ns is not None for s in self.streams
                              if s != THERMAL_STREAM)
            action = ('publishing derained RGB without fusion' if others_seen else
                      'no RGB frame yet either; RGB will be published derained, without fusion, until '
                      'thermal arrives')
            self._log.warning(f'thermal silent or late for more than {self._thermal.timeout_ms():g} ms '
                              f'({why}; timeout: {self._thermal.timeout_source()}): {action}')
            self._hand_over(self._sync, self._degraded_sync)
        if change.left:
            self._log.info('thermal is back: fusion resumes')
            self._hand_over(self._degraded_sync, self._sync)
        return change.degraded

    def _hand_over(self, source: Synchronizer | None, target: Synchronizer | None) -> None:
        """Messages ``source`` still holds go to ``target`` in stamp order; thermal ones (which the
        degraded synchronizer has no input for) are counted as ``sync`` drops."""
        if source is None or target is None:
            return
        for topic, stamp, msg in source.take_pending():
            if topic in target.topics:
                target.add(topic, stamp, msg)
            else:
                self._stats.drop((topic,), DROP_SYNC)

    # -- synchronizer callbacks -------------------------------------------------------------------------
    def _make_sync(self, streams: tuple[str, ...], degraded: bool) -> Synchronizer:
        p = self.params
        return Synchronizer(
            streams,
            queue_size=p['sync.queue_size'],
            slop_ns=round(p['sync.slop'] * NS_PER_S),
            exact_groups=exact_groups_for(p, streams),
            min_interval_ns=round(p['sync.min_interval_ms'] * NS_PER_MS),
            callback=lambda synced: self._on_synced(synced, degraded),
            drop_callback=self._on_sync_drop,
            interval_warning=self._on_interval_violation,
        )

    def _on_interval_violation(self, stream: str, gap_ns: int, bound_ns: int) -> None:
        self._log.warning(f'{stream}: stamps {gap_ns / NS_PER_MS:.3f} ms apart, below sync.min_interval_ms '
                          f'({bound_ns / NS_PER_MS:g} ms): sets may depend on arrival order; lower '
                          'sync.min_interval_ms (0 = off). Counted in the sync diagnostics; warned once per '
                          'stream.')

    def interval_violations(self) -> dict[str, int]:
        """stream -> stamps closer than ``sync.min_interval_ms`` to their predecessor, so far."""
        totals = dict.fromkeys(self.streams, 0)
        for sync in (self._sync, self._degraded_sync):
            if sync is not None:
                for stream, count in sync.interval_violations().items():
                    totals[stream] += count
        return totals

    def _on_synced(self, synced: SyncedSet, degraded: bool) -> None:
        self._stats.synced(synced.spread_ns)
        work = _Work(synced, degraded, time.perf_counter_ns())
        if self.synchronous:
            self._process_safely(work)
            return
        replaced = self._buffer.put(work)
        if replaced is work:  # stopped
            self._stats.drop(synced.messages, DROP_SHUTDOWN)
        elif replaced is not None:
            self._stats.drop(replaced.synced.messages, DROP_BUSY)

    def _on_sync_drop(self, dropped: Dropped) -> None:
        reason = DROP_OUT_OF_ORDER if dropped.reason == sync_mod.DROP_OUT_OF_ORDER else DROP_SYNC
        self._stats.drop((dropped.topic,), reason)

    # -- processing (worker thread, or inline) ----------------------------------------------------------
    def _process_safely(self, work: _Work) -> None:
        try:
            self._process(work)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker or the caller
            self._stats.error(f'internal error: {exc}')
            self._stats.drop(work.synced.messages, DROP_ERROR)
            self._log.throttled('internal', 'error', f'unexpected error while processing a set: {exc!r}')

    def _process(self, work: _Work) -> None:
        synced = work.synced
        params = self.params
        now = self._clock.now_ns()
        if not params['enable']:
            self._stats.drop(synced.messages, DROP_DISABLED)
            return
        max_age_ns = params['max_input_age_ms'] * NS_PER_MS
        if max_age_ns > 0 and now > 0 and now - synced.earliest_ns > max_age_ns:
            self._stats.drop(synced.messages, DROP_STALE)
            self._stale_alarm(now - synced.earliest_ns)
            return
        self._stale_run = 0
        wanted = self._output.wanted()
        if not any(OUTPUT_SOURCE[o] in synced.messages for o in wanted):
            self._stats.drop(synced.messages, DROP_NO_SUBSCRIBERS)
            return
        frames = {}
        for stream, msg in synced.messages.items():
            try:
                frames[stream] = message_to_frame(stream, msg)
            except FrameError as exc:
                self._bad_message(stream, exc.problem)
                self._stats.drop([s for s in synced.messages if s != stream], DROP_BAD_MESSAGE)
                return
        fuse = self.fusion and not work.degraded and THERMAL_STREAM in frames and FUSED_OUTPUT in wanted
        try:
            extra: dict[str, Any] = {}
            if len(wanted) < len(self.outputs):
                extra['outputs'] = wanted
            if self._allocate is not None:
                extra['allocate'] = self._allocate
            result = self._pipeline.process(frames, fuse=fuse, **extra)
            outputs: dict[str, Any] = {o: f for o, f in result.outputs.items() if o in wanted}
            timings = result.timings
            rain = self._rain.update(getattr(result, 'rain_intensity', {}))
        except Exception as exc:  # noqa: BLE001 - FrameError or any inference failure
            problem = str(exc) or type(exc).__name__
            self._stats.error(problem)
            passthrough = params['passthrough_on_error']
            action = 'passing input through' if passthrough else 'set dropped'
            self._log.throttled('inference', 'error', f'inference failed ({action}): {problem}')
            if not passthrough:
                self._stats.drop(synced.messages, DROP_ERROR)
                return
            outputs = self._output.passthrough(synced, frames, fuse, wanted)
            timings = rain = None
        if self._output.publish(synced, outputs, timings, work.synced_perf_ns, params) and rain is not None:
            self._output.sink_call('publish_debug', 'rain_intensity', rain)

    def _stale_alarm(self, age_ns: int) -> None:
        """Several stale sets in a row and nothing published: name the likely cause, early."""
        self._stale_run += 1
        if self._stale_run == STALE_ALARM_SETS:
            self._log.error(
                f'{STALE_ALARM_SETS} sets in a row dropped as stale: the inputs are stamped '
                f'{age_ns / NS_PER_S:.1f} s before the node clock (max_input_age_ms '
                f'{self.params["max_input_age_ms"]:g}). Replaying a bag? Use sim time (use_sim_time true '
                "with the player's /clock; `nitedr run` switches to sim time when /clock is published) or "
                'set max_input_age_ms 0.')

    # -- diagnostics ------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Periodic housekeeping: thermal-silence check and diagnostics when a period has passed."""
        now = self._clock.now_ns()
        with self._switch_lock:
            self._update_degradation(now)
        period = self.diagnostics_period_s
        if now > 0:
            due = (
                self._last_diag_ns is None
                or now - self._last_diag_ns >= period * NS_PER_S
                or now < self._last_diag_ns
            )
        else:
            due = time.monotonic() - self._last_diag_mono >= period
        if due:
            self.publish_diagnostics(now)

    def statuses(self, now_ns: int | None = None) -> list[DiagnosticStatus]:
        """Diagnostic statuses for this period (starts the next period)."""
        now = self._clock.now_ns() if now_ns is None else now_ns
        with self._switch_lock:
            self._update_degradation(now)
        facts = dict(self._backend_facts)
        if self.fusion:
            facts['ir_timeout_ms'] = f'{self._thermal.timeout_ms():.1f}'
            facts['ir_timeout_source'] = self._thermal.timeout_source()
            registration = getattr(self._pipeline, 'registration_status', None)
            if registration is not None:
                facts.update(registration())
        hardware_id = (
            self.params['diagnostics.hardware_id'] or facts.get('device') or facts.get('backend', '')
        )
        ctx = DiagnosticsContext(
            node_name=self.node_name,
            now_ns=now,
            params=self.params,
            streams=self.streams,
            mode=self.mode,
            backend_facts=facts,
            degraded=self._thermal.degraded,
            degraded_for_ms=self._thermal.degraded_for_ms(now),
            enabled=bool(self.params['enable']),
            sync_pending=self._sync.pending() + (self._degraded_sync.pending() if self._degraded_sync else 0),
            rain=self._rain.snapshot(),
            hardware_id=str(hardware_id),
            interval_violations=self.interval_violations(),
        )
        return self._stats.statuses(ctx)

    def publish_diagnostics(self, now_ns: int | None = None) -> None:
        """Build the statuses and hand them to the sink (transport timers call this each period)."""
        now = self._clock.now_ns() if now_ns is None else now_ns
        self._last_diag_ns = now if now > 0 else None
        self._last_diag_mono = time.monotonic()
        self._output.sink_call('publish_diagnostics', self.statuses(now), now)

    # -- parameters -------------------------------------------------------------------------------------
    def check_parameters(self, changes: Mapping[str, Any]) -> tuple[bool, str]:
        """Would this change set be accepted as a whole? ``(ok, reason)``; changes nothing."""
        new, reason = check_changes(self.params, changes)
        return new is not None, reason

    def set_parameters(self, changes: Mapping[str, Any]) -> tuple[bool, str]:
        """Validate the whole change set, then apply it all (or nothing): ``(ok, reason)``."""
        with self._param_lock:
            new, reason = check_changes(self.params, changes)
            if new is None:
                return False, reason
            old, self.params = self.params, new
        if new['sync.slop'] != old['sync.slop']:
            slop_ns = round(new['sync.slop'] * NS_PER_S)
            self._sync.set_slop_ns(slop_ns)
            if self._degraded_sync is not None:
                self._degraded_sync.set_slop_ns(slop_ns)
        if new['ir_timeout_ms'] != old['ir_timeout_ms']:
            self._thermal.set_parameter(new['ir_timeout_ms'])
        set_registration = getattr(self._pipeline, 'set_registration', None)
        registration_changed = any(new[k] != old[k] for k in new if k.startswith('registration.'))
        if set_registration is not None and registration_changed:
            set_registration(registration_spec(new))
        changed = sorted(k for k in changes if old.get(k) != new.get(k))
        if changed:
            self._log.info('parameters changed: ' + ', '.join(f'{k}={new[k]!r}' for k in changed))
        return True, ''
