"""The fleet manifest: ``OUTPUT_DIR/fleet_manifest.jsonl``, one JSON line per finished attempt.

Only the driver writes it, one whole line per bag as each finishes (flushed and fsynced), so a run stopped
at any moment (Ctrl-C, a killed driver, a lost machine) leaves every finished bag recorded. A line cut short
by a crash is ignored on reading and the next append starts on a new line. The latest line per input wins:
``done`` with the same input fingerprint, the same settings digest and the output still there means the
bag is skipped; anything else (``failed``, changed input or settings, output deleted) is derained again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .jobs import FleetJob

MANIFEST_NAME = 'fleet_manifest.jsonl'
DONE = 'done'
FAILED = 'failed'


class Manifest:
    """Read the latest record per input; append records."""

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.path = Path(output_dir) / MANIFEST_NAME
        self.latest: dict[str, dict[str, Any]] = {}
        self.unreadable_lines = 0
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    self.unreadable_lines += 1  # cut short by a crash
                    continue
                if isinstance(record, dict) and 'input' in record:
                    self.latest[record['input']] = record

    def is_done(self, job: FleetJob, settings_digest: str) -> bool:
        record = self.latest.get(job.input)
        return (record is not None and record.get('status') == DONE
                and record.get('settings') == settings_digest and job.fingerprint.matches(record)
                and record.get('output') == job.output and Path(job.output).exists())

    def append(self, record: Mapping[str, Any]) -> None:
        """One line, flushed to the disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str) + '\n'
        with self.path.open('ab') as handle:
            if handle.tell() > 0 and not _ends_with_newline(self.path):
                handle.write(b'\n')  # the previous run died mid-line
            handle.write(line.encode())
            handle.flush()
            os.fsync(handle.fileno())
        self.latest[str(record['input'])] = dict(record)


def _ends_with_newline(path: Path) -> bool:
    with path.open('rb') as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b'\n'
