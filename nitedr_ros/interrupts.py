"""SIGTERM handled like Ctrl-C, and critical sections an interrupt must not cut in half (stdlib only).

``systemd``, ``timeout`` and ``docker stop`` end a process with SIGTERM, whose default action kills it on the
spot: no ``finally`` runs, so partial outputs stay behind. :func:`terminate_as_interrupt` makes SIGTERM raise
:class:`Terminated` (a ``KeyboardInterrupt``) instead, so the same clean-up runs as for Ctrl-C.
:func:`deferred_interrupts` holds SIGINT/SIGTERM back while a finished output is closed and renamed; the
caller asks :meth:`Deferred.pending` at its last safe point (before the rename) and aborts there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process was; exit status 128 + 15 as a shell reports it."""

    signum = signal.SIGTERM


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise Terminated()


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def terminate_as_interrupt() -> None:
    """SIGTERM raises :class:`Terminated` in the main thread (elsewhere signals cannot be set)."""
    if in_main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_status(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (128 + the signal number, as shells report a signal)."""
    return 128 + int(getattr(exc, 'signum', signal.SIGINT))


class Deferred:
    """Signals received inside :func:`deferred_interrupts`, in order."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def pending(self) -> bool:
        return bool(self.received)

    def interrupt(self) -> KeyboardInterrupt:
        """The exception the first deferred signal would have raised."""
        return Terminated() if self.received and self.received[0] == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Deferred]:
    """SIGINT/SIGTERM are recorded instead of acted on inside the block (main thread only; elsewhere the
    block runs as is); the previous handlers come back afterwards."""
    deferred = Deferred()
    if not in_main_thread():
        yield deferred
        return

    def record(signum: int, _frame: Any) -> None:
        deferred.received.append(signum)

    previous = {sig: signal.signal(sig, record) for sig in INTERRUPT_SIGNALS}
    try:
        yield deferred
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one owned by another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_pid_entries(folder: Path, prefix: str) -> list[Path]:
    """Entries of ``folder`` named ``<prefix><pid>`` or ``<prefix><pid>-<anything>`` whose process is gone."""
    if not folder.is_dir():
        return []
    stale = []
    for entry in folder.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix):].split('-', 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            stale.append(entry)
    return sorted(stale)
