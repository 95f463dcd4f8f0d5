"""PN532 host-interface frames (NXP UM0701-02 §6.2.1): normal and extended
information frames, ACK, NACK and the application error frame, with their
LCS/DCS checksums; the command codes, the status byte and the layout of an
ISO 14443-A target in InListPassiveTarget's answer. No I/O: the driver and the
chip emulator share it, and it is tested byte-exact.

A normal frame carries up to 254 data bytes after the TFI (LEN ≤ 0xFF); more
than that goes in an extended frame (§6.2.1.3), as libnfc does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cardlib.errors import FormatError, ProtocolError
from cardlib.isodep import parse_ats

# Command codes (§7.1), one table for the driver and the chip emulator.
DIAGNOSE = 0x00
GET_FIRMWARE_VERSION = 0x02
GET_GENERAL_STATUS = 0x04
READ_REGISTER = 0x06
WRITE_REGISTER = 0x08
SET_SERIAL_BAUD_RATE = 0x10
SET_PARAMETERS = 0x12
SAM_CONFIGURATION = 0x14
POWER_DOWN = 0x16
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_COMMUNICATE_THRU = 0x42
IN_DESELECT = 0x44
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52
IN_SELECT = 0x54
IN_AUTO_POLL = 0x60

#: SetSerialBaudRate's BR byte (§7.2.8) is the index of the speed here.
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)
#: The HSU speed after power-up (§6.2.2): both ends start here.
POWER_ON_BAUD = 115200
#: SetParameters flag fAutomaticRATS (§7.2.9): InListPassiveTarget sends RATS itself.
PARAM_AUTO_RATS = 0x10
#: The MI bit (more information) of InDataExchange's Tg and status bytes (§7.3.8).
MI = 0x40
#: InDataExchange carries at most 262 data bytes a frame (§7.3.8).
CHUNK = 262
#: SEL_RES bit 6 (ISO 14443-3 §6.5.3.4): the target speaks ISO 14443-4, its ATS follows in the answer.
SEL_RES_ISO14443_4 = 0x20
#: The status byte (§7.1): success, the target's silence, a command out of context.
STATUS_OK, STATUS_TIMEOUT, STATUS_BAD_CONTEXT = 0x00, 0x01, 0x27

HOST_TO_CHIP = 0xD4
CHIP_TO_HOST = 0xD5
ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
ERROR = bytes.fromhex("0000FF01FF7F8100")
#: HSU wake-up (§7.2.11, §6.2.2): 0x55 0x55 then zeros, sent ahead of the first command.
WAKEUP = bytes.fromhex("5555") + bytes(14)
#: Data bytes after the TFI that still fit a normal frame.
MAX_NORMAL_DATA = 254
#: Longest LEN a parser accepts unless told otherwise (a PN532 never sends more than ~265).
DEFAULT_MAX_LEN = 0xFFFF


class FrameKind(enum.Enum):
    DATA = "data"
    ACK = "ack"
    NACK = "nack"
    ERROR = "error"  # the application error frame (§6.2.1.5)
    BAD = "bad"  # a frame whose checksum failed: ``Frame.error`` says which


@dataclass(frozen=True)
class Frame:
    """One frame off the line. For DATA, ``data`` starts with the command or response code."""

    kind: FrameKind
    tfi: int = 0
    data: bytes = b""
    problem: str = ""
    extended: bool = False

    @property
    def code(self) -> int:
        """The command/response code, or -1 for frames without data."""
        return self.data[0] if self.data else -1

    @property
    def error(self) -> ProtocolError | None:
        """The typed error of a BAD frame (None otherwise)."""
        return ProtocolError(f"PN532 frame rejected: {self.problem}") if self.kind is FrameKind.BAD else None


@dataclass(frozen=True)
class Target:
    """One ISO 14443-A target from InListPassiveTarget (§7.3.5)."""

    tg: int
    sens_res: bytes
    sel_res: int
    uid: bytes
    ats: bytes

    @property
    def historical_bytes(self) -> bytes:
        """From the ATS (ISO 14443-4 §5.2); none from an ATS that does not parse."""
        try:
            return parse_ats(self.ats).historical_bytes
        except FormatError:
            return b""

    def encode(self) -> bytes:
        """Tg SENS_RES(2) SEL_RES NFCIDLength NFCID [ATS], as in InListPassiveTarget's answer."""
        return bytes((self.tg,)) + self.sens_res + bytes((self.sel_res, len(self.uid))) + self.uid + self.ats


def parse_targets(data: bytes) -> list[Target]:
    """The InListPassiveTarget answer for 106 kbit/s type A (§7.3.5):
    NbTg, then per target Tg SENS_RES(2) SEL_RES NFCIDLength NFCID [ATS]."""
    if not data:
        raise ProtocolError("InListPassiveTarget: empty answer")
    out = []
    pos = 1
    try:
        for _ in range(data[0]):
            tg = data[pos]
            sens, sel, n = data[pos + 1 : pos + 3], data[pos + 3], data[pos + 4]
            uid = data[pos + 5 : pos + 5 + n]
            if len(uid) != n:
                raise IndexError
            pos += 5 + n
            ats = b""
            if sel & SEL_RES_ISO14443_4 and pos < len(data):  # the ATS follows
                ats = data[pos : pos + data[pos]]
                pos += data[pos] or 1
            out.append(Target(tg, sens, sel, uid, ats))
    except IndexError:
        raise ProtocolError(f"InListPassiveTarget: truncated answer {data.hex().upper()}") from None
    return out


#: Status codes (§7.1, error code list) that mean the card is no longer there.
GONE = {0x29, 0x2B}
STATUS_TEXT = {
    0x01: "timeout, the target did not answer",
    0x02: "CRC error",
    0x03: "parity error",
    0x04: "wrong bit count during anticollision",
    0x05: "framing error",
    0x06: "abnormal bit collision",
    0x07: "communication buffer too small",
    0x09: "RF buffer overflow",
    0x0A: "RF field not switched on in time",
    0x0B: "RF protocol error",
    0x0D: "chip overheating",
    0x0E: "internal buffer overflow",
    0x10: "invalid parameter",
    0x13: "data format does not match the specification",
    0x14: "authentication error",
    0x23: "UID check byte wrong",
    0x25: "invalid device state",
    0x26: "operation not allowed in this configuration",
    0x27: "command not acceptable in the current context",
    0x29: "target released",
    0x2A: "card ID does not match",
    0x2B: "the card activated before has disappeared",
    0x2D: "over-current",
    0x2E: "NAD missing",
}


def describe_status(status: int) -> str:
    """'status 01 (timeout, ...)' for an error message."""
    return f"status {status:02X} ({STATUS_TEXT.get(status & 0x3F, 'unknown error')})"


def build(tfi: int, data: bytes) -> bytes:
    """An information frame (§6.2.1.1); extended (§6.2.1.3) above 254 data bytes."""
    body = bytes((tfi,)) + data
    n = len(body)
    dcs = (-sum(body)) & 0xFF
    if len(data) <= MAX_NORMAL_DATA:
        return b"\x00\x00\xff" + bytes((n, (-n) & 0xFF)) + body + bytes((dcs, 0x00))
    if n > 0xFFFF:
        raise ProtocolError(f"PN532 frame payload of {n} bytes is too long")
    hi, lo = n >> 8, n & 0xFF
    return b"\x00\x00\xff\xff\xff" + bytes((hi, lo, (-(hi + lo)) & 0xFF)) + body + bytes((dcs, 0x00))


def command(code: int, params: bytes = b"") -> bytes:
    """Host → chip: TFI D4, the command code, its parameters."""
    return build(HOST_TO_CHIP, bytes((code,)) + params)


def response(code: int, params: bytes = b"") -> bytes:
    """Chip → host: TFI D5, the command code + 1, the answer."""
    return build(CHIP_TO_HOST, bytes(((code + 1) & 0xFF,)) + params)


def parse_frame(raw: bytes) -> Frame:
    """Exactly one frame (preamble and postamble optional); ProtocolError otherwise."""
    parser = FrameParser()
    frames = parser.feed(raw)
    if not frames:
        raise ProtocolError(f"not a complete PN532 frame: {raw.hex().upper()}")
    frame = frames[0]
    if frame.error is not None:
        raise frame.error
    if len(frames) > 1 or parser.pending() > 1:
        raise ProtocolError(f"more than one PN532 frame in {raw.hex().upper()}")
    return frame


class FrameParser:
    """Frames out of a byte stream that may hold preambles, garbage and split frames.

    Bytes come in any chunks (``feed``/``push``); a frame whose checksum fails
    comes out as a BAD frame carrying its ProtocolError, and the parser
    resynchronises on the next start code. Nothing else is ever raised.
    """

    def __init__(self, max_len: int = DEFAULT_MAX_LEN) -> None:
        self._buf = bytearray()
        self.max_len = max_len

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame now complete."""
        self._buf += data
        out: list[Frame] = []
        while (frame := self._next()) is not None:
            out.append(frame)
        return out

    def push(self, data: bytes) -> None:
        self._buf += data

    def pop(self) -> Frame | None:
        """The next complete frame in the buffer, if any."""
        return self._next()

    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()

    def _bad(self, problem: str) -> Frame:
        del self._buf[:2]  # past this start code only: a real frame may begin inside
        return Frame(FrameKind.BAD, problem=problem)

    def _next(self) -> Frame | None:
        buf = self._buf
        start = buf.find(b"\x00\xff")
        if start < 0:
            del buf[: max(0, len(buf) - 1)]  # keep a trailing 00 that may start a code
            return None
        if start:
            del buf[:start]
        if len(buf) < 4:
            return None
        length, lcs = buf[2], buf[3]
        if (length, lcs) in ((0x00, 0xFF), (0xFF, 0x00)):
            del buf[: 5 if len(buf) > 4 and buf[4] == 0 else 4]
            return Frame(FrameKind.ACK if length == 0 else FrameKind.NACK)
        extended = (length, lcs) == (0xFF, 0xFF)
        if extended:
            if len(buf) < 7:
                return None
            hi, lo, xcs = buf[4], buf[5], buf[6]
            if (hi + lo + xcs) & 0xFF:
                return self._bad("extended frame length checksum wrong")
            n, head = (hi << 8) | lo, 7
        else:
            if (length + lcs) & 0xFF:
                return self._bad("length checksum wrong")
            n, head = length, 4
        if n == 0 or n > self.max_len:
            return self._bad(f"frame length {n} out of range")
        if len(buf) < head + n + 1:
            return None
        body = bytes(buf[head : head + n])
        if (sum(body) + buf[head + n]) & 0xFF:
            return self._bad("data checksum wrong")
        end = head + n + 1
        if len(buf) > end and buf[end] == 0:
            end += 1  # postamble
        del buf[:end]
        if n == 1 and body[0] == 0x7F:
            return Frame(FrameKind.ERROR)
        return Frame(FrameKind.DATA, body[0], body[1:], extended=extended)
