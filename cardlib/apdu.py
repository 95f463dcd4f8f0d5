"""Command and response APDUs (ISO/IEC 7816-4 §5.1, cases 1–4, short and extended).

``le`` is the number of bytes expected: None means absent, 256 is written
``00`` in short form and 65536 ``0000`` in extended form.
"""

from __future__ import annotations

from collections.abc import Callable
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


# Both classes write their __init__ out: the generated one of a frozen dataclass
# sets each field through object.__setattr__, and every command and answer of
# every transaction is built here. A command's fields go straight into __dict__
# (which also caches its encoding); an answer, built on every exchange, has
# slots, set through their descriptors.


@dataclass(frozen=True, init=False)
class CommandAPDU:
    """A command APDU. ``encode()`` picks short form unless the sizes need extended."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __init__(self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> None:
        if not (0 <= cla <= 0xFF and 0 <= ins <= 0xFF and 0 <= p1 <= 0xFF and 0 <= p2 <= 0xFF):
            for name, value in (("CLA", cla), ("INS", ins), ("P1", p1), ("P2", p2)):  # which one, for the message
                _byte(name, value)
        if not isinstance(data, bytes):
            data = bytes(data)
        if len(data) > EXT_MAX_LC:
            raise FormatError(f"command data too long: {len(data)} > {EXT_MAX_LC} bytes")
        if le is not None and not 1 <= le <= EXT_MAX_LE:
            raise FormatError(f"Le must be 1..{EXT_MAX_LE} (256 is short-form 00), got {le}")
        fields = self.__dict__
        fields["cla"], fields["ins"], fields["p1"], fields["p2"], fields["data"], fields["le"] = cla, ins, p1, p2, data, le

    @classmethod
    def _trusted(cls, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> CommandAPDU:
        """Build without checks: for values read from bytes, valid by construction (decode)."""
        self = object.__new__(cls)
        fields = self.__dict__
        fields["cla"], fields["ins"], fields["p1"], fields["p2"], fields["data"], fields["le"] = cla, ins, p1, p2, data, le
        return self

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
        """Bytes on the wire; ``extended=None`` chooses by size (and is cached: a value never changes)."""
        if extended is None:
            fields = self.__dict__
            cached: bytes | None = fields.get("_encoded")
            if cached is None:
                cached = fields["_encoded"] = self._encode(None)
            return cached
        return self._encode(extended)

    def _encode(self, ext: bool | None) -> bytes:
        """``ext`` None: short form unless the sizes need extended (needs_extended, inline)."""
        data, le = self.data, self.le
        fits_short = len(data) <= SHORT_MAX_LC and (le or 0) <= SHORT_MAX_LE
        if ext is None:
            ext = not fits_short
        if not ext:
            if not fits_short:
                raise FormatError("command does not fit a short APDU: use extended length")
            if data:  # 256 -> 00 in the Le byte
                head = bytes((self.cla, self.ins, self.p1, self.p2, len(data)))
                return head + data if le is None else head + data + bytes((le & 0xFF,))
            if le is None:
                return bytes((self.cla, self.ins, self.p1, self.p2))
            return bytes((self.cla, self.ins, self.p1, self.p2, le & 0xFF))
        out = bytearray(self.header())
        if self.data:
            out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                out += (self.le & 0xFFFF).to_bytes(2, "big")  # 65536 -> 0000
        elif self.le is not None:
            out += b"\x00" + (self.le & 0xFFFF).to_bytes(2, "big")
        return bytes(out)

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
        # every value below is in range by construction (bytes, lengths of 1 or 2 bytes)
        new = cls._trusted
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return new(cla, ins, p1, p2, b"", None)
        if n == 5:  # case 2 short
            return new(cla, ins, p1, p2, b"", raw[4] or SHORT_MAX_LE)
        lc = raw[4]
        if lc:  # short Lc
            if n == 5 + lc:
                return new(cla, ins, p1, p2, raw[5:], None)
            if n == 6 + lc:
                return new(cla, ins, p1, p2, raw[5:-1], raw[-1] or SHORT_MAX_LE)
            rest = raw[5:]
            raise FormatError(
                f"Lc mismatch: Lc={lc} but {len(rest)} bytes follow (expected {lc} or {lc + 1})"
            )
        # body[0] == 0 and more than one byte: extended form
        body = raw[4:]
        if len(body) == 3:  # case 2 extended
            return new(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or EXT_MAX_LE)
        if len(body) < 3:
            raise FormatError(f"bad APDU body length {len(body)} after the header")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise FormatError("extended Lc of 0 is not allowed")
        rest = body[3:]
        if len(rest) == lc:
            return new(cla, ins, p1, p2, rest, None)
        if len(rest) == lc + 2:
            le = int.from_bytes(rest[lc:], "big") or EXT_MAX_LE
            return new(cla, ins, p1, p2, rest[:lc], le)
        raise FormatError(
            f"extended Lc mismatch: Lc={lc} but {len(rest)} bytes follow (expected {lc} or {lc + 2})"
        )

    @classmethod
    def from_hex(cls, text: str) -> CommandAPDU:
        return cls.decode(from_hex(text, "APDU"))


@dataclass(frozen=True, init=False, slots=True)
class ResponseAPDU:
    """A response APDU: data ‖ SW1 SW2."""

    data: bytes
    sw: int

    def __init__(self, data: bytes, sw: int) -> None:
        if not 0 <= sw <= 0xFFFF:
            raise FormatError(f"SW must be two bytes, got {sw:#x}")
        _set_data(self, data)
        _set_sw(self, sw)

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
        return cls._trusted(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    @classmethod
    def _trusted(cls, data: bytes, sw: int) -> ResponseAPDU:
        """Build without checks (the channel's hot path: SW from two bytes is always valid)."""
        self = _new(cls)
        _set_data(self, data)
        _set_sw(self, sw)
        return self

    @classmethod
    def status(cls, sw: int, data: bytes = b"") -> ResponseAPDU:
        return cls(data, sw)

    def hex(self) -> str:
        return to_hex(self.encode())


_new = object.__new__
# the slots' own setters: a frozen dataclass's __setattr__ refuses every assignment
_set_data: Callable[[ResponseAPDU, bytes], None] = vars(ResponseAPDU)["data"].__set__
_set_sw: Callable[[ResponseAPDU, int], None] = vars(ResponseAPDU)["sw"].__set__
