"""A PN532 on a serial line (HSU) through pyserial (NXP UM0701-02).

Wake-up preamble and SAMConfiguration with retries and a longer first
timeout; command → ACK → response; NACK answered by resending; a cancel ACK
on timeout; InListPassiveTarget for ISO 14443-A asking for two targets (two
found → several cards in the field); a PC/SC-style pseudo-ATR built from
the ATS; InDataExchange with chaining; errors carry the chip's status byte.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cardlib.atr import build_contactless_atr
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MultipleCardsError,
    NoCardError,
    ProtocolError,
    ReaderTimeoutError,
    ReaderUnavailableError,
)
from cardlib.readers.base import Disposition, Reader
from cardlib.readers.pn532_frames import ACK, NACK, WAKEUP, Frame, FrameParser, command
from cardlib.readers.registry import option_float, option_int

CHUNK = 240
MI = 0x40
STATUS_TEXT = {0x01: "timeout", 0x02: "CRC error", 0x03: "parity error", 0x0A: "RF field error",
               0x13: "data overflow", 0x27: "command not acceptable (no target)", 0x29: "target released",
               0x2B: "card disappeared"}


class Pn532Error(ProtocolError):
    def __init__(self, status: int, what: str) -> None:
        self.status = status
        super().__init__(f"PN532 {what}: status {status:02X} ({STATUS_TEXT.get(status & 0x3F, 'error')})")


@dataclass(frozen=True)
class Target:
    tg: int
    sens_res: bytes
    sel_res: int
    uid: bytes
    ats: bytes

    @property
    def historical_bytes(self) -> bytes:
        """From the ATS: TL T0 [TA] [TB] [TC] historical bytes."""
        if len(self.ats) < 2:
            return b""
        t0 = self.ats[1]
        skip = 2 + bin(t0 & 0x70).count("1")
        return self.ats[skip : self.ats[0]]


def parse_targets(data: bytes) -> list[Target]:
    """The InListPassiveTarget answer for ISO 14443-A (UM0701-02 §7.3.5)."""
    if not data:
        raise ProtocolError("InListPassiveTarget: empty answer")
    out = []
    pos = 1
    try:
        for _ in range(data[0]):
            tg = data[pos]
            sens, sel, n = data[pos + 1 : pos + 3], data[pos + 3], data[pos + 4]
            uid = data[pos + 5 : pos + 5 + n]
            pos += 5 + n
            ats = b""
            if sel & 0x20 and pos < len(data):
                ats = data[pos : pos + data[pos]]
                pos += data[pos] or 1
            out.append(Target(tg, sens, sel, uid, ats))
    except IndexError:
        raise ProtocolError(f"InListPassiveTarget: truncated answer {data.hex().upper()}") from None
    return out


class Pn532Reader(Reader):
    """A PN532 module on a UART (115200 baud by default)."""

    max_command_data = 0xFFFF
    extended_length = True
    poll_interval = 0.1

    def __init__(self, port: Any, name: str = "pn532", timeout: float = 0.5, ack_timeout: float = 0.1,
                 retries: int = 3) -> None:
        self.port = port
        self.name = name
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self.retries = retries
        self._parser = FrameParser()
        self._target: Target | None = None
        self._atr = b""
        self.firmware = b""
        self.wake()

    # --- link ------------------------------------------------------------------------------

    def _read_frame(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parser.pop()
            if frame is not None:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.port.timeout = min(remaining, 0.05)
            self._parser.push(self.port.read(max(1, self.port.in_waiting or 1)))

    def _wait_ack(self, timeout: float) -> Frame | None:
        """The chip's ACK, NACK or error frame; line noise in between is skipped."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._read_frame(max(0.0, deadline - time.monotonic()))
            if frame is None or frame.kind in ("ack", "nack", "error"):
                return frame

    def _flush(self) -> None:
        """Drop stale bytes (a late answer to a cancelled command)."""
        reset = getattr(self.port, "reset_input_buffer", None)
        if reset is not None:
            reset()
        self._parser = FrameParser()

    def _send(self, raw: bytes) -> None:
        self.port.write(raw)
        self.port.flush()

    def exchange(self, code: int, params: bytes = b"", timeout: float | None = None,
                 ack_timeout: float | None = None, preamble: bytes = b"") -> bytes:
        """One command; returns the response parameters (after the response code)."""
        raw = command(code, params)
        self._flush()
        for attempt in range(self.retries + 1):
            self._send(preamble + raw)
            frame = self._wait_ack(ack_timeout or self.ack_timeout)
            if frame is None:
                if attempt < self.retries:
                    continue
                raise ReaderTimeoutError(f"PN532 did not acknowledge command {code:02X}")
            if frame.kind == "nack":
                continue  # the chip asks for the command again
            if frame.kind == "error":
                raise ProtocolError(f"PN532 refused command {code:02X} (application error frame)")
            break
        else:
            raise ProtocolError(f"PN532 kept refusing command {code:02X}")
        for _ in range(self.retries + 1):
            frame = self._read_frame(timeout or self.timeout)
            if frame is None:
                self._send(ACK)  # cancel the pending command (UM0701-02 §6.2.1.4)
                raise ReaderTimeoutError(f"PN532 gave no answer to command {code:02X}")
            if frame.kind == "bad":
                self._send(NACK)  # ask for the response again
                continue
            if frame.kind == "error":
                raise ProtocolError(f"PN532 answered command {code:02X} with the error frame")
            if frame.kind != "data" or frame.code != code + 1:
                raise ProtocolError(f"PN532 answered command {code:02X} with {frame.kind} {frame.data.hex().upper()}")
            return frame.data[1:]
        raise ProtocolError(f"PN532 response to {code:02X} kept failing its checksum")

    def wake(self) -> None:
        """Wake-up preamble + SAMConfiguration (normal mode); longer first timeout."""
        try:
            self.exchange(0x14, b"\x01\x14\x01", ack_timeout=1.0, preamble=WAKEUP)
            self.firmware = self.exchange(0x02)
            self.exchange(0x12, b"\x14")  # SetParameters: automatic RATS, ATS kept
            self.exchange(0x32, b"\x05\xff\x01\x02")  # RFConfiguration: MaxRetries
        except ReaderTimeoutError as exc:
            raise ReaderUnavailableError(f"no PN532 answering on {self.name}: {exc}") from None

    # --- reader interface -----------------------------------------------------------------

    def _list(self, max_targets: int) -> list[Target]:
        return parse_targets(self.exchange(0x4A, bytes((max_targets, 0x00)), timeout=max(self.timeout, 1.0)))

    def connect(self) -> bytes:
        targets = self._list(2)
        if not targets:
            raise NoCardError(f"no card in the field of {self.name}")
        if len(targets) > 1:
            self.exchange(0x52, b"\x00")
            raise MultipleCardsError(len(targets))
        self._target = targets[0]
        self._atr = build_contactless_atr(self._target.historical_bytes[:15])
        return self._atr

    @property
    def atr(self) -> bytes:
        if self._target is None:
            raise NoCardError(f"no card connected in {self.name}")
        return self._atr

    @property
    def target(self) -> Target | None:
        return self._target

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        if self._target is None:
            raise NoCardError(f"no card connected in {self.name}")
        tg = self._target.tg
        pieces = [apdu[i : i + CHUNK] for i in range(0, len(apdu), CHUNK)] or [b""]
        for i, piece in enumerate(pieces):
            more = i < len(pieces) - 1
            answer = self.exchange(0x40, bytes((tg | (MI if more else 0),)) + piece, timeout=timeout)
            status = answer[0] if answer else 0xFF
            if status & 0x3F:
                if status & 0x3F in (0x01, 0x29, 0x2B):
                    self._target = None
                    raise CardRemovedError(f"card left the field of {self.name} (PN532 status {status:02X})")
                raise Pn532Error(status, "InDataExchange")
        out = bytearray(answer[1:])
        while status & MI:
            answer = self.exchange(0x40, bytes((tg,)), timeout=timeout)
            status = answer[0]
            if status & 0x3F:
                raise Pn532Error(status, "InDataExchange (chained answer)")
            out += answer[1:]
        return bytes(out)

    def is_card_present(self) -> bool:
        if self._target is not None:
            status = self.exchange(0x00, b"\x06")
            if status[:1] == b"\x00":
                return True
            self._target = None
            return False
        found = bool(self._list(1))
        if found:
            self.exchange(0x52, b"\x00")
        return found

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        if self._target is not None:
            self._target = None
            try:
                self.exchange(0x52, b"\x00")
            except (ReaderTimeoutError, ProtocolError):
                pass

    def close(self) -> None:
        self.disconnect()
        self.port.close()


def open_serial(path: str, baud: int, timeout: float) -> Any:
    try:
        import serial  # noqa: PLC0415
    except ImportError:
        raise ReaderUnavailableError("PN532 support needs pyserial: pip install pyserial") from None
    try:
        return serial.serial_for_url(path, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ReaderUnavailableError(f"cannot open serial port {path}: {exc}") from None


def open_pn532_reader(target: str, options: dict[str, str]) -> Pn532Reader:
    """Backend of ``pn532:/dev/ttyUSB0?baud=115200&timeout=0.5``."""
    unknown = set(options) - {"baud", "timeout", "retries"}
    if unknown:
        raise FormatError(f"pn532 reader: unknown option(s) {', '.join(sorted(unknown))}")
    if not target:
        raise FormatError("pn532 reader needs a serial port: pn532:/dev/ttyUSB0")
    baud = option_int(options, "baud", 115200)
    timeout = option_float(options, "timeout", 0.5)
    port = open_serial(target, baud, timeout)
    try:
        return Pn532Reader(port, f"pn532:{target}", timeout, retries=option_int(options, "retries", 3))
    except Exception:
        port.close()
        raise
