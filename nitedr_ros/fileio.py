"""Atomic file output: write under a temporary name beside the target, rename on success (stdlib only).

A reader never sees a half-written file and a failed or interrupted write leaves the old file (or none) in
place. The temporary name is hidden, unique per process and call (``.<stem>.<pid>.<random>.tmp<suffix>``) and
keeps the target's suffix, so writers that pick a format by file extension (matplotlib, OpenCV) still work.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


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
