"""Virtual cards in front of a reader, three ways: in process (``sim``), behind
real pcscd through the vpcd driver (``pcsc``), or behind an emulated PN532 on
a pseudo-terminal (``pn532``). The terminal reads the field's ``reader`` as it
would read hardware; the same story runs unchanged on each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cardlib.errors import FormatError, ReaderUnavailableError
from cardlib.readers.base import Card, Reader
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import open_reader
from simulators.vpcd import VpcdBridge, reader_name

FIELD_KINDS = ("sim", "pcsc", "pn532")


def wait_for(cond: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


class Field(Protocol):
    """A reader and a hand that puts cards in front of it."""

    kind: str
    #: Whether two cards can be in the field at once (PC/SC readers resolve anticollision themselves).
    holds_several: bool

    @property
    def reader(self) -> Reader: ...

    def insert(self, card: Card) -> None: ...
    def remove(self, card: Card) -> None: ...
    def close(self) -> None: ...


class SimField:
    kind = "sim"
    holds_several = True

    def __init__(self, name: str = "sim") -> None:
        self.reader = HostedReader(name=name)

    def insert(self, card: Card) -> None:
        self.reader.insert(card)

    def remove(self, card: Card) -> None:
        self.reader.remove(card)

    def close(self) -> None:
        self.reader.close()


class VpcdField:
    """One card at a time on a vpcd port; waits until pcscd has seen it come and go
    (pcscd polls every 400 ms, see docs/pcsc.md)."""

    kind = "pcsc"
    holds_several = False

    def __init__(self, port: int = 35963, settle: float = 10.0) -> None:
        self.port = port
        self.settle = settle
        self.bridge: VpcdBridge | None = None
        self.reader = open_reader(f"pcsc:{reader_name(port)}")

    def insert(self, card: Card) -> None:
        if self.bridge is not None and self.bridge.card is card:
            self.bridge.insert()
        else:
            if self.bridge is not None and self.bridge.inserted.is_set():
                raise FormatError("a vpcd slot holds one card: remove the first before inserting another")
            self._drop_bridge()
            self.bridge = VpcdBridge(card, port=self.port).start()
        if not wait_for(self.reader.is_card_present, self.settle):
            raise ReaderUnavailableError(
                f"pcscd does not see the card in {self.reader.name!r} within {self.settle:g} s "
                "(is pcscd running with the vpcd driver?)")

    def remove(self, card: Card) -> None:
        if self.bridge is not None and self.bridge.card is card:
            self.bridge.remove()
            wait_for(lambda: not self.reader.is_card_present(), self.settle)

    def _drop_bridge(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None
            wait_for(lambda: not self.reader.is_card_present(), self.settle)

    def close(self) -> None:
        self._drop_bridge()
        self.reader.close()


class Pn532Field:
    kind = "pn532"
    holds_several = True

    def __init__(self) -> None:
        from simulators.pn532 import Pn532Emulator

        self.emulator = Pn532Emulator()
        self.device = self.emulator.start()
        try:
            self.reader = open_reader(f"pn532:{self.device}")
        except BaseException:
            self.emulator.stop()
            raise

    def insert(self, card: Card) -> None:
        self.emulator.insert(card)

    def remove(self, card: Card) -> None:
        self.emulator.remove(card)

    def close(self) -> None:
        self.reader.close()
        self.emulator.stop()


def open_field(kind: str) -> Field:
    """A field of ``kind`` (one of FIELD_KINDS)."""
    if kind == "sim":
        return SimField()
    if kind == "pcsc":
        return VpcdField()
    if kind == "pn532":
        return Pn532Field()
    raise FormatError(f"unknown field {kind!r}: expected one of {', '.join(FIELD_KINDS)}")
