"""Serve a virtual card to pcscd through the vsmartcard vpcd driver.

The card is a TCP client of vpcd (default 127.0.0.1:35963, reader "Virtual
PCD 00 00"): connecting inserts it, closing removes it. Framing both ways:
a 2-byte big-endian length, then that many bytes; a 1-byte message is a
control (00 power off, 01 power on, 02 reset, 04 get ATR), anything else an
APDU (vsmartcard's vpcd protocol, frankmorgner/vsmartcard virtualsmartcard/src/vpcd).

Latency: vpcd writes length and payload in two sends; without TCP_NODELAY,
length and payload in one send, and TCP_QUICKACK before every receive each
APDU pays the 40 ms delayed-ACK stall.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

from cardlib.errors import CardRemovedError, ProtocolError
from cardlib.readers.base import Card

DEFAULT_PORT = 35963
POWER_OFF, POWER_ON, RESET, GET_ATR = 0x00, 0x01, 0x02, 0x04
MAX_MESSAGE = 0xFFFF
#: What the card answers when its response cannot be carried (or the card model failed).
NO_PRECISE_DIAGNOSIS = b"\x6F\x00"

log = logging.getLogger(__name__)


def reader_name(port: int) -> str:
    """The PC/SC reader name vpcd gives the slot on ``port`` (35963 → "Virtual PCD 00 00")."""
    return f"Virtual PCD 00 {port - DEFAULT_PORT:02d}" if DEFAULT_PORT <= port < DEFAULT_PORT + 100 else f"vpcd port {port}"


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
    """Length (2 bytes, big-endian) and payload, to go out in one send."""
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
        self._lock = threading.RLock()  # re-entrant: remove() may run in a signal handler
        self._removals = 0  # bumped by remove(): a link opened before it is not used
        self._thread: threading.Thread | None = None
        self.apdus = 0
        self.connections = 0
        #: The last control bytes vpcd sent other than the ATR poll (power off/on, reset).
        self.controls: collections.deque[int] = collections.deque(maxlen=64)

    # --- control -----------------------------------------------------------------------

    @property
    def reader_name(self) -> str:
        """The PC/SC reader this bridge's card appears in."""
        return reader_name(self.port)

    def start(self) -> VpcdBridge:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name=f"vpcd:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the card leaves the reader."""
        self._stop.set()
        with self._lock:
            self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def remove(self) -> None:
        """Take the card away (closes the socket: pcscd sees the removal)."""
        with self._lock:
            self._removals += 1
            self.inserted.clear()
            self._close()

    def insert(self) -> None:
        """Put the card back (connects again)."""
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
        """Connect (= insert), serve, and connect again after pcscd restarts, until stop()."""
        delay = self.retry
        while not self._stop.is_set():
            if not self.inserted.wait(0.1):
                continue
            removals = self._removals
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                self._stop.wait(delay)  # pcscd not (yet) there: short backoff
                delay = min(delay * 2, 1.0)
                continue
            delay = self.retry
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if removals != self._removals or self._stop.is_set():
                    sock.close()  # removed (or stopped) while connecting: that link never was
                    continue
                self._sock = sock
                self.connections += 1
                self.connected.set()
            try:
                self._session(sock)
            except OSError:
                pass  # the link broke: reconnect
            except Exception:  # a broken card model: log, drop the link, try again
                log.exception("vpcd bridge on port %d: session failed", self.port)
            finally:
                with self._lock:
                    if self._sock is sock:
                        self._close()
                    else:
                        sock.close()
            if not self._stop.is_set():
                self._stop.wait(self.retry)

    def _session(self, sock: socket.socket) -> None:
        while not self._stop.is_set() and self.inserted.is_set():
            message = read_message(sock)
            if message is None:
                return  # pcscd went away (or remove() closed us): reconnect when inserted
            if not message:
                continue
            try:
                answer = self._answer(message)
            except CardRemovedError:
                self.inserted.clear()  # torn away: gone until insert()
                return
            if answer is not None:
                sock.sendall(frame(answer))

    def _answer(self, message: bytes) -> bytes | None:
        """The reply to one vpcd message (None: controls other than GET ATR get none)."""
        if len(message) == 1:
            control = message[0]
            if control == GET_ATR:  # pcscd's presence poll: answered whatever the power state
                return bytes(self.card.atr)
            self.controls.append(control)
            if control in (POWER_ON, RESET):
                self.card.reset()
            return None  # power off and unknown controls: nothing to answer
        try:
            answer = self.card.process(message)
        except CardRemovedError:
            raise
        except Exception:  # a broken card model must not take the bridge down
            log.exception("card failed on an APDU of %d bytes", len(message))
            return NO_PRECISE_DIAGNOSIS
        self.apdus += 1
        if len(answer) > MAX_MESSAGE:
            log.error("response of %d bytes exceeds vpcd's %d: answering 6F00", len(answer), MAX_MESSAGE)
            return NO_PRECISE_DIAGNOSIS
        return answer


def serve_until_stopped(bridge: VpcdBridge, commands: Iterable[str] | None = None) -> None:
    """Run a bridge in the foreground until ``quit`` or Ctrl-C.

    ``commands`` (stdin by default) gives lines ``insert``, ``remove``, ``quit``;
    SIGUSR1 toggles insert/remove (handy from a script: ``kill -USR1 PID``).
    """
    bridge.start()
    control_loop(commands, bridge.insert, bridge.remove, bridge.toggle, bridge.stop)


def control_loop(commands: Iterable[str] | None, insert: Callable[[], None], remove: Callable[[], None],
                 toggle: Callable[[], None], stop: Callable[[], None]) -> None:
    """The foreground control of a served card (shared by the vpcd and PN532 bridges)."""
    import signal
    import sys

    previous = None
    with contextlib.suppress(ValueError):  # signals only in the main thread
        previous = signal.signal(signal.SIGUSR1, lambda *_: toggle())
    stream = commands if commands is not None else sys.stdin
    try:
        for line in stream:
            word = line.strip().lower()
            if word == "insert":
                insert()
            elif word == "remove":
                remove()
            elif word in ("quit", "exit"):
                break
            elif word:
                log.warning("unknown command %r (insert, remove, quit)", word)
        else:
            while True:  # input closed: serve until interrupted
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        if previous is not None:
            signal.signal(signal.SIGUSR1, previous)
