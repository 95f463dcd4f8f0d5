"""PC/SC readers through pyscard's low-level ``smartcard.scard`` API.

``pcsc`` (first reader), ``pcsc:N`` (0-based, as ``opensc-tool -r``),
``pcsc:NAME`` (substring), ``?share=exclusive`` (SHARED by default). PC/SC
return codes become our typed errors. Card events use SCardGetStatusChange
on a context of their own (one pcsclite context serves one thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cardlib.errors import (
    CardRemovedError,
    FormatError,
    NoCardError,
    ReaderTimeoutError,
    ReaderUnavailableError,
    SharingViolationError,
    TransportError,
)
from cardlib.readers.base import Disposition, EventKind, Reader, ReaderEvent

INSTALL_HINT = ("PC/SC support needs pyscard: pip install 'yikatong[pcsc]' "
                "(Debian: apt install pcscd libpcsclite-dev)")
PNP = "\\\\?PnP?\\Notification"


def _scard() -> ModuleType:
    try:
        from smartcard import scard  # noqa: PLC0415
    except ImportError:
        raise ReaderUnavailableError(INSTALL_HINT) from None
    module: ModuleType = scard
    return module


_NAMES = {
    0x8010001D: "SCARD_E_NO_SERVICE", 0x8010002E: "SCARD_E_NO_READERS_AVAILABLE",
    0x80100069: "SCARD_W_REMOVED_CARD", 0x8010000C: "SCARD_E_NO_SMARTCARD", 0x80100016: "SCARD_E_NOT_TRANSACTED",
    0x8010000B: "SCARD_E_SHARING_VIOLATION", 0x8010000A: "SCARD_E_TIMEOUT", 0x80100017: "SCARD_E_READER_UNAVAILABLE",
    0x80100009: "SCARD_E_UNKNOWN_READER", 0x80100068: "SCARD_W_RESET_CARD", 0x80100066: "SCARD_W_UNRESPONSIVE_CARD",
    0x80100067: "SCARD_W_UNPOWERED_CARD", 0x80100002: "SCARD_E_CANCELLED", 0x80100003: "SCARD_E_INVALID_HANDLE",
    0x8010001E: "SCARD_E_SERVICE_STOPPED",
}


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def pcsc_error(hresult: int, where: str) -> TransportError:
    """The typed error for a PC/SC return code."""
    code = _code(hresult)
    text = f"{where}: {_NAMES.get(code, 'PC/SC error')} (0x{code:08X})"
    if code in (0x8010001D, 0x8010001E, 0x8010002E, 0x80100017, 0x80100009, 0x80100003):
        return ReaderUnavailableError(text)
    if code in (0x80100069, 0x80100016, 0x80100066, 0x80100067):
        return CardRemovedError(text)
    if code == 0x8010000C:
        return NoCardError(text)
    if code == 0x8010000B:
        return SharingViolationError(text)
    if code == 0x8010000A:
        return ReaderTimeoutError(text)
    return TransportError(text)


def _check(hresult: int, where: str) -> None:
    if hresult != 0:
        raise pcsc_error(hresult, where)


class Context:
    """One PC/SC context (per thread of use)."""

    def __init__(self) -> None:
        self.scard = _scard()
        hresult, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        _check(hresult, "establishing a PC/SC context")

    def readers(self) -> list[str]:
        hresult, names = self.scard.SCardListReaders(self.handle, [])
        if _code(hresult) in (0x8010002E,):
            return []
        _check(hresult, "listing PC/SC readers")
        return list(names)

    def close(self) -> None:
        self.scard.SCardReleaseContext(self.handle)


@dataclass(frozen=True)
class ReaderInfo:
    name: str
    card_present: bool
    atr: bytes


def _status(ctx: Context, name: str) -> tuple[bool, bytes]:
    s = ctx.scard
    hresult, states = s.SCardGetStatusChange(ctx.handle, 0, [(name, s.SCARD_STATE_UNAWARE)])
    _check(hresult, f"status of {name!r}")
    _, state, atr = states[0]
    return bool(state & s.SCARD_STATE_PRESENT), bytes(atr)


def list_pcsc_readers() -> list[ReaderInfo]:
    ctx = Context()
    try:
        out = []
        for name in ctx.readers():
            present, atr = _status(ctx, name)
            out.append(ReaderInfo(name, present, atr if present else b""))
        return out
    finally:
        ctx.close()


def resolve(ctx: Context, target: str) -> str:
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
    """A PC/SC slot; SHARED by default, protocol as the card offers."""

    extended_length = True
    max_command_data = 65535

    def __init__(self, target: str = "", share: str = "shared", timeout: float | None = None) -> None:
        if share not in ("shared", "exclusive"):
            raise FormatError(f"pcsc share must be shared or exclusive, got {share!r}")
        self.ctx = Context()
        self.name = resolve(self.ctx, target)
        s = self.ctx.scard
        self._share = s.SCARD_SHARE_EXCLUSIVE if share == "exclusive" else s.SCARD_SHARE_SHARED
        self._card: Any = None
        self._protocol = 0
        self._atr = b""
        self.timeout = timeout
        self._lock = threading.RLock()

    def connect(self) -> bytes:
        s = self.ctx.scard
        with self._lock:
            if self._card is not None:
                self.disconnect()
            hresult, card, protocol = s.SCardConnect(self.ctx.handle, self.name, self._share,
                                                     s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1)
            _check(hresult, f"connecting to the card in {self.name!r}")
            self._card, self._protocol = card, protocol
            self._atr = self._read_atr()
            return self._atr

    def _read_atr(self) -> bytes:
        s = self.ctx.scard
        hresult, _reader, _state, _protocol, atr = s.SCardStatus(self._card)
        _check(hresult, f"status of {self.name!r}")
        return bytes(atr)

    @property
    def atr(self) -> bytes:
        if self._card is None:
            raise NoCardError(f"no card connected in {self.name!r}")
        return self._atr

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        s = self.ctx.scard
        if self._card is None:
            raise NoCardError(f"no card connected in {self.name!r}")
        pci = s.SCARD_PCI_T1 if self._protocol == s.SCARD_PROTOCOL_T1 else s.SCARD_PCI_T0
        hresult, response = s.SCardTransmit(self._card, pci, list(apdu))
        if _code(hresult) == 0x80100068:  # reset by another application: reconnect once
            self._reconnect()
            hresult, response = s.SCardTransmit(self._card, pci, list(apdu))
        if hresult != 0:
            err = pcsc_error(hresult, f"transmit to {self.name!r}")
            if isinstance(err, CardRemovedError):
                self._card = None
            raise err
        return bytes(response)

    def _reconnect(self) -> None:
        s = self.ctx.scard
        hresult, protocol = s.SCardReconnect(self._card, self._share, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1,
                                             s.SCARD_LEAVE_CARD)
        _check(hresult, f"reconnecting in {self.name!r}")
        self._protocol = protocol

    def is_card_present(self) -> bool:
        present, _ = _status(self.ctx, self.name)
        return present

    def _wait(self, want_present: bool, timeout: float | None) -> bool:
        s = self.ctx.scard
        deadline = None if timeout is None else time.monotonic() + timeout
        state = s.SCARD_STATE_UNAWARE
        while True:
            remaining = 1000 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            hresult, states = s.SCardGetStatusChange(self.ctx.handle, min(remaining, 1000), [(self.name, state)])
            if _code(hresult) == 0x8010000A:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                continue
            _check(hresult, f"waiting on {self.name!r}")
            _, event_state, _ = states[0]
            if bool(event_state & s.SCARD_STATE_PRESENT) == want_present:
                return True
            state = event_state & ~s.SCARD_STATE_CHANGED
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def wait_for_card(self, timeout: float | None = None) -> bool:
        return self._wait(True, timeout)

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        return self._wait(False, timeout)

    def begin_transaction(self) -> None:
        if self._card is not None:
            _check(self.ctx.scard.SCardBeginTransaction(self._card), f"locking {self.name!r}")

    def end_transaction(self) -> None:
        if self._card is not None:
            self.ctx.scard.SCardEndTransaction(self._card, self.ctx.scard.SCARD_LEAVE_CARD)

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        s = self.ctx.scard
        with self._lock:
            if self._card is None:
                return
            mode = {Disposition.LEAVE: s.SCARD_LEAVE_CARD, Disposition.RESET: s.SCARD_RESET_CARD,
                    Disposition.UNPOWER: s.SCARD_UNPOWER_CARD}[disposition]
            card, self._card = self._card, None
            s.SCardDisconnect(card, mode)

    def close(self) -> None:
        try:
            self.disconnect()
        except TransportError:
            pass
        self.ctx.close()

    def events(self, stop: Callable[[], bool] | None = None) -> Iterator[ReaderEvent]:
        return watch_pcsc(stop, only=self.name)


def watch_pcsc(stop: Callable[[], bool] | None = None, only: str | None = None,
               poll_ms: int = 500) -> Iterator[ReaderEvent]:
    """Reader and card events from SCardGetStatusChange (with the PnP reader), on a
    context of its own; survives pcscd restarts and the last reader vanishing."""
    s = _scard()
    known: dict[str, int] = {}
    ctx: Context | None = None
    available = True
    backoff = 0.2
    while stop is None or not stop():
        if ctx is None:
            try:
                ctx = Context()
                names = ctx.readers()
            except TransportError:
                if ctx is not None:
                    ctx.close()
                    ctx = None
                if available:
                    available = False
                    yield ReaderEvent(EventKind.SERVICE_UNAVAILABLE, "")
                    for name in list(known):
                        yield ReaderEvent(EventKind.READER_REMOVED, name)
                    known.clear()
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.2
            if not available:
                available = True
                yield ReaderEvent(EventKind.SERVICE_AVAILABLE, "")
        assert ctx is not None
        try:
            names = [n for n in ctx.readers() if only is None or n == only]
        except TransportError:
            ctx.close()
            ctx = None
            continue
        for name in names:
            if name not in known:
                known[name] = s.SCARD_STATE_UNAWARE
                yield ReaderEvent(EventKind.READER_ADDED, name)
        for name in [n for n in known if n not in names]:
            del known[name]
            yield ReaderEvent(EventKind.READER_REMOVED, name)
        watch = [(n, st) for n, st in known.items()] + [(PNP, s.SCARD_STATE_UNAWARE)]
        hresult, states = s.SCardGetStatusChange(ctx.handle, poll_ms, watch)
        code = _code(hresult)
        if code == 0x8010000A:
            continue
        if code != 0:
            ctx.close()
            ctx = None
            continue
        for name, state, atr in states:
            if name == PNP or name not in known:
                continue
            before = known[name]
            present = bool(state & s.SCARD_STATE_PRESENT)
            was = bool(before & s.SCARD_STATE_PRESENT)
            known[name] = state & ~s.SCARD_STATE_CHANGED
            if before == s.SCARD_STATE_UNAWARE:
                if present:
                    yield ReaderEvent(EventKind.CARD_INSERTED, name, bytes(atr))
            elif present and not was:
                yield ReaderEvent(EventKind.CARD_INSERTED, name, bytes(atr))
            elif was and not present:
                yield ReaderEvent(EventKind.CARD_REMOVED, name)
    if ctx is not None:
        ctx.close()


def open_pcsc_reader(target: str, options: dict[str, str]) -> PcscReader:
    unknown = set(options) - {"share", "timeout"}
    if unknown:
        raise FormatError(f"pcsc reader: unknown option(s) {', '.join(sorted(unknown))}")
    timeout = float(options["timeout"]) if "timeout" in options else None
    return PcscReader(target, options.get("share", "shared"), timeout)
