"""``nitedr bag derain``: the node core run synchronously over a recorded bag.

Same synchronizer, pipeline, degradation and diagnostics as the live node (:class:`NodeCore` with
``synchronous=True``); the node clock is the bag (record) time of the message being handed in, as with
``ros2 bag play --clock`` and ``use_sim_time``. OUT holds every input topic unchanged (ROS 1 input is
converted to ROS 2 definitions) plus the node's outputs:

- ``<ns>/derained/.../image``, ``<ns>/fused/image`` (+ ``camera_info`` when the input has one): header =
  the input image's header, verbatim; encoding = the input encoding (CompressedImage input: its decoded
  encoding). **Record time** = the record time of the newest message of the set (the moment the live node
  would have had the whole set), or that plus the measured processing time with ``add_latency``.
- ``/diagnostics`` every ``diagnostics.period`` of bag time, stamped and recorded at that bag time; a final
  one at the end of the bag. ``~/debug/*_ms`` Float64 values at the record time of their set.

Parameters: ``--params FILE``, else the shipped ``config/<mode>.yaml`` (schema defaults where the package
has no config folder); then ``--mode``/``--backend``/``--model``; then ``--param``. Differences from the live
node, on purpose: sets are processed inline (nothing is dropped as ``busy``), and ``max_input_age_ms`` is
0 (off) unless ``--param`` or the user's own ``--params`` file sets it (the shipped file's 200 ms is not
used), since a bag's stamp-to-record delay is not processing backlog. The summary's latency percentiles
cover every published set, whether or not ``debug.publish_timing`` writes the ``~/debug`` topics; the
end-to-end one is on the bag clock (:data:`LATENCY_CLOCKS`). A message that cannot be decoded is skipped,
counted and named in the summary (``strict``: it ends the run). Free disk space is checked before the run
(an estimate from the input) and while writing (see :mod:`.writer`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.clock import ManualClock
from ...core.diagnostics import DROP_REASONS
from ...core.node_core import NodeCore
from ...core.parameters import DEFAULT_NODE_NAME, apply_choices, load_parameter_file, validate
from ...core.topics import DEBUG_VALUES, OUTPUT_CAMERA_INFO_TOPICS, OUTPUT_TOPICS, STATUS_VALUES, debug_topic
from ...errors import ConfigError
from ...modes import MODE_OUTPUTS, OUTPUT_SOURCE
from ...paths import config_dir
from ...pipeline.timing import percentile_summary
from ..dds.names import NameResolver
from .reader import (
    CAMERA_INFO,
    BagError,
    assign_streams,
    bag_location,
    deserialize,
    image_topics,
    iter_raw,
    open_bag,
)
from .ros2_messages import DIAGNOSTIC_ARRAY, FLOAT64, IMAGE, Ros2Messages
from .writer import AtomicBagWriter, OriginalTopicCopier, Ros2PayloadConverter, output_typestore, storage_of

log = logging.getLogger(__name__)

# Percentiles of the bag tools' latency summaries (derain summary, demo report).
LATENCY_PERCENTILES = (50, 90, 95, 99)
# what differs from the shipped config for a bag (a user's own --params file or --param wins)
BAG_DEFAULTS: dict[str, Any] = {'max_input_age_ms': 0.0}
# summary name (as the ~/debug topic) -> the core's latency value
SUMMARY_LATENCIES = {'processing_time_ms': 'processing_ms', 'inference_time_ms': 'inference_ms',
                     'pipeline_latency_ms': 'end_to_end_ms'}
# what each summary latency measures: the end-to-end one runs on the bag clock (record time of the set minus
# its header stamp: the recording's transport delay, not this machine), the others on this machine's clock
LATENCY_CLOCKS = {'processing_time_ms': 'wall clock, this machine',
                  'inference_time_ms': 'wall clock, this machine',
                  'pipeline_latency_ms': 'bag clock: record time of the set minus its header stamp'}
# how often (messages) free disk space is checked while writing
SPACE_CHECK_EVERY = 256
# raw size of a decoded CompressedImage output against its compressed input (JPEG of camera images: 5-15x)
COMPRESSED_EXPANSION = 10
# how many undecodable messages are named one by one in the summary notes
NAMED_UNDECODABLE = 5


@dataclass
class BagDerainOptions:
    """What ``nitedr bag derain`` was asked to do."""

    input: str | Path
    output: str | Path
    params: str | Path = ''
    mode: str | None = None
    topics: dict[str, str] = field(default_factory=dict)  # stream -> bag topic
    namespace: str = '/'
    node_name: str = DEFAULT_NODE_NAME
    backend: str | None = None
    models: dict[str, str] = field(default_factory=dict)  # role -> model path
    overrides: dict[str, Any] = field(default_factory=dict)  # any node parameter
    storage: str | None = None
    add_latency: bool = False
    progress: bool = True
    force: bool = False
    strict: bool = False  # an undecodable message ends the run (default: skipped and counted)
    pipeline: Any = None  # a ready pipeline (tests, benchmarks); default: built from the parameters


def node_parameters(options: BagDerainOptions) -> dict[str, Any]:
    """The node parameters for this run: ``--params`` (else the shipped ``<mode>.yaml`` without the values
    in :data:`BAG_DEFAULTS`), then mode/backend/models, the bag defaults where unset, then overrides."""
    given: dict[str, Any] = {}
    if options.params:
        given.update(load_parameter_file(options.params, node_name=options.node_name,
                                         namespace=options.namespace).given)
    else:
        shipped = config_dir() / f'{options.mode or "nitedr"}.yaml'
        try:
            given.update(load_parameter_file(shipped, node_name=options.node_name,
                                             namespace=options.namespace).given)
        except ConfigError:
            if shipped.is_file():  # a broken shipped file is a real error; a missing one means defaults
                raise
        for name in BAG_DEFAULTS:
            given.pop(name, None)
    given = apply_choices(given, mode=options.mode, backend=options.backend, models=options.models)
    for name, value in BAG_DEFAULTS.items():
        given.setdefault(name, value)
    given.update(options.overrides)
    return validate(given)


def bag_bytes(path: Path) -> int:
    """Bytes on disk of a bag (folder or single file)."""
    location = bag_location(path)
    if location.is_dir():
        return sum(entry.stat().st_size for entry in location.rglob('*') if entry.is_file())
    return location.stat().st_size if location.exists() else 0


def estimate_output_bytes(input_bytes: int, images: Mapping[str, Any], outputs: Sequence[str],
                          image_topic_count: int) -> int:
    """OUT holds a copy of the input plus one image per output and set: about the input's bytes per image
    topic for each output (x :data:`COMPRESSED_EXPANSION` where the output's source is compressed)."""
    per_topic = input_bytes / max(1, image_topic_count)
    compressed = {stream for stream, item in images.items() if getattr(item, 'compressed', False)}
    added = sum(per_topic * (COMPRESSED_EXPANSION if OUTPUT_SOURCE[o] in compressed else 1) for o in outputs)
    return int(input_bytes + added)


def camera_info_topic(image_topic: str) -> str:
    """``/cam/image_raw`` -> ``/cam/camera_info``; ``/cam/image/compressed`` -> ``/cam/camera_info``."""
    parts = image_topic.rstrip('/').split('/')
    if len(parts) > 1 and parts[-1] in ('compressed', 'theora', 'compressedDepth'):
        parts = parts[:-1]
    return '/'.join([*parts[:-1], 'camera_info'])


class OutputWriteFailed(BaseException):
    """Writing an output into OUT failed: ends the bag run. A BaseException on purpose: the core's per-output
    error handling (right for a live node, where one failed publish must not stop it) lets it through."""


class _BagSink:
    """OutputSink writing the core's outputs into the output bag at the current bag time."""

    def __init__(self, writer: Any, typestore: Any, topics: Mapping[str, str], info_topics: Mapping[str, str],
                 debug_topics: Mapping[str, str], add_latency: bool) -> None:
        self.writer = writer
        self.typestore = typestore
        self.messages = Ros2Messages(typestore)
        self.record_ns = 0
        self.add_latency = add_latency
        self.set_started = time.perf_counter_ns()
        self.connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._topics = dict(topics)
        self._info_topics = dict(info_topics)
        self._debug_topics = dict(debug_topics)
        self.latencies: dict[str, list[float]] = {name: [] for name in SUMMARY_LATENCIES}
        self.diagnostics_published = 0

    def on_published(self, latencies_ms: Mapping[str, float]) -> None:
        """The core's per-set latencies, for the summary (every published set)."""
        for name, key in SUMMARY_LATENCIES.items():
            if key in latencies_ms:
                self.latencies[name].append(float(latencies_ms[key]))

    def _write(self, topic: str, msgtype: str, msg: Any, record_ns: int) -> None:
        connection = self.connections.get(topic)
        if connection is None:
            connection = self.connections[topic] = self.writer.add_connection(topic, msgtype,
                                                                              typestore=self.typestore)
            self.counts[topic] = 0
        data = self.typestore.serialize_cdr(msg, msgtype)
        try:
            self.writer.write(connection, record_ns, data)
        except Exception as exc:
            raise OutputWriteFailed(f'writing {topic} failed: {exc}') from exc
        self.counts[topic] += 1

    def _output_time(self) -> int:
        if not self.add_latency:
            return self.record_ns
        return self.record_ns + (time.perf_counter_ns() - self.set_started)

    def publish_image(self, output: str, header: Any, image: Any) -> None:
        self._write(self._topics[output], IMAGE, self.messages.image(header, image), self._output_time())

    def publish_camera_info(self, output: str, header: Any, camera_info: Any) -> None:
        self._write(self._info_topics[output], CAMERA_INFO, self.messages.camera_info(camera_info, header),
                    self._output_time())

    def publish_diagnostics(self, statuses: list[Any], stamp_ns: int) -> None:
        self._write('/diagnostics', DIAGNOSTIC_ARRAY, self.messages.diagnostic_array(statuses, stamp_ns),
                    stamp_ns if stamp_ns > 0 else self.record_ns)
        self.diagnostics_published += 1

    def publish_debug(self, name: str, value: float) -> None:
        topic = self._debug_topics.get(name)
        if topic is not None:
            self._write(topic, FLOAT64, self.messages.float64(value), self._output_time())


def derain_bag(options: BagDerainOptions,
               progress_callback: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the node over ``options.input`` into ``options.output``; returns the summary (see module doc)."""
    started = time.monotonic()
    params = node_parameters(options)
    input_path = Path(options.input).expanduser()
    output = AtomicBagWriter(options.output, storage=options.storage or storage_of(input_path),
                             force=options.force, protect=[input_path])
    names = NameResolver.from_rules(options.namespace, options.node_name)
    with open_bag(input_path) as reader:
        all_topics = {conn.topic: conn.msgtype for conn in reader.connections}
        chosen, notes = assign_streams(image_topics(reader), all_topics, params['mode'], options.topics,
                                       options.namespace)
        typestore = output_typestore(reader)
        to_ros2 = Ros2PayloadConverter(reader, typestore)
        stream_of_topic = {item.topic: stream for stream, item in chosen.items()}
        info_of_topic = {}  # bag topic of a camera_info -> its stream
        for stream, item in chosen.items():
            wanted = '/' + camera_info_topic(item.topic).lstrip('/')
            for topic, msgtype in all_topics.items():
                if msgtype == CAMERA_INFO and '/' + topic.lstrip('/') == wanted:
                    info_of_topic[topic] = stream
        outputs = MODE_OUTPUTS[params['mode']]
        out_topics = {o: names.resolve(OUTPUT_TOPICS[o]) for o in outputs}
        out_info_topics = {o: names.resolve(OUTPUT_CAMERA_INFO_TOPICS[o]) for o in outputs
                           if OUTPUT_SOURCE[o] in info_of_topic.values()}
        debug_topics = ({name: names.resolve(debug_topic(name)) for name in DEBUG_VALUES}
                        if params['debug.publish_timing'] else {})
        debug_topics.update({name: names.resolve(debug_topic(name)) for name in STATUS_VALUES})
        clashes = sorted(({*out_topics.values(), *out_info_topics.values(), '/diagnostics',
                           *debug_topics.values()}) & {'/' + t.lstrip('/') for t in all_topics})
        if clashes:
            raise BagError(f'the input bag already has {", ".join(clashes)}, which the node would write; '
                           'use --namespace to put the outputs elsewhere')

        output.check_space(estimate_output_bytes(bag_bytes(input_path), chosen, outputs,
                                                 len(image_topics(reader))), 'the output bag')
        clock = ManualClock()
        writer = output.open()
        undecodable: dict[str, int] = {}
        try:
            copier = OriginalTopicCopier(reader, writer, typestore)
            sink = _BagSink(writer, typestore, out_topics, out_info_topics, debug_topics, options.add_latency)
            core = NodeCore(params, sink=sink, clock=clock, node_name=options.node_name,
                            pipeline=options.pipeline, synchronous=True, on_published=sink.on_published)
            core.set_input_topic_names({stream: item.topic for stream, item in chosen.items()})
            core.start()
            frames_in = dict.fromkeys(chosen, 0)
            copied = 0
            total = reader.message_count
            bar = _progress_bar(total, options.progress)
            for connection, record_ns, raw in iter_raw(reader, bag=input_path):
                clock.set_ns(record_ns)
                sink.record_ns = record_ns
                if copied % SPACE_CHECK_EVERY == 0:
                    output.check_space(0, f'writing (after {copied} of {total} input messages)')
                copied += 1
                stream = stream_of_topic.get(connection.topic)
                info_stream = info_of_topic.get(connection.topic)
                try:
                    copier.write(connection, record_ns, raw)
                    msg = (_ros2_message(reader, typestore, to_ros2, connection, raw)
                           if stream is not None or info_stream is not None else None)
                except BagError as exc:
                    if options.strict:
                        raise
                    count = undecodable[connection.topic] = undecodable.get(connection.topic, 0) + 1
                    if sum(undecodable.values()) <= NAMED_UNDECODABLE:
                        notes.append(f'skipped message {count} on {connection.topic} (record time '
                                     f'{record_ns} ns): {exc}')
                    msg = None
                if msg is not None:
                    if stream is not None:
                        frames_in[stream] += 1
                        sink.set_started = time.perf_counter_ns()
                        core.on_image(stream, msg)
                    else:
                        core.on_camera_info(info_stream, msg)
                if bar is not None:
                    bar.update(1)
                if progress_callback is not None:
                    progress_callback(copied, total)
            core.flush()
            core.publish_diagnostics()
            stats = core.stats
            drops = stats.drops_total()
            backend = _backend(core)
            core.stop()
            if bar is not None:
                bar.close()
            committed = output.commit()
        except BaseException as exc:
            explained = output.abort(exc)
            if explained is not None:
                raise explained from exc
            if isinstance(exc, OutputWriteFailed):
                raise BagError(f'{exc}; the partial bag was removed') from exc.__cause__
            raise
    wall_s = time.monotonic() - started
    if copied != total:
        notes.append(f'warning: the input lists {total} messages but only {copied} could be read '
                     '(rosbags could not match every connection of this bag)')
    notes.extend(copier.notes)
    notes.extend(f'removed {entry.name}, a partial output left by a run that was killed' for entry in
                 output.removed_stale)
    summary = {
        'input': str(input_path),
        'output': str(committed),
        'mode': params['mode'],
        'streams': {stream: item.topic for stream, item in chosen.items()},
        'camera_info': {stream: topic for topic, stream in info_of_topic.items()},
        'frames_in': frames_in,
        'sets_made': stats.sets_total,
        'outputs_published': stats.outputs_total,
        'inference_errors': stats.errors_total,
        'dropped': {reason: count for reason, count in drops.items() if count},
        'undecodable_skipped': dict(sorted(undecodable.items())),
        'output_topics': {topic: count for topic, count in sorted(sink.counts.items())},
        'messages_copied': copied,
        'diagnostics_published': sink.diagnostics_published,
        'latency_ms': {name: percentile_summary(values, LATENCY_PERCENTILES)
                       for name, values in sink.latencies.items() if values},
        'backend': backend,
        'wall_s': wall_s,
        'sets_per_s': stats.sets_total / wall_s if wall_s > 0 else 0.0,
        'record_time': 'input + processing' if options.add_latency else 'newest input of the set',
        'max_input_age_ms': params['max_input_age_ms'],
        'notes': notes,
    }
    return summary


def _backend(core: NodeCore) -> str:
    pipeline = core.pipeline
    describe = getattr(pipeline, 'describe', None)
    if describe is None:
        return type(pipeline).__name__
    try:
        facts = describe()
    except Exception:  # noqa: BLE001 - only for the summary
        return 'unknown'
    backends = sorted({str(f.get('backend', '')) for f in facts.values() if isinstance(f, dict)} - {''})
    return ', '.join(backends) or 'unknown'


def _ros2_message(reader: Any, typestore: Any, to_ros2: Ros2PayloadConverter, connection: Any,
                  raw: bytes) -> Any:
    """The message as a ROS 2 object (ROS 1 input converted), or a BagError naming the topic."""
    if reader.is2:
        return deserialize(reader, raw, connection)
    payload = to_ros2(connection, raw)
    try:
        return typestore.deserialize_cdr(payload, to_ros2.msgtype(connection))
    except Exception as exc:
        raise BagError(f'cannot decode a {connection.msgtype} message on {connection.topic}: {exc}') from exc


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit='msg', desc='bag derain', leave=False)


def format_summary(summary: Mapping[str, Any]) -> str:
    """The end-of-run report printed by ``nitedr bag derain``."""
    lines = [f'wrote {summary["output"]} ({summary["messages_copied"]} input messages copied, '
             f'{summary["wall_s"]:.1f} s, {summary["sets_per_s"]:.1f} sets/s, backend {summary["backend"]})']
    lines.append(f'mode {summary["mode"]}: ' + ', '.join(f'{s} = {t}' for s, t in summary['streams'].items()))
    lines.append('frames in: ' + ', '.join(f'{s} {n}' for s, n in summary['frames_in'].items())
                 + f'; sets made: {summary["sets_made"]}; outputs published: {summary["outputs_published"]}')
    dropped = summary['dropped']
    lines.append('dropped: ' + (', '.join(f'{reason} {dropped[reason]}' for reason in DROP_REASONS
                                          if reason in dropped) or 'none'))
    skipped = summary.get('undecodable_skipped') or {}
    if skipped:
        lines.append('undecodable messages skipped (not copied, not processed; --strict stops instead): '
                     + ', '.join(f'{topic} {count}' for topic, count in skipped.items()))
    if summary['inference_errors']:
        lines.append(f'inference errors: {summary["inference_errors"]}')
    for name, values in summary['latency_ms'].items():
        lines.append(f'{name} ({LATENCY_CLOCKS[name]}): p50 {values["p50"]:.1f}, '
                     f'p90 {values["p90"]:.1f}, p99 {values["p99"]:.1f}, max {values["max"]:.1f} ms '
                     f'({values["count"]} sets)')
    lines.append('written: ' + ', '.join(f'{t} {n}' for t, n in summary['output_topics'].items()))
    lines.append(f'output record time: {summary["record_time"]}; max_input_age_ms '
                 f'{summary["max_input_age_ms"]:g}')
    lines.extend(f'note: {note}' for note in summary['notes'])
    return '\n'.join(lines)


