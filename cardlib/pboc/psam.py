"""Wire formats of the PSAM (terminal security module; reference §2 and §8)."""

from __future__ import annotations

from dataclasses import dataclass

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.iso import read_binary, select_aid
from cardlib.keys import purse_factors

PSAM_AID = bytes.fromhex("A0000006324D4F542E435053414D3031")  # A0 00 00 06 32 "MOT.CPSAM01"

INS_INIT_SAM_PURCHASE = 0x70
INS_CREDIT_SAM_PURCHASE = 0x72
INS_INIT_DESCRYPT = 0x1A
INS_DESCRYPT = 0xFA

USAGE_SSSE_INTERNAL = 0x27
USAGE_SSSE_EXTERNAL = 0x28
USAGE_MAINTENANCE = 0x36
USAGE_PURCHASE = 0x42

P1_ENCRYPT = 0x00
P1_MAC = 0x05


def read_terminal_number() -> CommandAPDU:
    """00 B0 96 00 06: the 6-byte terminal number in the PSAM's file 0x16."""
    return read_binary(0, 6, sfi=0x16)


def read_app_data() -> CommandAPDU:
    """00 B0 97 00 19: MOT.CPSAM01's file 0x17 (key index, issuer, user, validity)."""
    return read_binary(0, 25, sfi=0x17)


def select_psam_app() -> CommandAPDU:
    return select_aid(PSAM_AID, fci=False)


def purchase_factors(issuer_id: bytes, app_serial: bytes) -> tuple[bytes, bytes]:
    """The factors as 8070 and 801A (usage 42) list them: card level first.

    :func:`cardlib.keys.purse_factors` is the one place that knows the
    derivation order (issuer level first); this is the wire's reverse of it.
    """
    issuer_level, card_level = purse_factors(issuer_id, app_serial)
    return card_level, issuer_level


def derivation_factors(wire: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The inverse of :func:`purchase_factors`: the wire's factors in derivation order."""
    if len(wire) != 2 or any(len(f) != 8 for f in wire):
        raise FormatError("purchase key: two 8-byte factors expected (card, issuer)")
    card_level, issuer_level = wire
    return purse_factors(issuer_level, bytes(2) + card_level)


@dataclass(frozen=True)
class InitSamForPurchase:
    """80 70 00 00 Lc data 08; the factors card first (as 8070 lists them)."""

    card_random: bytes
    card_seq: int
    amount: int
    tx_type: int
    date: bytes
    time: bytes
    key_version: int
    alg_id: int
    factors: tuple[bytes, ...]

    def to_apdu(self) -> CommandAPDU:
        if not self.factors or any(len(f) != 8 for f in self.factors):
            raise FormatError("INIT SAM FOR PURCHASE: factors must be 8 bytes each, at least one")
        if not (0 <= self.card_seq <= 0xFFFF and 0 <= self.amount <= 0xFFFFFFFF
                and 0 <= self.tx_type <= 0xFF and 0 <= self.key_version <= 0xFF and 0 <= self.alg_id <= 0xFF):
            raise FormatError("INIT SAM FOR PURCHASE: a number is out of range")
        data = (self.card_random + self.card_seq.to_bytes(2, "big") + self.amount.to_bytes(4, "big")
                + bytes((self.tx_type,)) + self.date + self.time + bytes((self.key_version, self.alg_id))
                + b"".join(self.factors))
        if len(data) != 0x14 + 8 * len(self.factors):
            raise FormatError("INIT SAM FOR PURCHASE: field sizes are wrong")
        if type(data) is bytes and len(data) <= 255:  # all checked above: skip CommandAPDU's checks
            return CommandAPDU(0x80, INS_INIT_SAM_PURCHASE, 0x00, 0x00, data, 8)
        return CommandAPDU(0x80, INS_INIT_SAM_PURCHASE, 0x00, 0x00, data, 8)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> InitSamForPurchase:
        d = cmd.data
        if cmd.cla != 0x80 or cmd.ins != INS_INIT_SAM_PURCHASE or len(d) < 0x1C or (len(d) - 0x14) % 8:
            raise FormatError(f"INIT SAM FOR PURCHASE: Lc {len(d)} is not 0x14 + 8·N")
        # two levels (the purchase key) on every purchase: without a generator
        factors = (d[20:28], d[28:36]) if len(d) == 0x24 else tuple(d[i : i + 8] for i in range(0x14, len(d), 8))
        return cls(d[0:4], int.from_bytes(d[4:6], "big"), int.from_bytes(d[6:10], "big"), d[10],
                   d[11:15], d[15:18], d[18], d[19], factors)


@dataclass(frozen=True)
class InitSamResponse:
    terminal_seq: int
    mac1: bytes

    def encode(self) -> bytes:
        if not 0 <= self.terminal_seq <= 0xFFFFFFFF or len(self.mac1) != 4:
            raise FormatError("INIT SAM FOR PURCHASE response: termSeq(4) MAC1(4)")
        return self.terminal_seq.to_bytes(4, "big") + self.mac1

    @classmethod
    def decode(cls, raw: bytes) -> InitSamResponse:
        if len(raw) != 8:
            raise FormatError(f"INIT SAM FOR PURCHASE response: expected 8 bytes, got {len(raw)}")
        return cls(int.from_bytes(raw[:4], "big"), raw[4:])


def credit_sam_for_purchase(mac2: bytes) -> CommandAPDU:
    """80 72 00 00 04 MAC2: the PSAM verifies the card's MAC2."""
    if len(mac2) != 4:
        raise FormatError(f"MAC2 must be 4 bytes, got {len(mac2)}")
    return CommandAPDU(0x80, INS_CREDIT_SAM_PURCHASE, 0x00, 0x00, mac2)


@dataclass(frozen=True)
class InitDescrypt:
    """80 1A usage index Lc factors: starts a session key (reference §8).

    The key usage byte: low 5 bits the key type, high 3 bits the number of
    diversification levels (0x42: purchase, 2 levels).
    """

    @property
    def levels(self) -> int:
        return self.usage >> 5

    usage: int
    key_index: int
    factors: tuple[bytes, ...]

    def to_apdu(self) -> CommandAPDU:
        if any(len(f) != 8 for f in self.factors):
            raise FormatError("80 1A: factors must be 8 bytes each")
        if not (0 <= self.usage <= 0xFF and 0 <= self.key_index <= 0xFF):
            raise FormatError("80 1A: key usage and index are one byte each")
        return CommandAPDU(0x80, INS_INIT_DESCRYPT, self.usage, self.key_index, b"".join(self.factors))

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> InitDescrypt:
        if cmd.cla != 0x80 or cmd.ins != INS_INIT_DESCRYPT or len(cmd.data) % 8:
            raise FormatError("80 1A: data must be 8 bytes per level")
        return cls(cmd.p1, cmd.p2, tuple(cmd.data[i : i + 8] for i in range(0, len(cmd.data), 8)))


def encrypt_data(data: bytes) -> CommandAPDU:
    """80 FA 00 00 Lc data Le: ECB with the session key."""
    return CommandAPDU(0x80, INS_DESCRYPT, P1_ENCRYPT, 0x00, data, len(data))


def mac_data(iv: bytes, data: bytes) -> CommandAPDU:
    """80 FA 05 00 Lc IV(8) data 04: a 4-byte MAC with the session key."""
    if len(iv) != 8:
        raise FormatError(f"MAC IV must be 8 bytes, got {len(iv)}")
    return CommandAPDU(0x80, INS_DESCRYPT, P1_MAC, 0x00, iv + data, 4)
