"""A recorded APDU trace replayed as a card (``trace:PATH``).

Each command must match the next recorded one (masked bytes match anything);
the first one that differs fails with a MismatchError naming the entry.
"""

from __future__ import annotations

from cardlib.errors import MismatchError, NoCardError
from cardlib.readers.base import Disposition, Reader
from cardlib.trace import Trace, concrete, matches, read_trace

DEFAULT_ATR = bytes.fromhex("3B80800101")  # a contactless T=1 pseudo-ATR


class TraceReplayReader(Reader):
    """Answers from a trace, in order."""

    def __init__(self, trace: Trace, name: str = "trace") -> None:
        self.name = name
        self._trace = trace
        self._pos = 0
        self._connected = False

    @property
    def remaining(self) -> int:
        return len(self._trace.entries) - self._pos

    def connect(self) -> bytes:
        self._connected = True
        return self.atr

    @property
    def atr(self) -> bytes:
        return self._trace.atr or DEFAULT_ATR

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        if not self._connected:
            raise NoCardError(f"no card connected in {self.name}")
        number = self._pos + 1
        if self._pos >= len(self._trace.entries):
            raise MismatchError(
                f"trace exhausted: command {number} ({apdu.hex().upper()}) was not recorded"
            )
        entry = self._trace.entries[self._pos]
        if not matches(entry.command, apdu):
            raise MismatchError(
                f"trace entry {number} (line {entry.line}) differs: expected {entry.command}, "
                f"got {apdu.hex().upper()}"
            )
        self._pos += 1
        return concrete(entry.response)

    def is_card_present(self) -> bool:
        return True

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        self._connected = False


def open_trace_reader(target: str, options: dict[str, str]) -> TraceReplayReader:
    """Backend of ``trace:PATH``."""
    return TraceReplayReader(read_trace(target), name=f"trace:{target}")
