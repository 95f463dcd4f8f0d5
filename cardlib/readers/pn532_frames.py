"""PN532 host-interface frames (NXP UM0701-02 §6.2): normal and extended
information frames, ACK, NACK and the application error frame. No I/O: the
driver and the chip emulator both use it, and it is tested byte-exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardlib.errors import ProtocolError

HOST_TO_CHIP = 0xD4
CHIP_TO_HOST = 0xD5
ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
ERROR = bytes.fromhex("0000FF01FF7F8100")
WAKEUP = bytes.fromhex("5555") + bytes(14)
MAX_NORMAL = 254  # TFI + data in a normal frame


@dataclass(frozen=True)
class Frame:
    kind: str  # "data" | "ack" | "nack" | "error" | "bad"
    tfi: int = 0
    data: bytes = b""
    problem: str = ""

    @property
    def code(self) -> int:
        return self.data[0] if self.data else -1


def build(tfi: int, data: bytes) -> bytes:
    """An information frame; extended form when TFI + data exceed 254 bytes."""
    body = bytes((tfi,)) + data
    n = len(body)
    dcs = (-sum(body)) & 0xFF
    if n <= MAX_NORMAL:
        return b"\x00\x00\xff" + bytes((n, (-n) & 0xFF)) + body + bytes((dcs, 0x00))
    if n > 0xFFFF:
        raise ProtocolError(f"PN532 frame payload of {n} bytes is too long")
    hi, lo = n >> 8, n & 0xFF
    return b"\x00\x00\xff\xff\xff" + bytes((hi, lo, (-(hi + lo)) & 0xFF)) + body + bytes((dcs, 0x00))


def command(code: int, params: bytes = b"") -> bytes:
    return build(HOST_TO_CHIP, bytes((code,)) + params)


def response(code: int, params: bytes = b"") -> bytes:
    return build(CHIP_TO_HOST, bytes((code + 1,)) + params)


class FrameParser:
    """Frames out of a byte stream that may hold preambles, garbage and split frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return out
            out.append(frame)

    def push(self, data: bytes) -> None:
        self._buf += data

    def pop(self) -> Frame | None:
        """The next complete frame in the buffer, if any."""
        return self._next()

    def pending(self) -> int:
        return len(self._buf)

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
        if (length, lcs) == (0x00, 0xFF):
            del buf[: 5 if len(buf) > 4 and buf[4] == 0 else 4]
            return Frame("ack")
        if (length, lcs) == (0xFF, 0x00):
            del buf[: 5 if len(buf) > 4 and buf[4] == 0 else 4]
            return Frame("nack")
        if (length, lcs) == (0xFF, 0xFF):
            if len(buf) < 7:
                return None
            hi, lo, xcs = buf[4], buf[5], buf[6]
            if (hi + lo + xcs) & 0xFF:
                del buf[:2]
                return Frame("bad", problem="extended frame length checksum wrong")
            n, head = (hi << 8) | lo, 7
        else:
            if (length + lcs) & 0xFF:
                del buf[:2]
                return Frame("bad", problem="length checksum wrong")
            n, head = length, 4
        if len(buf) < head + n + 1:
            return None
        body = bytes(buf[head : head + n])
        dcs = buf[head + n]
        end = head + n + 1
        if len(buf) > end and buf[end] == 0:
            end += 1
        del buf[:end]
        if (sum(body) + dcs) & 0xFF:
            return Frame("bad", problem="data checksum wrong")
        if n == 0:
            return Frame("bad", problem="empty frame")
        if n == 1 and body[0] == 0x7F:
            return Frame("error")
        return Frame("data", body[0], body[1:])
