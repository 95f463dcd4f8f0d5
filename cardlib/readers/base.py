"""The small reader interface every transport offers (after Keyple's reader SPI).

A reader is a slot that may hold a card: ATR, transmit bytes, presence,
wait for a card, wait for its removal, disconnect with a disposition.
Readers move bytes only; T=0 handling, chaining and tracing live in
:mod:`cardlib.channel`.
"""

from __future__ import annotations

import contextlib
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, runtime_checkable


@runtime_checkable
class Card(Protocol):
    """The in-process card contract (sim and py readers, vpcd and PN532 bridges).

    ``process`` raises :class:`cardlib.errors.CardRemovedError` when the card is
    torn away.
    """

    @property
    def atr(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...

    def reset(self) -> bytes: ...


class Disposition(enum.Enum):
    """What happens to the card on disconnect (PC/SC SCARD_*_CARD)."""

    LEAVE = "leave"
    RESET = "reset"
    UNPOWER = "unpower"


class EventKind(enum.Enum):
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    SERVICE_UNAVAILABLE = "service_unavailable"
    SERVICE_AVAILABLE = "service_available"


@dataclass(frozen=True)
class ReaderEvent:
    kind: EventKind
    reader: str
    atr: bytes = b""
    time: float = field(default_factory=time.time)


class Reader(ABC):
    """A card slot. Subclasses implement the abstract methods."""

    #: Human-readable name of the slot.
    name: str = "reader"
    #: Largest command data field the reader passes in one APDU (chaining above).
    max_command_data: int = 255
    #: Whether extended-length APDUs pass.
    extended_length: bool = False
    #: Whether the connected card speaks T=0 (ISO 7816-3 §10-12): the channel then sends a
    #: case-4 command without Le and fetches the answer with GET RESPONSE. Set on connect.
    t0: bool = False

    @abstractmethod
    def connect(self) -> bytes:
        """Power the card (or select the target) and return its ATR.

        Raises NoCardError when no card is present, MultipleCardsError when the
        reader sees more than one.
        """

    @property
    @abstractmethod
    def atr(self) -> bytes:
        """ATR of the connected card (NoCardError when not connected)."""

    @abstractmethod
    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        """Send one command APDU and return the response APDU (data ‖ SW1 SW2)."""

    @abstractmethod
    def is_card_present(self) -> bool:
        """Whether a card is in the field now."""

    @abstractmethod
    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        """Release the card."""

    def close(self) -> None:
        """Release the reader; the default disconnects."""
        try:
            self.disconnect()
        except Exception:  # closing must not fail
            pass

    def begin_transaction(self) -> None:
        """Start exclusive access for a multi-APDU flow (no-op where not needed)."""
        return None

    def end_transaction(self) -> None:
        """End exclusive access."""
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Reader]:
        """Context manager around begin/end_transaction (ended however the block ends)."""
        self.begin_transaction()
        try:
            yield self
        finally:
            self.end_transaction()

    # Polling defaults; readers with real events override them.
    poll_interval: float = 0.05

    def wait_for_card(self, timeout: float | None = None) -> bool:
        """Block until a card is present; False on timeout."""
        return _poll(self.is_card_present, timeout, self.poll_interval)

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """Block until the card has left; False on timeout."""
        return _poll(lambda: not self.is_card_present(), timeout, self.poll_interval)

    def events(self, stop: Callable[[], bool] | None = None) -> Iterator[ReaderEvent]:
        """Card inserted/removed events by polling presence (until ``stop()``)."""
        present = False
        while stop is None or not stop():
            now = self.is_card_present()
            if now != present:
                present = now
                if now:
                    atr = b""
                    try:
                        atr = self.connect()
                    except Exception:  # the event still happened
                        pass
                    yield ReaderEvent(EventKind.CARD_INSERTED, self.name, atr)
                else:
                    yield ReaderEvent(EventKind.CARD_REMOVED, self.name)
            time.sleep(self.poll_interval)

    def __enter__(self) -> Reader:
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _poll(cond: Callable[[], bool], timeout: float | None, interval: float) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if cond():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(interval)
