"""Latest-only hand-off between the synchronizer and the one worker thread that runs the pipeline.

Subscription callbacks never run inference: the synchronizer's callback puts a set into
:class:`LatestOnlyBuffer` (size 1, drop-oldest: a set still waiting when a newer one arrives is replaced
and returned to the caller, who counts it as ``busy``), and :class:`Worker` takes the newest set and
processes it. The worker also runs a setup function first (e.g. building the pipeline, so a CUDA context
belongs to the thread that uses it) and reports its failure to whoever waits for it to start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

_LOG = logging.getLogger(__name__)


class LatestOnlyBuffer:
    """A one-slot buffer: ``put`` replaces (and returns) an item nobody took yet; ``get`` blocks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._full = False
        self._closed = False
        self._busy = False  # the consumer is processing the item it took last

    def put(self, item: Any) -> Any:
        """Offer the newest item; returns the replaced item or None. Refused (returned) after close()."""
        with self._cond:
            if self._closed:
                return item
            replaced = self._item if self._full else None
            self._item = item
            self._full = True
            self._cond.notify_all()
            return replaced

    def get(self, timeout: float | None = None) -> Any:
        """The newest item, or None on timeout or after close(). Marks the consumer busy until done()."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            self._busy = True
            return item

    def done(self) -> None:
        """The consumer finished the item it took."""
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is waiting and nothing is being processed (tests, bag flush)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._full and not self._busy, timeout)

    def close(self) -> Any:
        """Stop: wakes the consumer; returns an item nobody took (or None)."""
        with self._cond:
            self._closed = True
            leftover = self._item if self._full else None
            self._item, self._full = None, False
            self._cond.notify_all()
            return leftover

    @property
    def closed(self) -> bool:
        return self._closed


class Worker:
    """One thread: ``setup()`` once, then ``handle(item)`` for every item taken from the buffer.

    ``handle`` should not raise; if it does, the error is logged and the worker keeps going (the node never
    dies on input).
    """

    def __init__(
        self,
        buffer: LatestOnlyBuffer,
        handle: Callable[[Any], None],
        *,
        setup: Callable[[], None] | None = None,
        name: str = 'nitedr-worker',
    ) -> None:
        self._buffer = buffer
        self._handle = handle
        self._setup = setup
        self._ready = threading.Event()
        self._setup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, timeout: float | None = None) -> None:
        """Start the thread and wait for ``setup()``; re-raises its exception here."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError('worker setup did not finish in time')
        if self._setup_error is not None:
            self._thread.join()
            raise self._setup_error

    def stop(self, timeout: float | None = 10.0) -> Any:
        """Close the buffer and join; returns an item nobody took (or None)."""
        leftover = self._buffer.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return leftover

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self._setup is not None:
                self._setup()
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._setup_error = exc
            self._ready.set()
            return
        self._ready.set()
        while not self._buffer.closed:
            item = self._buffer.get()
            if item is None:
                continue
            try:
                self._handle(item)
            except Exception:  # noqa: BLE001 - the worker must survive any bug in one item
                _LOG.exception('nitedr worker: unexpected error (item skipped)')
            finally:
                self._buffer.done()


class Ticker:
    """A daemon thread calling ``function()`` every ``period`` seconds (wall clock) until ``stop()``."""

    def __init__(self, function: Callable[[], None], period: float, name: str = 'nitedr-ticker') -> None:
        self._function = function
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._function()
            except Exception:  # noqa: BLE001 - keep ticking
                _LOG.exception('nitedr ticker: unexpected error')
