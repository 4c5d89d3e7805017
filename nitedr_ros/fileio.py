"""Atomic file output: write under a temporary name beside the target, rename on success; scratch folders
that a later run cleans up when the process that made them died (stdlib only).

A reader never sees a half-written file and a failed or interrupted write leaves the old file (or none) in
place. The temporary name is hidden, unique per process and call (``.<stem>.<pid>.<random>.tmp<suffix>``) and
keeps the target's suffix, so writers that pick a format by file extension (matplotlib, OpenCV) still work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from .interrupts import stale_pid_entries


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (created if missing) that replaces ``path`` on success.

    On any exception (interrupts included) the temporary file is removed and ``path`` is left as it was.
    ``fsync``: flush the file's data to the disk before the rename (for caches that must survive a crash).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f'.{out.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{out.suffix}')
    try:
        yield tmp
        if fsync:
            descriptor = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`; returns the path."""
    with atomic_output(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_output`; returns the path."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def remove_stale(folder: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Remove ``<prefix><pid>[-...]`` entries of ``folder`` left by processes that no longer run (killed
    before their clean-up); returns what was removed."""
    removed = []
    for entry in stale_pid_entries(Path(folder), prefix):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


@contextlib.contextmanager
def scratch_folder(prefix: str, parent: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A temporary folder ``<parent>/<prefix><pid>-<random>`` removed on exit (interrupts included); stale
    folders of the same prefix from dead processes are removed first. ``parent``: the system temp folder."""
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    remove_stale(base, prefix)
    folder = Path(tempfile.mkdtemp(prefix=f'{prefix}{os.getpid()}-', dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
