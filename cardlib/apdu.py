"""Command and response APDUs (ISO/IEC 7816-4 §5.1, cases 1–4, short and extended).

``le`` is the number of bytes expected: None means absent, 256 is written
``00`` in short form and 65536 ``0000`` in extended form.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardlib.errors import FormatError, StatusError
from cardlib.hexutil import from_hex, to_hex
from cardlib.sw import describe, is_success

SHORT_MAX_LC = 255
SHORT_MAX_LE = 256
EXT_MAX_LC = 65535
EXT_MAX_LE = 65536


def _byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise FormatError(f"{name} must be a byte (0..255), got {value}")


def _extended_body(body: bytes) -> tuple[bytes, int | None]:
    """Data and Le of an extended-length body: 00 Lc1 Lc2 data [Le1 Le2], or 00 Le1 Le2."""
    if len(body) == 3:  # case 2 extended
        return b"", int.from_bytes(body[1:3], "big") or EXT_MAX_LE
    if len(body) < 3:
        raise FormatError(f"bad APDU body length {len(body)} after the header")
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise FormatError("extended Lc of 0 is not allowed")
    rest = body[3:]
    if len(rest) == lc:  # case 3 extended
        return rest, None
    if len(rest) == lc + 2:  # case 4 extended
        return rest[:lc], int.from_bytes(rest[lc:], "big") or EXT_MAX_LE
    raise FormatError(
        f"extended Lc mismatch: Lc={lc} but {len(rest)} bytes follow (expected {lc} or {lc + 2})"
    )


@dataclass(frozen=True)
class CommandAPDU:
    """A command APDU. ``encode()`` picks short form unless the sizes need extended."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("CLA", self.cla), ("INS", self.ins), ("P1", self.p1), ("P2", self.p2)):
            _byte(name, value)
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))  # frozen: the one way to store it
        if len(self.data) > EXT_MAX_LC:
            raise FormatError(f"command data too long: {len(self.data)} > {EXT_MAX_LC} bytes")
        if self.le is not None and not 1 <= self.le <= EXT_MAX_LE:
            raise FormatError(f"Le must be 1..{EXT_MAX_LE} (256 is short-form 00), got {self.le}")

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 no data no Le, 2 Le only, 3 data only, 4 both."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    @property
    def needs_extended(self) -> bool:
        return len(self.data) > SHORT_MAX_LC or (self.le or 0) > SHORT_MAX_LE

    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def encode(self, extended: bool | None = None) -> bytes:
        """Bytes on the wire; ``extended=None`` chooses short form unless the sizes need extended."""
        if extended is None:
            extended = self.needs_extended
        if not extended:
            return self._encode_short()
        out = bytearray(self.header())
        if self.data:
            out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                out += (self.le & 0xFFFF).to_bytes(2, "big")  # 65536 -> 0000
        elif self.le is not None:
            out += b"\x00" + (self.le & 0xFFFF).to_bytes(2, "big")
        return bytes(out)

    def _encode_short(self) -> bytes:
        if self.needs_extended:
            raise FormatError("command does not fit a short APDU: use extended length")
        out = self.header()
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))  # 256 -> 00
        return out

    def __bytes__(self) -> bytes:
        return self.encode()

    def with_le(self, le: int | None) -> CommandAPDU:
        return CommandAPDU(self.cla, self.ins, self.p1, self.p2, self.data, le)

    def with_cla(self, cla: int) -> CommandAPDU:
        return CommandAPDU(cla, self.ins, self.p1, self.p2, self.data, self.le)

    def hex(self) -> str:
        return to_hex(self.encode())

    @classmethod
    def decode(cls, raw: bytes) -> CommandAPDU:
        """Parse the bytes of a command APDU, cases 1–4 short and extended."""
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise FormatError(f"command APDU too short: {n} bytes, a header needs 4")
        cla, ins, p1, p2 = raw[:4]
        if n == 4:  # case 1
            return cls(cla, ins, p1, p2)
        if n == 5:  # case 2 short
            return cls(cla, ins, p1, p2, b"", raw[4] or SHORT_MAX_LE)
        lc = raw[4]
        if lc == 0:  # a first body byte of 00 followed by more: extended form
            data, le = _extended_body(raw[4:])
            return cls(cla, ins, p1, p2, data, le)
        if n == 5 + lc:  # case 3 short
            return cls(cla, ins, p1, p2, raw[5:])
        if n == 6 + lc:  # case 4 short
            return cls(cla, ins, p1, p2, raw[5:-1], raw[-1] or SHORT_MAX_LE)
        raise FormatError(
            f"Lc mismatch: Lc={lc} but {n - 5} bytes follow (expected {lc} or {lc + 1})"
        )

    @classmethod
    def from_hex(cls, text: str) -> CommandAPDU:
        return cls.decode(from_hex(text, "APDU"))


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    """A response APDU: data ‖ SW1 SW2."""

    data: bytes
    sw: int

    def __post_init__(self) -> None:
        if not 0 <= self.sw <= 0xFFFF:
            raise FormatError(f"SW must be two bytes, got {self.sw:#x}")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return is_success(self.sw)

    @property
    def meaning(self) -> str:
        return describe(self.sw)

    def check(self, command: str | None = None) -> ResponseAPDU:
        """Return self on 9000, raise StatusError carrying the SW and its meaning otherwise."""
        if not self.ok:
            raise StatusError(self.sw, describe(self.sw), command)
        return self

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def __bytes__(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise FormatError(f"response APDU too short: {len(raw)} bytes, SW needs 2")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    @classmethod
    def status(cls, sw: int, data: bytes = b"") -> ResponseAPDU:
        return cls(data, sw)

    def hex(self) -> str:
        return to_hex(self.encode())

