"""Counters, latency windows and the diagnostic statuses built from them (plain dataclasses, no ROS).

Transports convert each :class:`DiagnosticStatus` to ``diagnostic_msgs/DiagnosticStatus`` (``level`` is the
message's byte value, ``values`` become ``KeyValue`` pairs) inside one ``DiagnosticArray`` stamped with the
given node-clock time. Statuses (names ``'<node>: <task>'``, as diagnostic_updater names them):

- ``input <stream>``: rate and last-stamp age on the node clock, frames and drops by reason, last bad
  message. STALE before the first message (or the clock), ERROR with no message in a period, WARN outside
  the rate tolerance, on bad messages or when the last stamp is older than ``max_input_age_ms``.
- ``sync``: sets, spread percentiles, pending messages, stamp spacings below ``sync.min_interval_ms`` per
  stream; WARN when such a spacing occurred in the period (sets may then depend on arrival order) or when
  every input arrived but no set formed.
- ``latency``: p50/p95/p99/max of sync spread, pre-process, inference, post-process, pipeline, processing
  (set synchronized -> published) and end-to-end (publish time - header stamp, node clock); level from
  ``diagnostics.latency_warn_ms`` / ``latency_error_ms`` on the end-to-end p95.
- ``pipeline``: backend and engine facts (``describe()``), outputs, errors, drops by reason, degraded
  (thermal silent) or disabled state; ERROR after an inference error in the period, WARN when degraded,
  disabled, busy-dropping or an output failed to publish (``publish_error``).
- ``qos``: incompatible-QoS events reported by the transport (WARN when any).
- ``rain``: the rain intensity of each derained camera (the derain residual, 8-bit levels: last and smoothed)
  and whether the camera is degraded: WARN at ``rain.warn_intensity``, ERROR (blinded) at
  ``rain.error_intensity``, on the smoothed value.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ..modes import FUSION_MODES, THERMAL_STREAM
from ..pipeline.timing import LatencyWindow
from .clock import NS_PER_MS, NS_PER_S

DROP_BAD_MESSAGE = 'bad_message'
DROP_SYNC = 'sync'
DROP_OUT_OF_ORDER = 'out_of_order'
DROP_BUSY = 'busy'
DROP_STALE = 'stale'
DROP_DISABLED = 'disabled'
DROP_ERROR = 'error'
DROP_PUBLISH_ERROR = 'publish_error'  # the transport failed to publish an output of this stream
DROP_SHUTDOWN = 'shutdown'  # made before the node stopped, not processed in time
# Not a drop of a wanted frame: no output of the set had a subscriber, so nothing was computed.
DROP_NO_SUBSCRIBERS = 'no_subscribers'
DROP_REASONS: tuple[str, ...] = (
    DROP_BAD_MESSAGE,
    DROP_SYNC,
    DROP_OUT_OF_ORDER,
    DROP_BUSY,
    DROP_STALE,
    DROP_DISABLED,
    DROP_ERROR,
    DROP_PUBLISH_ERROR,
    DROP_SHUTDOWN,
    DROP_NO_SUBSCRIBERS,
)
LATENCY_WINDOWS: tuple[str, ...] = (
    'sync_spread_ms',
    'preprocess_ms',
    'inference_ms',
    'postprocess_ms',
    'pipeline_ms',
    'processing_ms',
    'end_to_end_ms',
)


class Level(IntEnum):
    """``diagnostic_msgs/DiagnosticStatus`` level byte values."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass
class DiagnosticStatus:
    """One status: level, ``'<node>: <task>'`` name, message, hardware id and ordered key/values."""

    level: Level
    name: str
    message: str
    hardware_id: str
    values: list[tuple[str, str]] = field(default_factory=list)

    def value(self, key: str) -> str | None:
        return next((v for k, v in self.values if k == key), None)


@dataclass
class StreamCounters:
    topic: str
    frames_total: int = 0
    frames_in_period: int = 0
    published_total: int = 0  # messages that were part of a set with at least one published output
    last_arrival_ns: int | None = None
    last_stamp_ns: int | None = None
    bad_in_period: int = 0
    last_bad: str = ''
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))


@dataclass
class DiagnosticsContext:
    """What the statuses need besides the counters (snapshot of the core's state)."""

    node_name: str
    now_ns: int
    params: Mapping[str, Any]
    streams: tuple[str, ...]
    mode: str
    backend_facts: dict[str, str]
    degraded: bool
    degraded_for_ms: float
    enabled: bool
    sync_pending: int
    hardware_id: str
    interval_violations: dict[str, int] = field(default_factory=dict)  # stream -> total so far
    rain: dict[str, tuple[float, float]] = field(default_factory=dict)  # derained output -> (last, smoothed)


class CoreStats:
    """Thread-safe counters and latency windows of one node core."""

    def __init__(self, topics: Mapping[str, str], window_size: int) -> None:
        self._lock = threading.Lock()
        self.streams = {s: StreamCounters(t) for s, t in topics.items()}
        self.windows = {name: LatencyWindow(window_size) for name in LATENCY_WINDOWS}
        self.sets_total = 0
        self.outputs_total = 0
        self.errors_total = 0
        self.last_error = ''
        self.publish_errors_total = 0
        self.last_publish_error = ''
        self.qos_events: dict[str, tuple[int, str]] = {}
        self._violations_before: dict[str, int] = {}
        self._new_period(None)

    # -- recording (any thread) -------------------------------------------------------------------------
    def set_topic(self, stream: str, topic: str) -> None:
        """The topic name the transport really subscribes for ``stream`` (resolved, remapped)."""
        with self._lock:
            self.streams[stream].topic = topic

    def arrival(self, stream: str, now_ns: int) -> None:
        with self._lock:
            counters = self.streams[stream]
            counters.frames_total += 1
            counters.frames_in_period += 1
            counters.last_arrival_ns = now_ns

    def stamp(self, stream: str, stamp_ns: int) -> None:
        with self._lock:
            self.streams[stream].last_stamp_ns = stamp_ns

    def bad(self, stream: str, problem: str) -> None:
        with self._lock:
            counters = self.streams[stream]
            counters.bad_in_period += 1
            counters.last_bad = problem
            counters.drops[DROP_BAD_MESSAGE] += 1

    def drop(self, streams: Any, reason: str) -> None:
        with self._lock:
            for stream in streams:
                self.streams[stream].drops[reason] += 1
            if reason == DROP_BUSY:
                self.busy_in_period += 1

    def publish_failed(self, message: str) -> None:
        """An output could not be published (the set's messages are counted as ``publish_error`` when no
        output of the set was published)."""
        with self._lock:
            self.publish_errors_total += 1
            self.publish_errors_in_period += 1
            self.last_publish_error = message

    def synced(self, spread_ns: int) -> None:
        with self._lock:
            self.sets_total += 1
            self.sets_in_period += 1
            self.windows['sync_spread_ms'].add(spread_ns / NS_PER_MS)

    def error(self, message: str) -> None:
        with self._lock:
            self.errors_total += 1
            self.errors_in_period += 1
            self.last_error = message

    def published(self, streams: Any, outputs: int, latencies_ms: Mapping[str, float]) -> None:
        """A set of ``streams`` was published (``outputs`` images) with these latencies."""
        with self._lock:
            for stream in streams:
                self.streams[stream].published_total += 1
            self.outputs_total += outputs
            self.published_sets_in_period += 1
            for name, value in latencies_ms.items():
                self.windows[name].add(value)

    def qos_event(self, topic: str, description: str) -> None:
        with self._lock:
            count, _ = self.qos_events.get(topic, (0, ''))
            self.qos_events[topic] = (count + 1, description)

    def drops_total(self) -> dict[str, int]:
        with self._lock:
            return {r: sum(c.drops[r] for c in self.streams.values()) for r in DROP_REASONS}

    # -- statuses ---------------------------------------------------------------------------------------
    def statuses(self, ctx: DiagnosticsContext) -> list[DiagnosticStatus]:
        """Build every status and start a new period."""
        with self._lock:
            started = ctx.now_ns > 0
            elapsed_s = None
            if started and self.period_start_ns is not None and ctx.now_ns > self.period_start_ns:
                elapsed_s = (ctx.now_ns - self.period_start_ns) / NS_PER_S
            statuses = [self._input_status(ctx, s, elapsed_s) for s in ctx.streams]
            statuses.append(self._sync_status(ctx, elapsed_s))
            statuses.append(self._latency_status(ctx))
            statuses.append(self._pipeline_status(ctx, elapsed_s))
            statuses.append(self._qos_status(ctx))
            statuses.append(self._rain_status(ctx))
            self._violations_before = dict(ctx.interval_violations)
            if not started:
                for status in statuses:
                    status.level = Level.STALE
                    status.message = 'waiting for the clock (use_sim_time: is /clock published?)'
            self._new_period(ctx.now_ns if started else None)
            return statuses

    def _new_period(self, start_ns: int | None) -> None:
        """Zero the per-period counters; the period starts at ``start_ns`` (None: at the next report)."""
        for counters in self.streams.values():
            counters.frames_in_period = 0
            counters.bad_in_period = 0
        self.sets_in_period = 0
        self.published_sets_in_period = 0
        self.errors_in_period = 0
        self.busy_in_period = 0
        self.publish_errors_in_period = 0
        self.period_start_ns = start_ns

    def _name(self, ctx: DiagnosticsContext, task: str) -> str:
        return f'{ctx.node_name}: {task}'

    def _input_status(
        self, ctx: DiagnosticsContext, stream: str, elapsed_s: float | None
    ) -> DiagnosticStatus:
        c = self.streams[stream]
        p = ctx.params
        rate = c.frames_in_period / elapsed_s if elapsed_s else None
        age_ms = (ctx.now_ns - c.last_stamp_ns) / NS_PER_MS if c.last_stamp_ns is not None else None
        values = [
            ('topic', c.topic),
            ('frames_total', str(c.frames_total)),
            ('frames_published', str(c.published_total)),
            ('rate_hz', _fmt(rate)),
            ('expected_rate_hz', _fmt(p['diagnostics.expected_rate_hz'])),
            ('last_stamp_age_ms', _fmt(age_ms)),
        ]
        values += [(f'dropped_{r}', str(n)) for r, n in c.drops.items()]
        values.append(('last_bad_message', c.last_bad or '-'))
        expected = p['diagnostics.expected_rate_hz']
        tolerance = p['diagnostics.rate_tolerance']
        max_age = p['max_input_age_ms']
        if c.frames_total == 0:
            level, message = Level.STALE, 'no message received yet'
        elif elapsed_s is not None and c.frames_in_period == 0:
            level, message = Level.ERROR, f'no message for {elapsed_s:.1f} s'
        elif c.bad_in_period:
            level, message = Level.WARN, f'{c.bad_in_period} bad message(s): {c.last_bad}'
        elif rate is not None and expected > 0 and abs(rate - expected) > tolerance * expected:
            level, message = Level.WARN, f'rate {rate:.1f} Hz outside {expected:g} Hz +- {tolerance:.0%}'
        elif age_ms is not None and max_age > 0 and age_ms > max_age:
            level, message = Level.WARN, f'last stamp {age_ms:.0f} ms old (max_input_age_ms {max_age:g})'
        else:
            level = Level.OK
            message = 'receiving' if rate is None else f'{rate:.1f} Hz'
        return DiagnosticStatus(level, self._name(ctx, f'input {stream}'), message, ctx.hardware_id, values)

    def _sync_status(self, ctx: DiagnosticsContext, elapsed_s: float | None) -> DiagnosticStatus:
        p = ctx.params
        spread = self.windows['sync_spread_ms'].summary()
        values = [
            ('mode', p['sync.mode']),
            ('slop_ms', _fmt(p['sync.slop'] * 1000.0)),
            ('queue_size', str(p['sync.queue_size'])),
            ('exact_groups', ';'.join(p['sync.exact_groups'])),
            ('sets_total', str(self.sets_total)),
            ('sets_rate_hz', _fmt(self.sets_in_period / elapsed_s if elapsed_s else None)),
            ('spread_ms_p50', _fmt(spread['p50'])),
            ('spread_ms_p95', _fmt(spread['p95'])),
            ('spread_ms_max', _fmt(spread['max'])),
            ('pending_messages', str(ctx.sync_pending)),
        ]
        values += [(f'dropped_sync_{s}', str(self.streams[s].drops[DROP_SYNC])) for s in ctx.streams]
        values.append(('min_interval_ms', _fmt(p['sync.min_interval_ms'])))
        violations = {s: ctx.interval_violations.get(s, 0) for s in ctx.streams}
        values += [(f'min_interval_violations_{s}', str(n)) for s, n in violations.items()]
        new_violations = [s for s, n in violations.items() if n > self._violations_before.get(s, 0)]
        active = [s for s in ctx.streams if not (ctx.degraded and s == THERMAL_STREAM)]
        all_arrived = all(self.streams[s].frames_in_period for s in active)
        if not any(self.streams[s].frames_total for s in ctx.streams):
            level, message = Level.STALE, 'no input yet'
        elif new_violations:
            level, message = (
                Level.WARN,
                f'stamps of {", ".join(new_violations)} closer than sync.min_interval_ms '
                f'({p["sync.min_interval_ms"]:g} ms): sets may depend on arrival order; lower it (0 = off)',
            )
        elif elapsed_s is not None and all_arrived and self.sets_in_period == 0:
            level, message = (
                Level.WARN,
                (
                    f'inputs arrive but no set formed: stamps differ by more than the '
                    f'slop ({p["sync.slop"] * 1000.0:g} ms)?'
                ),
            )
        else:
            level, message = Level.OK, f'{self.sets_total} sets'
        return DiagnosticStatus(level, self._name(ctx, 'sync'), message, ctx.hardware_id, values)

    def _latency_status(self, ctx: DiagnosticsContext) -> DiagnosticStatus:
        p = ctx.params
        values = []
        for name in LATENCY_WINDOWS:
            summary = self.windows[name].summary()
            base = name[: -len('_ms')]
            values += [(f'{base}_ms_{k}', _fmt(summary[k])) for k in ('p50', 'p95', 'p99', 'max')]
        end_to_end = self.windows['end_to_end_ms'].summary()
        warn, error = p['diagnostics.latency_warn_ms'], p['diagnostics.latency_error_ms']
        if end_to_end['count'] == 0:
            level, message = Level.STALE, 'nothing published yet'
        elif end_to_end['p95'] > error:
            level, message = Level.ERROR, f'end-to-end p95 {end_to_end["p95"]:.1f} ms > {error:g} ms'
        elif end_to_end['p95'] > warn:
            level, message = Level.WARN, f'end-to-end p95 {end_to_end["p95"]:.1f} ms > {warn:g} ms'
        else:
            level, message = Level.OK, f'end-to-end p95 {end_to_end["p95"]:.1f} ms'
        return DiagnosticStatus(level, self._name(ctx, 'latency'), message, ctx.hardware_id, values)

    def _pipeline_status(self, ctx: DiagnosticsContext, elapsed_s: float | None) -> DiagnosticStatus:
        drops = {r: sum(c.drops[r] for c in self.streams.values()) for r in DROP_REASONS}
        values = [
            ('mode', ctx.mode),
            ('enabled', str(ctx.enabled).lower()),
            ('fusing', str(ctx.mode in FUSION_MODES and THERMAL_STREAM in ctx.streams
                           and not ctx.degraded).lower()),
            ('degraded', str(ctx.degraded).lower()),
            ('passthrough_on_error', str(ctx.params['passthrough_on_error']).lower()),
            ('outputs_total', str(self.outputs_total)),
            ('output_sets_rate_hz', _fmt(self.published_sets_in_period / elapsed_s if elapsed_s else None)),
            ('errors_total', str(self.errors_total)),
            ('last_error', self.last_error or '-'),
            ('publish_errors_total', str(self.publish_errors_total)),
            ('last_publish_error', self.last_publish_error or '-'),
        ]
        values += [(f'dropped_{r}_total', str(n)) for r, n in drops.items()]
        values += list(ctx.backend_facts.items())
        if self.errors_in_period:
            action = 'passing input through' if ctx.params['passthrough_on_error'] else 'dropping sets'
            level, message = Level.ERROR, f'inference error ({action}): {self.last_error}'
        elif ctx.degraded:
            level = Level.WARN
            message = (f'thermal silent or late for {ctx.degraded_for_ms:.0f} ms: publishing derained RGB '
                       'without fusion')
        elif not ctx.enabled:
            level, message = Level.WARN, 'disabled (enable: false)'
        elif self.publish_errors_in_period:
            level, message = (
                Level.WARN,
                f'{self.publish_errors_in_period} output(s) failed to publish: {self.last_publish_error}',
            )
        elif self.busy_in_period:
            level, message = (
                Level.WARN,
                f'{self.busy_in_period} set(s) replaced while busy: slower than input',
            )
        else:
            level, message = Level.OK, f'{ctx.backend_facts.get("backend", "pipeline")} running'
        return DiagnosticStatus(level, self._name(ctx, 'pipeline'), message, ctx.hardware_id, values)

    def _qos_status(self, ctx: DiagnosticsContext) -> DiagnosticStatus:
        values = [
            (topic, f'{count} incompatible: {what}')
            for topic, (count, what) in sorted(self.qos_events.items())
        ]
        if self.qos_events:
            level = Level.WARN
            message = 'incompatible QoS on ' + ', '.join(sorted(self.qos_events))
        else:
            level, message = Level.OK, 'no incompatible QoS event'
        return DiagnosticStatus(level, self._name(ctx, 'qos'), message, ctx.hardware_id, values)


    def _rain_status(self, ctx: DiagnosticsContext) -> DiagnosticStatus:
        warn, error = ctx.params['rain.warn_intensity'], ctx.params['rain.error_intensity']
        values = [('warn_intensity', f'{warn:g}'), ('error_intensity', f'{error:g}')]
        for output, (last, smoothed) in sorted(ctx.rain.items()):
            values += [(f'{output}.intensity', f'{last:.2f}'),
                       (f'{output}.intensity_smoothed', f'{smoothed:.2f}')]
        name = self._name(ctx, 'rain')
        if not ctx.rain:
            return DiagnosticStatus(Level.OK, name, 'no derained frame yet', ctx.hardware_id, values)
        output, (_, worst) = max(ctx.rain.items(), key=lambda item: item[1][1])
        camera = output.removeprefix('derained_')
        if worst >= error:
            level, message = Level.ERROR, f'{camera} camera blinded by rain ({worst:.1f} >= {error:g})'
        elif worst >= warn:
            level, message = Level.WARN, f'{camera} camera degraded by rain ({worst:.1f} >= {warn:g})'
        else:
            level, message = Level.OK, f'rain intensity {worst:.1f} (below {warn:g})'
        degraded = {Level.ERROR: 'blinded', Level.WARN: 'degraded'}.get(level, 'no')
        values.append(('degraded', degraded))
        return DiagnosticStatus(level, name, message, ctx.hardware_id, values)


def _fmt(value: float | None) -> str:
    return '-' if value is None else f'{value:.3f}'


def describe_pipeline(pipeline: Any) -> dict[str, str]:
    """Backend and engine facts from ``pipeline.describe()`` or its engines' ``describe()``, flattened."""
    facts: dict[str, str] = {}
    try:
        described = pipeline.describe() if hasattr(pipeline, 'describe') else None
        if described is None and isinstance(getattr(pipeline, 'engines', None), Mapping):
            described = {role: engine.describe() for role, engine in pipeline.engines.items()}
    except Exception as exc:  # noqa: BLE001 - diagnostics must never fail on a describe() bug
        return {'backend': 'unknown', 'describe_error': str(exc)}
    for key, value in (described or {}).items():
        if isinstance(value, Mapping):
            for sub, item in value.items():
                facts[f'{key}.{sub}'] = str(item)
                if sub == 'backend':
                    facts.setdefault('backend', str(item))
        else:
            facts[str(key)] = str(value)
    facts.setdefault('backend', 'unknown')
    return facts
