"""Latest-only hand-off between the synchronizer and the one worker thread that runs the pipeline.

Subscription callbacks never run inference: the synchronizer's callback puts a set into
:class:`LatestOnlyBuffer` and :class:`Worker` takes sets from it in order and processes them. Latest-only
means *drop what the worker could not take in time*, never *drop what arrived while it was idle*: sets put
while the worker is idle (one input message can complete two sets at once) all wait for it, in order;
a set put while the worker is busy replaces the one other set put while it was busy (returned to the
caller, who counts it as ``busy``). The worker also runs a setup function first (e.g. building the
pipeline, so a CUDA context belongs to the thread that uses it) and reports its failure to whoever waits
for it to start.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_LOG = logging.getLogger(__name__)
# Sets made while the worker is idle wait for it, at most this many by default (one input message, or a
# hand-over between synchronizers, completes at most a synchronizer queue of sets); beyond that the oldest
# is replaced as if the worker were busy.
IDLE_QUEUE_MAX = 8


class LatestOnlyBuffer:
    """Sets put while the consumer is idle queue up; one set put while it is busy waits behind them and is
    replaced by a newer one put while busy (see the module docstring). ``get`` blocks."""

    def __init__(self, idle_max: int = IDLE_QUEUE_MAX) -> None:
        self._idle_max = max(1, int(idle_max))
        self._cond = threading.Condition()
        self._idle_arrivals: deque[Any] = deque()  # put while the consumer was idle: all processed
        self._latest: Any = None  # put while the consumer was busy: only the newest is kept
        self._has_latest = False
        self._closed = False
        self._busy = False  # the consumer is processing the item it took last

    def put(self, item: Any) -> Any:
        """Offer the newest item; returns the item it replaced or None. Refused (returned) after close()."""
        with self._cond:
            if self._closed:
                return item
            replaced = None
            if self._busy:
                replaced = self._latest if self._has_latest else None
                self._latest, self._has_latest = item, True
            else:
                self._idle_arrivals.append(item)
                if len(self._idle_arrivals) > self._idle_max:
                    replaced = self._idle_arrivals.popleft()
            self._cond.notify_all()
            return replaced

    def _waiting(self) -> bool:
        return bool(self._idle_arrivals) or self._has_latest

    def get(self, timeout: float | None = None) -> Any:
        """The oldest waiting item, or None on timeout or after close(). Marks the consumer busy until
        done()."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting() or self._closed, timeout):
                return None
            if self._idle_arrivals:
                item = self._idle_arrivals.popleft()
            elif self._has_latest:
                item, self._latest, self._has_latest = self._latest, None, False
            else:
                return None
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
            return self._cond.wait_for(lambda: not self._waiting() and not self._busy, timeout)

    def close(self) -> list[Any]:
        """Stop: wakes the consumer; returns the items nobody took."""
        with self._cond:
            self._closed = True
            leftover = list(self._idle_arrivals)
            if self._has_latest:
                leftover.append(self._latest)
            self._idle_arrivals.clear()
            self._latest, self._has_latest = None, False
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

    def stop(self, timeout: float | None = 10.0) -> list[Any]:
        """Close the buffer and join; returns the items nobody took."""
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
