"""Serve a virtual card to pcscd through the vsmartcard vpcd driver.

The card is a TCP client of vpcd (default 127.0.0.1:35963, reader "Virtual
PCD 00 00"): connecting inserts it, closing removes it. Framing both ways:
a 2-byte big-endian length, then that many bytes; a 1-byte message is a
control (00 power off, 01 power on, 02 reset, 04 get ATR), anything else an
APDU (reference readers.md, pcsc-stack.md).

Latency: vpcd writes length and payload in two sends; without TCP_NODELAY,
length and payload in one send, and TCP_QUICKACK before every receive each
APDU pays the 40 ms delayed-ACK stall.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterable

from cardlib.errors import CardRemovedError, ProtocolError
from cardlib.readers.base import Card

DEFAULT_PORT = 35963
POWER_OFF, POWER_ON, RESET, GET_ATR = 0x00, 0x01, 0x02, 0x04
MAX_MESSAGE = 0xFFFF


def _quickack(sock: socket.socket) -> None:
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes (one recv may return part of a message); b'' on EOF."""
    buf = bytearray()
    while len(buf) < n:
        _quickack(sock)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return b""
        buf += chunk
    return bytes(buf)


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_MESSAGE:
        raise ProtocolError(f"vpcd message of {len(payload)} bytes exceeds {MAX_MESSAGE}")
    return struct.pack(">H", len(payload)) + payload


def read_message(sock: socket.socket) -> bytes | None:
    """One vpcd message, or None when the peer closed."""
    head = recv_exact(sock, 2)
    if len(head) < 2:
        return None
    (size,) = struct.unpack(">H", head)
    if size == 0:
        return b""
    body = recv_exact(sock, size)
    if len(body) < size:
        return None
    return body


class VpcdBridge:
    """One card on one vpcd port; reconnects while pcscd is down or restarting."""

    def __init__(self, card: Card, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 retry: float = 0.2) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.retry = retry
        self.inserted = threading.Event()
        self.inserted.set()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.apdus = 0
        self.connections = 0

    # --- control -----------------------------------------------------------------------

    def start(self) -> VpcdBridge:
        self._thread = threading.Thread(target=self.serve_forever, name=f"vpcd:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def remove(self) -> None:
        """Take the card away (closes the socket: pcscd sees the removal)."""
        self.inserted.clear()
        self._close()

    def insert(self) -> None:
        self.inserted.set()

    def toggle(self) -> None:
        if self.inserted.is_set():
            self.remove()
        else:
            self.insert()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        self.connected.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # --- serving -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            if not self.inserted.wait(0.1):
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                self._stop.wait(self.retry)  # pcscd not (yet) there
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self.connections += 1
            self.connected.set()
            try:
                self._session(sock)
            except OSError:
                pass
            finally:
                if self._sock is sock:
                    self._close()
            if not self._stop.is_set():
                self._stop.wait(self.retry)

    def _session(self, sock: socket.socket) -> None:
        while not self._stop.is_set() and self.inserted.is_set():
            message = read_message(sock)
            if message is None:
                return  # pcscd went away: reconnect
            if len(message) == 1:
                control = message[0]
                if control == GET_ATR:
                    sock.sendall(frame(self.card.atr))
                elif control == RESET:
                    self.card.reset()
                elif control == POWER_ON:
                    self.card.reset()
                continue  # power off: nothing to answer
            if not message:
                continue
            try:
                answer = self.card.process(message)
            except CardRemovedError:
                self.inserted.clear()  # torn away: gone until insert()
                return
            self.apdus += 1
            sock.sendall(frame(answer))


def serve_until_stopped(bridge: VpcdBridge, commands: Iterable[str] | None = None) -> None:
    """Run a bridge in the foreground; stdin lines ``insert``, ``remove``, ``quit``."""
    import signal  # noqa: PLC0415
    import sys  # noqa: PLC0415

    bridge.start()
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGUSR1, lambda *_: bridge.toggle())
    stream = commands if commands is not None else sys.stdin
    try:
        for line in stream:
            word = line.strip().lower()
            if word == "insert":
                bridge.insert()
            elif word == "remove":
                bridge.remove()
            elif word in ("quit", "exit"):
                break
        else:
            while True:  # stdin closed: serve until interrupted
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
