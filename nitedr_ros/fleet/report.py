"""The fleet report: ``OUTPUT_DIR/fleet_report.md`` and ``.json`` (written atomically, also after Ctrl-C)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..fileio import write_text_atomic
from .manifest import DONE, FAILED

REPORT_NAME = 'fleet_report'


def summarize(records: Sequence[Mapping[str, Any]], skipped: int, wall_s: float, *, address: str,
              workers: int, interrupted: bool, planned: int) -> dict[str, Any]:
    """Totals of this run's records (``skipped``: bags already done by an earlier run)."""
    done = [r for r in records if r.get('status') == DONE]
    failed = [r for r in records if r.get('status') == FAILED]
    frames = sum(int(r.get('frames_in', 0)) for r in done)
    dropped: Counter[str] = Counter()
    for record in done:
        dropped.update({k: int(v) for k, v in (record.get('dropped') or {}).items()})
    return {
        'address': address, 'workers': workers, 'planned': planned, 'skipped_done_before': skipped,
        'done': len(done), 'failed': len(failed), 'not_run': planned - skipped - len(records),
        'interrupted': interrupted, 'wall_s': round(wall_s, 3),
        'bags_per_min': round(len(done) / wall_s * 60.0, 3) if wall_s > 0 else 0.0,
        'frames_in': frames, 'frames_per_s': round(frames / wall_s, 3) if wall_s > 0 else 0.0,
        'sets': sum(int(r.get('sets', 0)) for r in done),
        'outputs': sum(int(r.get('outputs', 0)) for r in done),
        'dropped': dict(sorted(dropped.items())),
        'bag_seconds_total': round(sum(float(r.get('seconds', 0.0)) for r in records), 3),
        'failures_by_reason': dict(Counter(str(r.get('reason', 'unknown')) for r in failed)),
        'workers_used': sorted({str(r.get('worker', '?')) for r in records}),
    }


def write_report(output_dir: Path, summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> Path:
    """Markdown + JSON; returns the Markdown path."""
    write_text_atomic(output_dir / f'{REPORT_NAME}.json',
                      json.dumps({'summary': summary, 'bags': list(records)}, indent=1, default=str) + '\n')
    lines = ['# nitedr fleet derain', '',
             f'{summary["done"]} bags derained, {summary["failed"]} failed, {summary["skipped_done_before"]} '
             f'skipped (done by an earlier run), {summary["not_run"]} not run'
             + (' (interrupted: run again to finish)' if summary['interrupted'] else '') + '.', '',
             f'- where: {summary["address"]}, {summary["workers"]} worker(s): '
             + ', '.join(summary['workers_used']),
             f'- wall time {summary["wall_s"]:.1f} s: {summary["bags_per_min"]:.1f} bags/min, '
             f'{summary["frames_per_s"]:.1f} input frames/s ({summary["frames_in"]} frames, '
             f'{summary["sets"]} sets, {summary["outputs"]} output images)',
             '- dropped (counted by the node core, by reason): '
             + (', '.join(f'{k} {v}' for k, v in summary['dropped'].items()) or 'none'),
             '- failures by reason: '
             + (', '.join(f'{k} {v}' for k, v in summary['failures_by_reason'].items()) or 'none'), '',
             '| bag | status | frames in | sets | outputs | dropped | s | worker |',
             '|---|---|---|---|---|---|---|---|']
    for record in records:
        dropped = ', '.join(f'{k} {v}' for k, v in (record.get('dropped') or {}).items()) or '-'
        lines.append(f'| {record.get("relative")} | {record.get("status")} | {record.get("frames_in", "-")} '
                     f'| {record.get("sets", "-")} | {record.get("outputs", "-")} | {dropped} '
                     f'| {float(record.get("seconds", 0.0)):.1f} | {record.get("worker", "-")} |')
    failed = [r for r in records if r.get('status') == FAILED]
    if failed:
        lines += ['', '## Failures', '']
        lines += [f'- `{r.get("relative")}`: {r.get("error")}' for r in failed]
    path = output_dir / f'{REPORT_NAME}.md'
    write_text_atomic(path, '\n'.join(lines) + '\n')
    return path
