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
from collections.abc import Callable, Generator, Iterator
from types import ModuleType

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
        watch = _Watch(scard_module(), self.backoff[0])
        timeout_ms = max(1, int(self.timeout * 1000))
        try:
            while not self._stopping():
                ctx = yield from self._context(watch)
                if ctx is None:
                    continue
                try:
                    names = [n for n in ctx.readers() if self.only is None or n == self.only]
                except TransportError:
                    yield from self._lost(watch)
                    continue
                yield from watch.readers_now(names)
                code, states = ctx.status_change(timeout_ms, [*watch.known.items(), (PNP, watch.pnp_state)])
                if code in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED) or code in _READER_GONE:
                    continue  # nothing happened, or a reader went between listing and waiting: list again
                if code != 0:
                    yield from self._lost(watch)
                    continue
                yield from watch.states_now(states)
        finally:
            with self._lock:
                last, self._ctx = self._ctx, None
            if last is not None:
                last.close()

    def _context(self, watch: _Watch) -> Generator[ReaderEvent, None, Context | None]:
        """The watcher's context; when there is none, a new one (SERVICE_AVAILABLE after a
        loss), or None after a pause that doubles up to the backoff's maximum."""
        if self._ctx is not None:
            return self._ctx
        try:
            ctx = Context()
        except TransportError:
            if watch.available is not False:
                watch.available = False
                yield ReaderEvent(EventKind.SERVICE_UNAVAILABLE, "")
            self._stopped.wait(watch.delay)
            watch.delay = min(watch.delay * 2, self.backoff[1])
            return None
        with self._lock:
            self._ctx = ctx
        watch.delay = self.backoff[0]
        watch.pnp_state = watch.unaware
        if watch.available is False:
            yield ReaderEvent(EventKind.SERVICE_AVAILABLE, "")
        watch.available = True
        return ctx

    def _lost(self, watch: _Watch) -> Iterator[ReaderEvent]:
        """The service went: report it, forget every reader, drop the context."""
        with self._lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.close()
        watch.available = False
        yield ReaderEvent(EventKind.SERVICE_UNAVAILABLE, "")
        for name in list(watch.known):
            yield ReaderEvent(EventKind.READER_REMOVED, name)
        watch.known.clear()


class _Watch:
    """What the watcher knows between two waits: each reader's last state, the PnP
    pseudo-reader's, whether the service was there, the pause before the next try."""

    def __init__(self, scard: ModuleType, delay: float) -> None:
        self.present = scard.SCARD_STATE_PRESENT
        self.changed = scard.SCARD_STATE_CHANGED
        self.unaware = scard.SCARD_STATE_UNAWARE
        self.known: dict[str, int] = {}
        self.pnp_state = self.unaware
        self.available: bool | None = None  # unknown until the first attempt
        self.delay = delay

    def readers_now(self, names: list[str]) -> Iterator[ReaderEvent]:
        """READER_REMOVED and READER_ADDED against the readers known."""
        for name in [n for n in self.known if n not in names]:
            del self.known[name]
            yield ReaderEvent(EventKind.READER_REMOVED, name)
        for name in names:
            if name not in self.known:
                self.known[name] = self.unaware
                yield ReaderEvent(EventKind.READER_ADDED, name)

    def states_now(self, states: list[tuple[str, int, bytes]]) -> Iterator[ReaderEvent]:
        """CARD_INSERTED and CARD_REMOVED from what SCardGetStatusChange answered."""
        for name, state, atr in states:
            if name == PNP:
                self.pnp_state = state & ~self.changed
                continue
            before = self.known[name]
            self.known[name] = state & ~self.changed
            was, now = bool(before & self.present), bool(state & self.present)
            if now and not was:
                yield ReaderEvent(EventKind.CARD_INSERTED, name, atr)
            elif was and not now:
                yield ReaderEvent(EventKind.CARD_REMOVED, name)


def watch_pcsc(stop: Callable[[], bool] | None = None, timeout: float = 0.5,
               only: str | None = None) -> Iterator[ReaderEvent]:
    """Events until ``stop()`` is true (checked at least every ``timeout`` seconds).

    ``only`` restricts card events to one reader name. For a stop from another
    thread without waiting for the timeout, use :class:`PcscWatcher` and its
    ``stop()``.
    """
    return iter(PcscWatcher(stop, timeout, only))
