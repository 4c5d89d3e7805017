"""The demo's outputs from three files: the played bag, the recorded bag and the player's publish log.

- ``grid.png``: a few evenly spaced output sets, one row each; columns are the mode's inputs and outputs
  (nitedr: rainy RGB | derained | fused | IR; full: those, then left | derained left | right | derained
  right).
- ``latency.png`` and the latency part of ``report.md``: **end to end** = the recorder's receive time of
  an output - the player's publish time of the newest input of its set (DDS in, sync, pipeline, DDS out,
  all wall clock on this machine); **processing** and **inference** as the node measured them
  (``~/debug/*_ms``).
- counts from the node's last DiagnosticArray (published after its final flush): frames per input, sets,
  outputs, drops by reason, each explained in words (:func:`explain_counts`): what was played against what
  the node received (lost in transport), why frames had no partner (camera rates), how many sets were
  processed and why the rest were not, how many outputs reached the recorder.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...core.clock import header_stamp_ns
from ...core.images import message_to_frame
from ...core.topics import OUTPUT_TOPICS, STREAM_TOPICS
from ...figures import pyplot, save_figure
from ...modes import MODE_OUTPUTS, MODE_STREAMS, OUTPUT_SOURCE
from ...pipeline.timing import percentile_summary
from .derain import LATENCY_PERCENTILES
from .reader import iter_raw, open_bag

_COLUMN_TITLES = {'rgb': 'rainy RGB (input)', 'left': 'rainy left (input)', 'right': 'rainy right (input)',
                  'thermal': 'thermal IR (input)', 'derained_rgb': 'derained',
                  'fused': 'fused (derained + IR)', 'derained_left': 'derained left',
                  'derained_right': 'derained right'}


# (column title, function of a grid row's input messages by stream -> the image to show)
CompareColumn = tuple[str, Callable[[dict[str, Any]], np.ndarray]]


def display_rgb(msg: Any) -> np.ndarray:
    """An Image/CompressedImage message as an RGB uint8 array for figures."""
    frame = message_to_frame('display', msg)
    data, encoding = frame.data, frame.encoding
    if data.dtype != np.uint8:
        low, high = np.percentile(data, (1, 99))
        scaled = (data.astype(np.float32) - low) / max(high - low, 1.0) * 255.0
        data = np.clip(scaled, 0, 255).astype(np.uint8)
    if data.ndim == 2 or data.shape[2] == 1:
        return np.repeat(data.reshape(data.shape[0], data.shape[1], 1), 3, axis=2)
    if encoding.startswith('bgr'):
        data = data[..., 2::-1]
    return np.ascontiguousarray(data[..., :3])


def _latency_summary(values: list[float]) -> dict[str, float]:
    return percentile_summary(values, LATENCY_PERCENTILES) if values else {}


def _read_publish_log(path: Path) -> dict[tuple[str, int], int]:
    published: dict[tuple[str, int], int] = {}
    if not path.is_file():
        return published
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row['stamp_ns']:
                published.setdefault((row['topic'], int(row['stamp_ns'])), int(row['wall_ns']))
    return published


def _nearest(stamps: np.ndarray, stamp: int) -> int | None:
    if stamps.size == 0:
        return None
    index = int(np.abs(stamps - stamp).argmin())
    return int(stamps[index])


def write_demo_report(played_bag: Path, recorded_bag: Path, publish_log: Path, run_dir: Path, *, mode: str,
                      topics: Mapping[str, str] | None = None, rows: int = 4,
                      models: Mapping[str, str] | None = None, backend: str = '',
                      rate: float = 1.0, compare: CompareColumn | None = None) -> dict[str, Any]:
    """Write grid.png, latency.png and report.md into ``run_dir``; returns the numbers (summary.json).
    ``topics``: stream -> topic of the played bag (default: the node's own topic names). ``compare``:
    (title, function of a row's input messages by stream -> image), an extra grid column after the fused
    one (the demo's fused output without registration)."""
    streams = MODE_STREAMS[mode]
    outputs = MODE_OUTPUTS[mode]
    topics = {s: '/' + (topics or {}).get(s, STREAM_TOPICS[s]).lstrip('/') for s in streams}
    input_topics = {topic: s for s, topic in topics.items()}
    output_topics = {f'/{OUTPUT_TOPICS[o]}': o for o in outputs}

    # recorded outputs: receive time and message per output, debug values, last diagnostics
    received: dict[str, list[tuple[int, Any]]] = {o: [] for o in outputs}
    debug: dict[str, list[float]] = {}
    diagnostics: list[Any] = []
    with open_bag(recorded_bag) as reader:
        for connection, record_ns, raw in iter_raw(reader, bag=recorded_bag):
            topic = '/' + connection.topic.lstrip('/')
            if topic in output_topics:
                msg = reader.deserialize(raw, connection.msgtype)
                received[output_topics[topic]].append((record_ns, msg))
            elif topic == '/diagnostics':
                diagnostics.append(reader.deserialize(raw, connection.msgtype))
            elif '/debug/' in topic:
                debug.setdefault(topic.rsplit('/', 1)[-1], []).append(
                    float(reader.deserialize(raw, connection.msgtype).data))
    primary = outputs[0]
    sets = sorted(received[primary], key=lambda item: header_stamp_ns(item[1]))

    # input stamps (all) and the images of the rows shown in the grid
    stamps_by_stream: dict[str, list[int]] = {s: [] for s in streams}
    with open_bag(played_bag) as reader:
        connections = [c for c in reader.connections if '/' + c.topic.lstrip('/') in input_topics]
        for connection, _, raw in iter_raw(reader, connections, played_bag):
            msg = reader.deserialize(raw, connection.msgtype)
            stamps_by_stream[input_topics['/' + connection.topic.lstrip('/')]].append(header_stamp_ns(msg))
    stamp_arrays = {s: np.asarray(sorted(v), np.int64) for s, v in stamps_by_stream.items()}

    # end-to-end latency: output receive - publish of the newest input of its set
    published = _read_publish_log(publish_log)
    end_to_end: list[float] = []
    timeline: list[tuple[float, float]] = []
    first_receive = sets[0][0] if sets else 0
    for receive_ns, msg in sets:
        stamp = header_stamp_ns(msg)
        times = []
        for stream in streams:
            nearest = stamp if OUTPUT_SOURCE[primary] == stream else _nearest(stamp_arrays[stream], stamp)
            wall = published.get((topics[stream], nearest)) if nearest is not None else None
            if wall is not None:
                times.append(wall)
        if len(times) == len(streams):
            latency = (receive_ns - max(times)) / 1e6
            end_to_end.append(latency)
            timeline.append(((receive_ns - first_receive) / 1e9, latency))

    # rows of the grid: evenly spaced sets, with the input images of each
    chosen = [sets[int(i)] for i in np.linspace(0, len(sets) - 1, min(rows, len(sets)))] if sets else []
    row_stamps = [header_stamp_ns(msg) for _, msg in chosen]
    wanted: dict[str, dict[int, int]] = {s: {} for s in streams}
    for stamp in row_stamps:
        for stream in streams:
            nearest = _nearest(stamp_arrays[stream], stamp)
            if nearest is not None:
                wanted[stream][nearest] = stamp
    input_images: dict[tuple[str, int], np.ndarray] = {}
    row_messages: dict[int, dict[str, Any]] = {}
    with open_bag(played_bag) as reader:
        connections = [c for c in reader.connections if '/' + c.topic.lstrip('/') in input_topics]
        for connection, _, raw in iter_raw(reader, connections, played_bag):
            stream = input_topics['/' + connection.topic.lstrip('/')]
            msg = reader.deserialize(raw, connection.msgtype)
            row = wanted[stream].get(header_stamp_ns(msg))
            if row is not None:
                input_images[(stream, row)] = display_rgb(msg)
                row_messages.setdefault(row, {})[stream] = msg
    output_images: dict[tuple[str, int], np.ndarray] = {}
    for output in outputs:  # an output carries its source's stamp: the row whose input it is (full mode:
        source = OUTPUT_SOURCE[output]  # stereo outputs have the stereo stamps, rows the rgb ones)
        for _, msg in received[output]:
            row = wanted[source].get(header_stamp_ns(msg))
            if row is not None:
                output_images[(output, row)] = display_rgb(msg)

    columns = _grid_columns(mode)
    titles = dict(_COLUMN_TITLES)
    if compare is not None:
        title, render = compare
        titles['compare'] = title
        columns.insert(columns.index('fused') + 1 if 'fused' in columns else len(columns), 'compare')
        for row, messages in row_messages.items():
            if set(streams) <= set(messages):
                output_images[('compare', row)] = render(messages)
    grid_path = run_dir / 'grid.png'
    first_stamp = min((int(a[0]) for a in stamp_arrays.values() if a.size), default=0)
    _plot_grid(grid_path, columns, titles, row_stamps, input_images, output_images, mode, first_stamp)
    latency = {'end_to_end': _latency_summary(end_to_end)}
    for name, values in debug.items():
        latency[name.removesuffix('_ms').removesuffix('_time')] = _latency_summary(values)
    latency_path = run_dir / 'latency.png'
    _plot_latency(latency_path, timeline, debug, end_to_end, latency['end_to_end'])

    counts = _counts(diagnostics[-1] if diagnostics else None, streams)
    played = {stream: len(values) for stream, values in stamps_by_stream.items()}
    rates = {stream: _rate_hz(array) for stream, array in stamp_arrays.items()}
    report_counts = {'played': played, 'rates_hz': rates}
    report = {
        'mode': mode, 'backend': backend, 'models': dict(models or {}), 'rate': rate,
        'played_bag': str(played_bag), 'recorded_bag': str(recorded_bag),
        'sets': counts.get('sets_total', len(sets)),
        'outputs_recorded': sum(len(v) for v in received.values()),
        'counts': counts, **report_counts, 'latency_ms': latency, 'diagnostics_received': len(diagnostics),
        'grid': str(grid_path), 'latency_plot': str(latency_path),
    }
    report['explained'] = explain_counts(counts, played, rates, report['outputs_recorded'], len(outputs))
    (run_dir / 'report.md').write_text(_markdown(report, streams, outputs))
    return report


def _rate_hz(stamps: np.ndarray) -> float:
    if stamps.size < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return float((stamps.size - 1) / ((stamps[-1] - stamps[0]) / 1e9))


DROP_WORDS = {
    'busy': 'the node was still processing the previous set when they were made; it keeps only the newest '
            'set while busy (latest-only), so a slow machine publishes fewer, fresh sets instead of falling '
            'behind',
    'stale': 'they were older than max_input_age_ms on the node clock when their turn came',
    'out_of_order': 'their stamp was older than one already taken on that topic',
    'bad_message': 'the message could not be used (encoding, size or stamp; see last_bad_message)',
    'error': 'inference failed on them (see last_error)',
    'disabled': 'the node was disabled (enabled: false)',
    'no_subscribers': 'nobody subscribed to the outputs, so the node skipped the work',
    'publish_error': 'publishing the output failed',
    'shutdown': 'the node stopped before processing them',
}


def explain_counts(counts: Mapping[str, Any], played: Mapping[str, int], rates: Mapping[str, float],
                   outputs_recorded: int, outputs_per_set: int) -> list[str]:
    """Every count of the report in words: transport losses, frames without a partner (and why), sets
    processed or not (and why), outputs that reached the recorder."""
    if not counts:
        return ['The node published no final diagnostics, so its counts are unknown (did it start?).']
    lines = []
    frames_in = counts.get('frames_in', {})
    dropped = counts.get('dropped', {})
    for stream, sent in played.items():
        got = frames_in.get(stream, 0)
        if got < sent:
            lines.append(f'{stream}: the player published {sent} frames and the node received {got}: '
                         f'{sent - got} lost in transport (DDS), before the node could count them.')
        else:
            lines.append(f'{stream}: the player published {sent} frames; the node received all of them.')
    fastest = max(rates.values(), default=0.0)
    for stream in played:
        unpaired = dropped.get(f'{stream}.sync', 0)
        if not unpaired:
            continue
        rate = rates.get(stream, 0.0)
        why = ''
        if len(rates) > 1 and rate > 0 and rate >= fastest and min(rates.values()) < 0.9 * rate:
            slowest = min(rates, key=rates.get)
            why = (f': {stream} runs at {rate:.0f} Hz and {slowest} at {rates[slowest]:.0f} Hz, so about '
                   f'{1 - rates[slowest] / rate:.0%} of the {stream} frames have no partner by design')
        lines.append(f'{stream}: {unpaired} frames found no partner within the synchronizer\'s slop and '
                     f'were not part of any set{why}.')
    sets = int(counts.get('sets_total', 0))
    per_set_drops: dict[str, int] = {}
    primary = next(iter(played), '')
    for key, value in dropped.items():
        stream, _, reason = key.partition('.')
        if stream == primary and reason != 'sync' and reason not in ('out_of_order', 'bad_message'):
            per_set_drops[reason] = per_set_drops.get(reason, 0) + int(value)
    processed = sets - sum(per_set_drops.values())
    lines.append(f'{processed} of {sets} sets processed and published.')
    for reason, count in per_set_drops.items():
        lines.append(f'{count} sets not processed ({reason}): {DROP_WORDS.get(reason, reason)}.')
    for key, value in dropped.items():
        stream, _, reason = key.partition('.')
        if reason in ('out_of_order', 'bad_message'):
            lines.append(f'{stream}: {value} frames dropped ({reason}): {DROP_WORDS[reason]}.')
    published = int(counts.get('outputs_total', 0))
    expected = processed * outputs_per_set
    lines.append(f'{published} output images published ({outputs_per_set} per processed set'
                 + (f'; {expected - published} fewer: fused images are skipped while thermal is missing'
                    if published < expected else '') + f'); the recorder received {outputs_recorded}'
                 + (f', {published - outputs_recorded} lost in transport' if outputs_recorded < published
                    else '') + '.')
    return lines


def _grid_columns(mode: str) -> list[str]:
    return {'nitedr': ['rgb', 'derained_rgb', 'fused', 'thermal'],
            'stereo': ['left', 'derained_left', 'right', 'derained_right'],
            'single': ['rgb', 'derained_rgb'],
            'full': ['rgb', 'derained_rgb', 'fused', 'thermal', 'left', 'derained_left', 'right',
                     'derained_right']}[mode]


def _plot_grid(path: Path, columns: list[str], titles: Mapping[str, str], row_stamps: list[int],
               inputs: Mapping[tuple[str, int], Any],
               outputs: Mapping[tuple[str, int], Any], mode: str, first_stamp: int) -> None:
    plt = pyplot()

    rows = max(1, len(row_stamps))
    figure, axes = plt.subplots(rows, len(columns), figsize=(3.2 * len(columns), 2.5 * rows), squeeze=False)
    for r in range(rows):
        for c, column in enumerate(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            image = None
            if r < len(row_stamps):
                key = (column, row_stamps[r])
                image = inputs.get(key) if column in STREAM_TOPICS else outputs.get(key)
            if image is not None:
                axis.imshow(image)
            else:
                axis.text(0.5, 0.5, 'not published' if r < len(row_stamps) else 'no output', ha='center',
                          va='center', transform=axis.transAxes)
            if r == 0:
                axis.set_title(titles[column], fontsize=10)
            if c == 0 and r < len(row_stamps):
                axis.set_ylabel(f'stamp +{(row_stamps[r] - first_stamp) / 1e9:.2f} s', fontsize=8)
    figure.suptitle(f'nitedr demo ({mode} mode): inputs and outputs of the same sets', fontsize=11)
    figure.tight_layout()
    save_figure(figure, path, dpi=90)


def _plot_latency(path: Path, timeline: list[tuple[float, float]], debug: Mapping[str, list[float]],
                  end_to_end: list[float], end_to_end_summary: Mapping[str, float]) -> None:
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    if timeline:
        times, values = zip(*timeline)
        left.plot(times, values, '.-', label='end to end (DDS in -> DDS out)')
    processing = debug.get('processing_time_ms', [])
    inference = debug.get('inference_time_ms', [])
    if processing:
        left.plot(np.linspace(0, timeline[-1][0] if timeline else 1, len(processing)), processing, '.-',
                  label='node: set -> published')
    if inference:
        left.plot(np.linspace(0, timeline[-1][0] if timeline else 1, len(inference)), inference, '.-',
                  label='node: inference')
    left.set_xlabel('time since first output (s)')
    left.set_ylabel('ms')
    left.set_title('latency per set')
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    if end_to_end:
        right.hist(end_to_end, bins=min(30, max(5, len(end_to_end) // 2)), color='tab:blue', alpha=0.8)
        for name in ('p50', 'p90'):
            value = end_to_end_summary[name]
            right.axvline(value, color='k', linestyle='--', linewidth=1)
            right.text(value, right.get_ylim()[1] * 0.9, f' {name} {value:.1f}', fontsize=8)
    right.set_xlabel('end-to-end latency (ms)')
    right.set_ylabel('sets')
    right.set_title('end-to-end latency distribution')
    figure.tight_layout()
    save_figure(figure, path, dpi=90)


def _counts(diagnostics: Any, streams: tuple[str, ...]) -> dict[str, Any]:
    if diagnostics is None:
        return {}
    statuses = {status.name.split(': ', 1)[-1]: {kv.key: kv.value for kv in status.values}
                for status in diagnostics.status}
    counts: dict[str, Any] = {'frames_in': {}, 'dropped': {}}
    for stream in streams:
        values = statuses.get(f'input {stream}', {})
        counts['frames_in'][stream] = int(values.get('frames_total', 0))
        for key, value in values.items():
            if key.startswith('dropped_') and int(value):
                counts['dropped'][f'{stream}.{key[8:]}'] = int(value)
    counts['sets_total'] = int(statuses.get('sync', {}).get('sets_total', 0))
    counts['outputs_total'] = int(statuses.get('pipeline', {}).get('outputs_total', 0))
    counts['backend'] = statuses.get('pipeline', {}).get('backend', '')
    return counts


def _markdown(report: Mapping[str, Any], streams: tuple[str, ...], outputs: tuple[str, ...]) -> str:
    counts = report['counts']
    lines = ['# nitedr demo report', '',
             f'Mode **{report["mode"]}**, backend **{counts.get("backend") or report["backend"]}**, '
             f'replay rate {report["rate"]:g}x; models: '
             + ', '.join(f'{r} = `{p}`' for r, p in report['models'].items()),
             '', f'Played `{report["played_bag"]}` (player process) through the node process over DDS '
             f'(loopback); recorded `{report["recorded_bag"]}` (recorder process).', '',
             '## Counts (node diagnostics after its final flush)', '',
             '| frames in | sets | outputs published | outputs recorded | dropped |', '|---|---|---|---|---|',
             '| ' + ', '.join(f'{s} {counts.get("frames_in", {}).get(s, "?")}' for s in streams)
             + f' | {counts.get("sets_total", "?")} | {counts.get("outputs_total", "?")} | '
             f'{report["outputs_recorded"]} | '
             + (', '.join(f'{k} {v}' for k, v in counts.get('dropped', {}).items()) or 'none') + ' |', '',
             '## Latency (ms)', '',
             '| what | p50 | p90 | p99 | max | sets |', '|---|---|---|---|---|---|']
    names = {'end_to_end': 'end to end: newest input published -> output received',
             'processing': 'node: set complete -> outputs published', 'inference': 'node: inference',
             'pipeline_latency': 'node clock (sim time): publish - header stamp'}
    for key, values in report['latency_ms'].items():
        if values:
            lines.append(f'| {names.get(key, key)} | {values["p50"]:.1f} | {values["p90"]:.1f} | '
                         f'{values["p99"]:.1f} | {values["max"]:.1f} | {values["count"]} |')
    lines += ['', '## What the counts mean', '', *[f'- {line}' for line in report.get('explained', [])], '',
              '![before/after](grid.png)', '', '![latency](latency.png)', '']
    return '\n'.join(lines)
