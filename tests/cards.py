"""Small card models for tests (py: reader factories)."""

from __future__ import annotations

from cardlib.apdu import CommandAPDU
from cardlib.errors import CardRemovedError

ATR_T0 = bytes.fromhex("3B00")
ATR_T1 = bytes.fromhex("3B80800101")


class EchoCard:
    """Answers every command with its data (or Le zero bytes) and 9000."""

    def __init__(self, atr: bytes = ATR_T1) -> None:
        self.atr = atr
        self.seen: list[bytes] = []
        self.torn = False

    def reset(self) -> bytes:
        if self.torn:
            raise CardRemovedError()
        return self.atr

    def process(self, apdu: bytes) -> bytes:
        if self.torn:
            raise CardRemovedError()
        self.seen.append(apdu)
        cmd = CommandAPDU.decode(apdu)
        if cmd.ins == 0x84:  # GET CHALLENGE
            return bytes(range(1, (cmd.le or 8) + 1)) + b"\x90\x00"
        if cmd.data:
            return cmd.data + b"\x90\x00"
        return bytes(cmd.le or 0) + b"\x90\x00"


class T0Card:
    """Behaves like a T=0 card: case-4 answers come as 61xx, wrong Le as 6Cxx."""

    def __init__(self) -> None:
        self.atr = ATR_T0
        self._pending = b""
        self.seen: list[bytes] = []

    def reset(self) -> bytes:
        self._pending = b""
        return self.atr

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        cmd = CommandAPDU.decode(apdu)
        if cmd.ins == 0xC0:  # GET RESPONSE
            if not self._pending:
                return b"\x69\x85"
            n = cmd.le or 256
            piece, self._pending = self._pending[:n], self._pending[n:]
            if self._pending:
                return piece + bytes((0x61, min(len(self._pending), 256) & 0xFF))
            return piece + b"\x90\x00"
        if cmd.ins == 0xB0:  # READ BINARY of 8 bytes: insists on the exact Le
            if cmd.le != 8:
                return b"\x6C\x08"
            return bytes.fromhex("0102030405060708") + b"\x90\x00"
        if cmd.ins == 0xA4:  # SELECT answers an FCI of 20 bytes through 61xx
            self._pending = bytes.fromhex("6F128408A000000632010105A50688010B5F2D027A68")
            return bytes((0x61, len(self._pending)))
        if cmd.ins == 0xCA:  # GET DATA: a long answer in 61xx pieces
            self._pending = bytes(i & 0xFF for i in range(300))
            return b"\x61\x00"
        return b"\x6D\x00"


class LongCard(EchoCard):
    """READ BINARY answers exactly Le bytes (up to 65536: extended APDUs)."""

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        cmd = CommandAPDU.decode(apdu)
        if cmd.ins == 0xB0:
            return bytes(i & 0xFF for i in range(cmd.le or 0)) + b"\x90\x00"
        return super().process(apdu)


HOLDER_NAME = "张三".encode("gbk")
HOLDER_SSN = b"330302199001011234"


class HolderCard:
    """A card with the SSSE holder file EF06 and a purse holder file 0x16.

    ``t0=True`` makes it answer READ RECORD / READ BINARY through 61xx, so the
    personal data arrives in GET RESPONSE.
    """

    def __init__(self, t0: bool = False) -> None:
        self.atr = ATR_T1
        self.t0 = t0
        self._selected = b""
        self._pending = b""

    def reset(self) -> bytes:
        self._selected, self._pending = b"", b""
        return self.atr

    def _answer(self, data: bytes) -> bytes:
        if not self.t0:
            return data + b"\x90\x00"
        self._pending = data
        return bytes((0x61, len(data) & 0xFF))

    def process(self, apdu: bytes) -> bytes:
        cmd = CommandAPDU.decode(apdu)
        if cmd.ins == 0xC0 and self._pending:
            data, self._pending = self._pending, b""
            return data + b"\x90\x00"
        if cmd.ins == 0xA4:
            self._selected = cmd.data
            return b"\x90\x00"
        if cmd.ins == 0xB2:  # EF06 record: SSN then name, by identifier or by SFI 6
            if self._selected != b"\xef\x06" and cmd.p2 >> 3 != 6:
                return b"\x6a\x82"
            tag = cmd.p1
            value = HOLDER_SSN if tag == 0x08 else HOLDER_NAME
            return self._answer(bytes((tag, len(value))) + value)
        if cmd.ins == 0xB0 and cmd.p1 == 0x96:
            return self._answer(b"\x00\x00" + HOLDER_NAME.ljust(20, b"\x00"))
        if cmd.ins == 0x20:
            return b"\x90\x00" if cmd.data == b"\x12\x34\x56" else b"\x63\xc2"
        return b"\x6d\x00"


def echo_card() -> EchoCard:
    return EchoCard()


def t0_card() -> T0Card:
    return T0Card()


def two_cards() -> list[EchoCard]:
    return [EchoCard(), EchoCard()]


def long_card() -> LongCard:
    return LongCard()


def holder_card(t0: str = "0") -> HolderCard:
    return HolderCard(t0=t0 == "1")


def no_card() -> list[EchoCard]:
    """An empty field: a reader without a card."""
    return []
