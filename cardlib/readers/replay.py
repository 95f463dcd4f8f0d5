"""A recorded APDU trace replayed as a card (``trace:PATH``, ``trace:PATH?reader=NAME``).

Each command must match the next recorded one (masked bytes match anything);
the first one that differs fails with a MismatchError naming the entry. The
ATR is the one of the trace's header line, else a contactless pseudo-ATR.
A trace of several readers (a card and its PSAM) replays one of them with
``?reader=NAME``.
"""

from __future__ import annotations

import os

from cardlib.errors import FormatError, MismatchError, NoCardError
from cardlib.readers.base import Disposition, Reader
from cardlib.trace import Trace, concrete, matches, read_trace

DEFAULT_ATR = bytes.fromhex("3B80800101")  # a contactless T=1 pseudo-ATR


class TraceReplayReader(Reader):
    """Answers from a trace, in order."""

    extended_length = True
    max_command_data = 65535

    def __init__(self, path: str | os.PathLike[str] | Trace, name: str | None = None) -> None:
        if isinstance(path, Trace):
            self._trace = path
            self.name = name or "trace"
        else:
            self._trace = read_trace(path)
            self.name = name or f"trace:{os.fspath(path)}"
        self._entries = self._trace.entries
        self._pos = 0
        self._connected = False

    @property
    def trace(self) -> Trace:
        return self._trace

    @property
    def position(self) -> int:
        """How many entries have been answered."""
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._entries) - self._pos

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
        got = bytes(apdu).hex().upper()
        if self._pos >= len(self._entries):
            raise MismatchError(f"trace exhausted: command {number} ({got}) was not recorded")
        entry = self._entries[self._pos]
        if not matches(entry.command, apdu):
            raise MismatchError(
                f"trace entry {number} (line {entry.line}) differs: expected {entry.command}, got {got}"
            )
        self._pos += 1
        return concrete(entry.response)

    def is_card_present(self) -> bool:
        return True

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        self._connected = False


def open_trace_reader(target: str, options: dict[str, str]) -> TraceReplayReader:
    """Backend of ``trace:PATH[?reader=NAME]``."""
    if not target:
        raise FormatError("trace reader: expected trace:PATH")
    unknown = set(options) - {"reader"}
    if unknown:
        raise FormatError(f"trace reader: unknown option(s) {', '.join(sorted(unknown))}")
    trace = read_trace(target)
    if "reader" in options:
        trace = trace.for_reader(options["reader"])
        if not trace:
            raise FormatError(f"trace {target!r} has no exchange of reader {options['reader']!r}")
    return TraceReplayReader(trace, name=f"trace:{target}")
