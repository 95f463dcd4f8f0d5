"""PC/SC readers through pyscard's low-level ``smartcard.scard`` API (PC/SC
Workgroup spec part 5, as implemented by pcsc-lite).

``pcsc`` (first reader), ``pcsc:N`` (0-based, as ``opensc-tool -r``),
``pcsc:NAME`` (substring), ``?share=exclusive`` (SHARED by default). PC/SC
return codes become our typed errors, each naming the reader and the code.
pyscard is imported on first use, so the rest of the toolkit runs without it.
A pcsclite context serves one thread at a time: a reader keeps its own, and
the event watcher (:mod:`cardlib.readers.pcsc_events`) another.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cardlib import fastpath
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    NoCardError,
    ReaderTimeoutError,
    ReaderUnavailableError,
    SharingViolationError,
    TransportError,
)
from cardlib.readers.base import Disposition, Reader, ReaderEvent
from cardlib.readers.registry import option_float

INSTALL_HINT = ("PC/SC support needs pyscard: pip install 'yikatong[pcsc]' "
                "(and Debian: apt install pcscd libpcsclite-dev)")
#: The pseudo-reader whose state changes when readers come and go.
PNP = "\\\\?PnP?\\Notification"

# PC/SC return codes (pcsc-lite's pcsclite.h; the same values on Windows).
SCARD_E_CANCELLED = 0x80100002
SCARD_E_INVALID_HANDLE = 0x80100003
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

_NAMES = {
    SCARD_E_CANCELLED: "SCARD_E_CANCELLED", SCARD_E_INVALID_HANDLE: "SCARD_E_INVALID_HANDLE",
    SCARD_E_UNKNOWN_READER: "SCARD_E_UNKNOWN_READER", SCARD_E_TIMEOUT: "SCARD_E_TIMEOUT",
    SCARD_E_SHARING_VIOLATION: "SCARD_E_SHARING_VIOLATION", SCARD_E_NO_SMARTCARD: "SCARD_E_NO_SMARTCARD",
    SCARD_E_NOT_TRANSACTED: "SCARD_E_NOT_TRANSACTED", SCARD_E_READER_UNAVAILABLE: "SCARD_E_READER_UNAVAILABLE",
    SCARD_E_NO_SERVICE: "SCARD_E_NO_SERVICE", SCARD_E_SERVICE_STOPPED: "SCARD_E_SERVICE_STOPPED",
    SCARD_E_NO_READERS_AVAILABLE: "SCARD_E_NO_READERS_AVAILABLE",
    SCARD_W_UNRESPONSIVE_CARD: "SCARD_W_UNRESPONSIVE_CARD", SCARD_W_UNPOWERED_CARD: "SCARD_W_UNPOWERED_CARD",
    SCARD_W_RESET_CARD: "SCARD_W_RESET_CARD", SCARD_W_REMOVED_CARD: "SCARD_W_REMOVED_CARD",
}
#: The service is gone (pcscd stopped or restarted): a fresh context may help.
SERVICE_LOST = frozenset({SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_E_INVALID_HANDLE})
_UNAVAILABLE = SERVICE_LOST | {SCARD_E_NO_READERS_AVAILABLE, SCARD_E_READER_UNAVAILABLE, SCARD_E_UNKNOWN_READER}
# 0x80100016 is what a transmit gets between the card leaving and pcscd's next poll.
_REMOVED = frozenset({SCARD_W_REMOVED_CARD, SCARD_E_NOT_TRANSACTED, SCARD_W_UNRESPONSIVE_CARD,
                      SCARD_W_UNPOWERED_CARD})


def scard_module() -> ModuleType:
    """pyscard's ``smartcard.scard``, or one clear ReaderUnavailableError line."""
    try:
        from smartcard import scard
    except ImportError:
        raise ReaderUnavailableError(INSTALL_HINT) from None
    module: ModuleType = scard
    return module


def code_of(hresult: int) -> int:
    """The unsigned 32-bit PC/SC code (pyscard may hand it back signed)."""
    return hresult & 0xFFFFFFFF


class PcscServiceError(ReaderUnavailableError):
    """The PC/SC service went away (pcscd stopped or restarted): a fresh context may help."""


def pcsc_error(hresult: int, where: str) -> TransportError:
    """The typed error for a PC/SC return code; the message names ``where`` and the code."""
    code = code_of(hresult)
    text = f"{where}: {_NAMES.get(code, 'PC/SC error')} (0x{code:08X})"
    if code in SERVICE_LOST:
        return PcscServiceError(text + ("" if code == SCARD_E_INVALID_HANDLE else " (is pcscd running?)"))
    if code in _UNAVAILABLE:
        return ReaderUnavailableError(text)
    if code in _REMOVED:
        return CardRemovedError(text)
    if code == SCARD_E_NO_SMARTCARD:
        return NoCardError(text)
    if code == SCARD_E_SHARING_VIOLATION:
        return SharingViolationError(text)
    if code == SCARD_E_TIMEOUT:
        return ReaderTimeoutError(text)
    return TransportError(text)


def check(hresult: int, where: str) -> None:
    """Raise the typed error unless ``hresult`` is SCARD_S_SUCCESS."""
    if hresult != 0:
        raise pcsc_error(hresult, where)


class Context:
    """One PC/SC context; use it from one thread at a time (``cancel`` excepted)."""

    def __init__(self) -> None:
        self.scard = scard_module()
        self.transmit = fastpath.scard_transmit(self.scard)
        hresult, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        check(hresult, "establishing a PC/SC context")

    def readers(self) -> list[str]:
        """Reader names; empty when pcscd has none (not an error)."""
        hresult, names = self.scard.SCardListReaders(self.handle, [])
        if code_of(hresult) == SCARD_E_NO_READERS_AVAILABLE:
            return []
        check(hresult, "listing PC/SC readers")
        return list(names)

    def status_change(self, timeout_ms: int, states: list[tuple[str, int]]) -> tuple[int, list[tuple[str, int, bytes]]]:
        """SCardGetStatusChange: (code, [(reader, event state, ATR)])."""
        hresult, out = self.scard.SCardGetStatusChange(self.handle, timeout_ms, states)
        return code_of(hresult), [(name, int(state), bytes(atr)) for name, state, atr in out]

    def cancel(self) -> None:
        """Wake a status-change wait blocked in another thread (SCardCancel)."""
        with contextlib.suppress(Exception):
            self.scard.SCardCancel(self.handle)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.scard.SCardReleaseContext(self.handle)


@dataclass(frozen=True)
class ReaderInfo:
    """One PC/SC reader as ``ykt readers`` shows it."""

    name: str
    card_present: bool
    atr: bytes


def _status(ctx: Context, name: str) -> tuple[bool, bytes]:
    """Presence and ATR now: a zero-timeout status change from UNAWARE returns at once."""
    code, states = ctx.status_change(0, [(name, ctx.scard.SCARD_STATE_UNAWARE)])
    check(code, f"status of PC/SC reader {name!r}")
    _, state, atr = states[0]
    present = bool(state & ctx.scard.SCARD_STATE_PRESENT)
    return present, atr if present else b""


def list_pcsc_readers() -> list[ReaderInfo]:
    """Every PC/SC reader with card presence and ATR (ReaderUnavailableError without pcscd)."""
    ctx = Context()
    try:
        return [ReaderInfo(name, *_status(ctx, name)) for name in ctx.readers()]
    finally:
        ctx.close()


def resolve(ctx: Context, target: str) -> str:
    """The reader a URI target names: empty = first, digits = 0-based index, else a substring."""
    names = ctx.readers()
    if not names:
        raise ReaderUnavailableError("no PC/SC reader found (is pcscd running and the reader plugged in?)")
    if not target:
        return names[0]
    if target.isdigit():
        i = int(target)
        if i >= len(names):
            raise ReaderUnavailableError(f"pcsc:{i}: only {len(names)} reader(s): {', '.join(names)}")
        return names[i]
    matches = [n for n in names if target.lower() in n.lower()]
    if not matches:
        raise ReaderUnavailableError(f"no PC/SC reader matches {target!r} (have: {', '.join(names)})")
    return matches[0]


class PcscReader(Reader):
    """A PC/SC slot; SHARED by default, T=0 or T=1 as the card's ATR offers.

    PC/SC has no per-command timeout: ``transmit``'s ``timeout`` is accepted
    for the common interface, the driver's own timeouts apply.
    """

    extended_length = True
    max_command_data = 65535

    def __init__(self, target: str = "", share: str = "shared", timeout: float | None = None) -> None:
        if share not in ("shared", "exclusive"):
            raise FormatError(f"pcsc share must be shared or exclusive, got {share!r}")
        self.ctx = Context()
        try:
            self.name = resolve(self.ctx, target)
        except BaseException:
            self.ctx.close()
            raise
        s = self.ctx.scard
        self._share = s.SCARD_SHARE_EXCLUSIVE if share == "exclusive" else s.SCARD_SHARE_SHARED
        self._protocols = s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1
        self._card: Any = None
        self._protocol = 0
        self._send_pci: Any = s.SCARD_PCI_T0
        self._atr = b""
        self.timeout = timeout
        self._lock = threading.RLock()

    # --- context ----------------------------------------------------------------------

    def _with_context(self, call: Callable[[], Any]) -> Any:
        """Run ``call``; when pcscd was restarted under us, once more on a fresh context."""
        try:
            return call()
        except PcscServiceError:
            self._renew_context()
            return call()

    def _renew_context(self) -> None:
        fresh = Context()  # raises when pcscd is still away
        old, self.ctx = self.ctx, fresh
        old.close()
        self._card = None  # handles die with their context

    # --- card -------------------------------------------------------------------------

    def connect(self) -> bytes:
        with self._lock:
            if self._card is not None:
                self.disconnect()
            return bytes(self._with_context(self._connect))

    def _connect(self) -> bytes:
        s = self.ctx.scard
        hresult, card, protocol = s.SCardConnect(self.ctx.handle, self.name, self._share, self._protocols)
        check(hresult, f"connecting to the card in {self.name!r}")
        self._card = card
        self._set_protocol(protocol)
        self._atr = self._read_atr()
        return self._atr

    def _read_atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = self.ctx.scard.SCardStatus(self._card)
        check(hresult, f"status of {self.name!r}")
        return bytes(atr)

    @property
    def atr(self) -> bytes:
        if self._card is None:
            raise NoCardError(f"no card connected in {self.name!r}")
        return self._atr

    @property
    def protocol(self) -> str:
        """``T=0`` or ``T=1`` as negotiated (empty when not connected)."""
        if self._card is None:
            return ""
        return "T=1" if self._protocol == self.ctx.scard.SCARD_PROTOCOL_T1 else "T=0"

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        # Without the lock: pcsc-lite serialises the calls of one context, and the
        # handle is read once (a disconnect in another thread makes this call fail, typed).
        card = self._card
        if card is None:
            raise NoCardError(f"no card connected in {self.name!r}")
        hresult, response = self.ctx.transmit(card, self._send_pci, list(apdu))
        if hresult == 0 and len(response) >= 2:
            return bytes(response)
        return self._transmit_failed(apdu, hresult, response)

    def _transmit_failed(self, apdu: bytes, hresult: int, response: list[int]) -> bytes:
        with self._lock:
            if hresult != 0 and code_of(hresult) == SCARD_W_RESET_CARD:  # another application reset it
                self._reconnect()
                hresult, response = self.ctx.transmit(self._card, self._send_pci, list(apdu))
            if hresult != 0:
                err = pcsc_error(hresult, f"transmit to {self.name!r}")
                if isinstance(err, CardRemovedError):
                    self._drop_handle()
                raise err
            if len(response) < 2:  # no status word: vpcd's sign of a card torn away mid-exchange
                raise CardRemovedError(f"transmit to {self.name!r}: the card answered no status word "
                                       f"({len(response)} bytes): torn away?")
            return bytes(response)

    def _set_protocol(self, protocol: int) -> None:
        s = self.ctx.scard
        self._protocol = protocol
        self.t0 = protocol == s.SCARD_PROTOCOL_T0
        self._send_pci = s.SCARD_PCI_T1 if protocol == s.SCARD_PROTOCOL_T1 else s.SCARD_PCI_T0

    def _drop_handle(self) -> None:
        """The card left: release the dead handle so pcscd forgets it."""
        card, self._card = self._card, None
        if card is not None:
            with contextlib.suppress(Exception):
                self.ctx.scard.SCardDisconnect(card, self.ctx.scard.SCARD_LEAVE_CARD)

    def _reconnect(self) -> None:
        s = self.ctx.scard
        hresult, protocol = s.SCardReconnect(self._card, self._share, self._protocols, s.SCARD_LEAVE_CARD)
        if hresult != 0:
            err = pcsc_error(hresult, f"reconnecting in {self.name!r}")
            if isinstance(err, CardRemovedError):
                self._drop_handle()
            raise err
        self._set_protocol(protocol)
        self._atr = self._read_atr()

    # --- presence ---------------------------------------------------------------------

    def is_card_present(self) -> bool:
        present, _ = self._with_context(lambda: _status(self.ctx, self.name))
        return bool(present)

    def _wait(self, want_present: bool, timeout: float | None) -> bool:
        """Block in SCardGetStatusChange (real events, no polling) until the state is wanted."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self.ctx.scard.SCARD_STATE_UNAWARE
        while True:
            remaining_ms = 1000 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            # slices of at most 1 s keep a Ctrl-C in the main thread prompt
            code, states = self.ctx.status_change(min(remaining_ms, 1000), [(self.name, state)])
            if code in SERVICE_LOST:
                self._renew_context()
                state = self.ctx.scard.SCARD_STATE_UNAWARE
                continue
            if code != SCARD_E_TIMEOUT:
                check(code, f"waiting on {self.name!r}")
                _, event_state, _ = states[0]
                if bool(event_state & self.ctx.scard.SCARD_STATE_PRESENT) == want_present:
                    return True
                state = event_state & ~self.ctx.scard.SCARD_STATE_CHANGED
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def wait_for_card(self, timeout: float | None = None) -> bool:
        return self._wait(True, timeout)

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        return self._wait(False, timeout)

    # --- transactions and release -----------------------------------------------------

    def begin_transaction(self) -> None:
        with self._lock:
            if self._card is None:
                raise NoCardError(f"no card connected in {self.name!r}")
            hresult = self.ctx.scard.SCardBeginTransaction(self._card)
            if code_of(hresult) == SCARD_W_RESET_CARD:
                self._reconnect()
                hresult = self.ctx.scard.SCardBeginTransaction(self._card)
            if hresult != 0:
                err = pcsc_error(hresult, f"locking {self.name!r}")
                if isinstance(err, CardRemovedError):
                    self._drop_handle()
                raise err

    def end_transaction(self) -> None:
        with self._lock:
            if self._card is not None:  # ending after a removal is not an error
                self.ctx.scard.SCardEndTransaction(self._card, self.ctx.scard.SCARD_LEAVE_CARD)

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        s = self.ctx.scard
        with self._lock:
            if self._card is None:
                return
            mode = {Disposition.LEAVE: s.SCARD_LEAVE_CARD, Disposition.RESET: s.SCARD_RESET_CARD,
                    Disposition.UNPOWER: s.SCARD_UNPOWER_CARD}[disposition]
            card, self._card = self._card, None
            hresult = s.SCardDisconnect(card, mode)
            if code_of(hresult) not in (0, *_REMOVED, SCARD_E_INVALID_HANDLE, SCARD_E_NO_SMARTCARD):
                check(hresult, f"disconnecting from {self.name!r}")

    def close(self) -> None:
        with contextlib.suppress(TransportError):
            self.disconnect()
        self.ctx.close()

    def events(self, stop: Callable[[], bool] | None = None) -> Iterator[ReaderEvent]:
        """Card events of this slot from SCardGetStatusChange, on a context of their own."""
        from cardlib.readers.pcsc_events import watch_pcsc

        return watch_pcsc(stop, only=self.name)


def open_pcsc_reader(target: str, options: dict[str, str]) -> PcscReader:
    """Backend of ``pcsc``, ``pcsc:N``, ``pcsc:NAME`` with ``?share=shared|exclusive``."""
    unknown = set(options) - {"share", "timeout"}
    if unknown:
        raise FormatError(f"pcsc reader: unknown option(s) {', '.join(sorted(unknown))}")
    timeout = option_float(options, "timeout", 0.0) or None
    return PcscReader(target, options.get("share", "shared").lower(), timeout)
