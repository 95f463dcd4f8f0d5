"""A PN532 on a pseudo-terminal, hosting virtual cards in its field.

Answers byte-exact, with an ACK before every response, the commands of our
driver and those libnfc's ``pn532_uart`` driver sends during ``nfc-list``
(NXP UM0701-02 §7): Diagnose, GetFirmwareVersion, GetGeneralStatus,
Read/WriteRegister over a register file, SetParameters, SAMConfiguration,
PowerDown, RFConfiguration, InListPassiveTarget for every modulation (0
targets where no such card), InDataExchange with chaining, InCommunicateThru,
InSelect, InDeselect, InRelease. Unknown commands get the error frame.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Sequence
from dataclasses import dataclass, field

from cardlib.atr import parse_atr
from cardlib.errors import CardRemovedError, FormatError
from cardlib.readers.base import Card
from cardlib.readers.pn532_frames import ACK, ERROR, HOST_TO_CHIP, FrameParser, response

STATUS_OK = 0x00
STATUS_TIMEOUT = 0x01
STATUS_BAD_TARGET = 0x27
MI = 0x40
CHUNK = 240


@dataclass
class Target:
    card: Card
    uid: bytes
    sens_res: bytes = b"\x00\x04"
    sel_res: int = 0x20

    @property
    def ats(self) -> bytes:
        try:
            hist = parse_atr(self.card.atr).historical_bytes
        except FormatError:
            hist = b""
        body = bytes((0x78, 0x80, 0x70, 0x02)) + hist  # FSCI 256, TA/TB/TC as a typical card
        return bytes((len(body) + 1,)) + body


@dataclass
class _Field:
    targets: list[Target] = field(default_factory=list)
    active: dict[int, Target] = field(default_factory=dict)  # Tg -> target


class Pn532Emulator:
    """``start()`` returns the device path a driver (ours, or libnfc's) opens."""

    def __init__(self, cards: Sequence[Card] = ()) -> None:
        self.field = _Field()
        self._uid_seq = 0x11
        self._lock = threading.RLock()  # handle() holds it while a torn card leaves the field
        for card in cards:
            self.insert(card)
        self.registers: dict[int, int] = {0x6305: 0x00, 0x6302: 0x80, 0x6303: 0x80, 0x633C: 0x10, 0x633D: 0x00,
                                          0x6301: 0x00, 0x6304: 0x00, 0x6316: 0x00, 0x6318: 0x00}
        self.parameters = 0x00
        self.log: list[bytes] = []
        self._parser = FrameParser()
        self._master = -1
        self._slave = -1
        self._link: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chain_in = bytearray()
        self._chain_out = b""
        self._nack = 0
        self._drop = 0
        self._garbage = b""
        self._last = b""
        self.path = ""

    # --- field ------------------------------------------------------------------------------

    @property
    def cards(self) -> tuple[Card, ...]:
        return tuple(t.card for t in self.field.targets)

    def insert(self, card: Card) -> None:
        with self._lock:
            if any(t.card is card for t in self.field.targets):
                return
            uid = bytes((0x04, self._uid_seq, 0x5A, 0x3C, 0x11, 0x80, 0x20 + self._uid_seq % 16))
            self._uid_seq += 1
            self.field.targets.append(Target(card, uid))

    def remove(self, card: Card | None = None) -> None:
        with self._lock:
            self.field.targets = [t for t in self.field.targets if card is not None and t.card is not card]
            self.field.active = {tg: t for tg, t in self.field.active.items() if t in self.field.targets}

    # --- fault knobs for tests ------------------------------------------------------------------

    def inject_nack(self, n: int = 1) -> None:
        """Answer the next n commands with NACK (ask the host to resend)."""
        self._nack += n

    def inject_garbage(self, data: bytes) -> None:
        """Write these bytes before the next ACK."""
        self._garbage += data

    def drop_next_response(self, n: int = 1) -> None:
        """ACK the next n commands but never answer them (the host times out)."""
        self._drop += n

    # --- pty ------------------------------------------------------------------------------------

    def start(self, link: str | None = None) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)
        if link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(self.path, link)
            self._link = link
        self._thread = threading.Thread(target=self._serve, name="pn532-emulator", daemon=True)
        self._thread.start()
        return link or self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._link:
            with contextlib.suppress(OSError):
                os.unlink(self._link)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._master, view)
            view = view[n:]

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                if self._stop.is_set():
                    return
                continue
            for frame in self._parser.feed(chunk):
                if frame.kind == "nack" and self._last:
                    self._write(self._last)  # the host asks for the last response again
                    continue
                if frame.kind == "bad":
                    self._write(bytes.fromhex("0000FFFF0000"))  # NACK: ask for the frame again
                    continue
                if frame.kind != "data" or frame.tfi != HOST_TO_CHIP or not frame.data:
                    continue  # an ACK from the host cancels; nothing pending to cancel here
                self.log.append(frame.data)
                if self._nack:
                    self._nack -= 1
                    self._write(bytes.fromhex("0000FFFF0000"))
                    continue
                if self._garbage:
                    self._write(self._garbage)
                    self._garbage = b""
                self._write(ACK)
                if self._drop:
                    self._drop -= 1
                    continue
                self._last = self.handle(frame.data)
                self._write(self._last)

    # --- the chip ------------------------------------------------------------------------------

    def handle(self, data: bytes) -> bytes:
        """One command (code ‖ params) → the response frame."""
        code, params = data[0], data[1:]
        handler = {
            0x00: self._diagnose, 0x02: lambda p: b"\x32\x01\x06\x07", 0x04: self._general_status,
            0x06: self._read_register, 0x08: self._write_register, 0x12: self._set_parameters,
            0x14: lambda p: b"", 0x16: lambda p: b"\x00", 0x32: lambda p: b"",
            0x4A: self._list_passive, 0x40: self._data_exchange, 0x42: lambda p: bytes((STATUS_TIMEOUT,)),
            0x44: self._deselect, 0x52: self._release, 0x54: self._select,
        }.get(code)
        if handler is None:
            return ERROR
        with self._lock:
            return response(code, handler(params))

    def _diagnose(self, p: bytes) -> bytes:
        if not p:
            return b"\x00"
        if p[0] == 0x00:  # communication line test: echo
            return p
        if p[0] == 0x06:  # attention request / card presence (ISO 14443-4)
            present = bool(self.field.active) and all(t in self.field.targets for t in self.field.active.values())
            return bytes((STATUS_OK if present else STATUS_TIMEOUT,))
        return b"\x00"

    def _general_status(self, p: bytes) -> bytes:
        out = bytes((0x00, 0x01 if self.field.targets else 0x00, len(self.field.active)))
        for tg in self.field.active:
            out += bytes((tg, 0x00, 0x00, 0x00))
        return out + b"\x00"

    def _read_register(self, p: bytes) -> bytes:
        return bytes(self.registers.get(int.from_bytes(p[i : i + 2], "big"), 0) for i in range(0, len(p) - 1, 2))

    def _write_register(self, p: bytes) -> bytes:
        for i in range(0, len(p) - 2, 3):
            self.registers[int.from_bytes(p[i : i + 2], "big")] = p[i + 2]
        return b""

    def _set_parameters(self, p: bytes) -> bytes:
        self.parameters = p[0] if p else 0
        return b""

    def _list_passive(self, p: bytes) -> bytes:
        if len(p) < 2:
            return b"\x00"
        max_tg, brty = min(p[0], 2), p[1]
        if brty != 0x00:
            return b"\x00"  # FeliCa, 14443-B, Jewel: none in our field
        self.field.active = {}
        out = bytearray()
        found = self.field.targets[:max_tg]
        out.append(len(found))
        for tg, target in enumerate(found, 1):
            self.field.active[tg] = target
            with contextlib.suppress(CardRemovedError):
                target.card.reset()
            out += bytes((tg,)) + target.sens_res + bytes((target.sel_res, len(target.uid))) + target.uid + target.ats
        return bytes(out)

    def _target(self, tg: int) -> Target | None:
        target = self.field.active.get(tg & 0x0F)
        return target if target is not None and target in self.field.targets else None

    def _data_exchange(self, p: bytes) -> bytes:
        if not p:
            return bytes((STATUS_BAD_TARGET,))
        tg, payload = p[0], p[1:]
        target = self._target(tg)
        if target is None:
            self._chain_in.clear()
            return bytes((STATUS_TIMEOUT,))
        if not payload and self._chain_out:  # the host collects the rest of a chained answer
            piece, self._chain_out = self._chain_out[:CHUNK], self._chain_out[CHUNK:]
            return bytes((MI if self._chain_out else STATUS_OK,)) + piece
        self._chain_in += payload
        if tg & MI:
            return bytes((STATUS_OK,))
        apdu, self._chain_in = bytes(self._chain_in), bytearray()
        try:
            answer = target.card.process(apdu)
        except CardRemovedError:
            self.remove(target.card)
            return bytes((STATUS_TIMEOUT,))
        piece, self._chain_out = answer[:CHUNK], answer[CHUNK:]
        return bytes((MI if self._chain_out else STATUS_OK,)) + piece

    def _deselect(self, p: bytes) -> bytes:
        return b"\x00"

    def _select(self, p: bytes) -> bytes:
        return bytes((STATUS_OK if p and self._target(p[0]) else STATUS_BAD_TARGET,))

    def _release(self, p: bytes) -> bytes:
        if p and p[0]:
            self.field.active.pop(p[0], None)
        else:
            self.field.active.clear()
        return b"\x00"


def serve_pn532(cards: Sequence[Card], link: str | None = None) -> Pn532Emulator:
    emulator = Pn532Emulator(cards)
    emulator.start(link)
    return emulator
