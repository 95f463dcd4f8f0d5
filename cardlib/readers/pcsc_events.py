"""Reader and card events from PC/SC's SCardGetStatusChange (PC/SC part 5),
including the ``\\\\?PnP?\\Notification`` pseudo-reader for readers coming and going.

The watcher has a context of its own (one pcsclite context serves one thread),
so a reader may transmit while it watches. It outlives pcscd: when the service
goes (pcscd stopped or restarted, or on Windows the last reader unplugged) it
reports SERVICE_UNAVAILABLE and READER_REMOVED for every reader it knew,
retries with backoff, and on return reports SERVICE_AVAILABLE and starts over
from a fresh state (READER_ADDED, CARD_INSERTED for cards already there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from cardlib.errors import TransportError
from cardlib.readers.base import EventKind, ReaderEvent
from cardlib.readers.pcsc import PNP, SCARD_E_CANCELLED, SCARD_E_TIMEOUT, Context, scard_module

#: Readers vanishing under the watcher: list again.
_READER_GONE = frozenset({0x80100009, 0x80100017})


class PcscWatcher:
    """An iterator of :class:`ReaderEvent`; ``stop()`` from any thread ends it promptly."""

    def __init__(self, stop: Callable[[], bool] | None = None, timeout: float = 0.5,
                 only: str | None = None, backoff: tuple[float, float] = (0.1, 2.0)) -> None:
        self._stop_when = stop
        self._stopped = threading.Event()
        self.timeout = timeout
        self.only = only
        self.backoff = backoff
        self._ctx: Context | None = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        """End the iteration; wakes a blocked SCardGetStatusChange with SCardCancel."""
        self._stopped.set()
        with self._lock:
            if self._ctx is not None:
                self._ctx.cancel()

    def _stopping(self) -> bool:
        return self._stopped.is_set() or (self._stop_when is not None and self._stop_when())

    def __iter__(self) -> Iterator[ReaderEvent]:
        s = scard_module()
        present_bit, changed_bit, unaware = s.SCARD_STATE_PRESENT, s.SCARD_STATE_CHANGED, s.SCARD_STATE_UNAWARE
        known: dict[str, int] = {}
        available: bool | None = None  # unknown until the first attempt
        delay = self.backoff[0]
        timeout_ms = max(1, int(self.timeout * 1000))
        pnp_state = unaware
        try:
            while not self._stopping():
                if self._ctx is None:
                    try:
                        ctx = Context()
                    except TransportError:
                        if available is not False:
                            available = False
                            yield ReaderEvent(EventKind.SERVICE_UNAVAILABLE, "")
                        self._stopped.wait(delay)
                        delay = min(delay * 2, self.backoff[1])
                        continue
                    with self._lock:
                        self._ctx = ctx
                    delay = self.backoff[0]
                    pnp_state = unaware
                    if available is False:
                        yield ReaderEvent(EventKind.SERVICE_AVAILABLE, "")
                    available = True
                ctx = self._ctx
                try:
                    names = [n for n in ctx.readers() if self.only is None or n == self.only]
                except TransportError:
                    yield from self._lost(known)
                    available = False
                    continue
                for name in [n for n in known if n not in names]:
                    del known[name]
                    yield ReaderEvent(EventKind.READER_REMOVED, name)
                for name in names:
                    if name not in known:
                        known[name] = unaware
                        yield ReaderEvent(EventKind.READER_ADDED, name)
                watch = [*known.items(), (PNP, pnp_state)]
                code, states = ctx.status_change(timeout_ms, watch)
                if code in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED):
                    continue
                if code in _READER_GONE:
                    continue  # a reader went between listing and waiting: list again
                if code != 0:
                    yield from self._lost(known)
                    available = False
                    continue
                for name, state, atr in states:
                    if name == PNP:
                        pnp_state = state & ~changed_bit
                        continue
                    before = known[name]
                    known[name] = state & ~changed_bit
                    was, now = bool(before & present_bit), bool(state & present_bit)
                    if now and not was:
                        yield ReaderEvent(EventKind.CARD_INSERTED, name, atr)
                    elif was and not now:
                        yield ReaderEvent(EventKind.CARD_REMOVED, name)
        finally:
            with self._lock:
                last, self._ctx = self._ctx, None
            if last is not None:
                last.close()

    def _lost(self, known: dict[str, int]) -> Iterator[ReaderEvent]:
        """The service went: report it, forget every reader, drop the context."""
        with self._lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.close()
        yield ReaderEvent(EventKind.SERVICE_UNAVAILABLE, "")
        for name in list(known):
            yield ReaderEvent(EventKind.READER_REMOVED, name)
        known.clear()


def watch_pcsc(stop: Callable[[], bool] | None = None, timeout: float = 0.5,
               only: str | None = None) -> Iterator[ReaderEvent]:
    """Events until ``stop()`` is true (checked at least every ``timeout`` seconds).

    ``only`` restricts card events to one reader name. For a stop from another
    thread without waiting for the timeout, use :class:`PcscWatcher` and its
    ``stop()``.
    """
    return iter(PcscWatcher(stop, timeout, only))
