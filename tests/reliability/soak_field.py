"""A card field across a process boundary, for the soak (tests/reliability/test_soak.py).

The cards and each terminal's PSAM live in the test process (in HostedReaders, so a SIGKILL of the
terminal cannot take them with it); the terminal process reaches them through ``FieldReader`` over a
UNIX socket: the same APDU bytes, one request and one answer per exchange. pcscd + vpcd would carry
them too, but its ports are machine-wide and one card per reader: 100,000 taps would hold the
machine's PC/SC lock for the whole soak (the crash suite runs a terminal behind vpcd already).

Request: slot (``c`` card, ``s`` PSAM), operation, 4-byte length, payload. Answer: status, 4-byte
length, payload. Operations: ``w`` wait for a card (answer ``C`` with the tap's time in ISO 8601, or
``S``: stop), ``a`` connect (``A`` ATR), ``t`` transmit (``R`` answer), ``p`` present (``R`` 0/1),
``d`` disconnect; ``X`` with a message: the card left the field (a tear).
"""

from __future__ import annotations

import socket
import struct
import threading
from datetime import datetime

from cardlib.atr import speaks_t0
from cardlib.clock import Clock
from cardlib.errors import CardRemovedError, NoCardError, ReaderUnavailableError
from cardlib.readers.base import Disposition, Reader

_HEAD = struct.Struct(">ccI")
_ANSWER = struct.Struct(">cI")


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the other side closed the field")
        data += chunk
    return bytes(data)


def read_request(sock: socket.socket) -> tuple[bytes, bytes, bytes]:
    slot, op, size = _HEAD.unpack(recv_exactly(sock, _HEAD.size))
    return slot, op, recv_exactly(sock, size) if size else b""


def answer(sock: socket.socket, status: bytes, payload: bytes = b"") -> None:
    sock.sendall(_ANSWER.pack(status, len(payload)) + payload)


class FieldReader(Reader):
    """One slot of the field in the test process. ``w`` sets ``clock`` to the tap's time; a stop
    sets ``stop``, which ends the terminal loop."""

    poll_interval = 0.0

    def __init__(self, sock: socket.socket, slot: bytes, clock: Clock, stop: threading.Event | None = None) -> None:
        self.name = f"field:{slot.decode()}"
        self._sock, self._slot, self._clock, self._stop = sock, slot, clock, stop
        self._atr = b""

    def _ask(self, op: bytes, payload: bytes = b"") -> tuple[bytes, bytes]:
        try:
            self._sock.sendall(_HEAD.pack(self._slot, op, len(payload)) + payload)
            status, size = _ANSWER.unpack(recv_exactly(self._sock, _ANSWER.size))
            data = recv_exactly(self._sock, size) if size else b""
        except OSError as exc:
            raise ReaderUnavailableError(f"{self.name}: {exc}") from None
        if status == b"X":
            self._atr = b""
            raise CardRemovedError(data.decode())
        return status, data

    def wait_for_card(self, timeout: float | None = None) -> bool:
        status, data = self._ask(b"w")
        if status == b"S":
            if self._stop is not None:
                self._stop.set()
            return False
        self._clock.set(datetime.fromisoformat(data.decode()))
        return True

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        return not self.is_card_present()

    def connect(self) -> bytes:
        self._atr = self._ask(b"a")[1]
        self.t0 = speaks_t0(self._atr)  # the protocol a reader would run with it (the PSAM's is T=0)
        return self._atr

    @property
    def atr(self) -> bytes:
        if not self._atr:
            raise NoCardError(f"no card connected in {self.name}")
        return self._atr

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        return self._ask(b"t", bytes(apdu))[1]

    def is_card_present(self) -> bool:
        return self._ask(b"p")[1] == b"1"

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        self._atr = b""
        self._ask(b"d")


def hello(sock: socket.socket) -> bool:
    """A new terminal process, its imports done, waits here until the test lets it start (True)
    or sends it home (False)."""
    sock.sendall(_HEAD.pack(b"s", b"h", 0))
    status, size = _ANSWER.unpack(recv_exactly(sock, _ANSWER.size))
    recv_exactly(sock, size)
    return status == b"G"
