"""Wire formats of the PSAM (terminal security module): INIT SAM FOR PURCHASE
and CREDIT SAM FOR PURCHASE as JT/T 978's PSAM takes them, and the generic
commands 80 1A / 80 FA, which are the project's profile (no public definition).
Each data field and response is a declaration (cardlib/wire.py) with its vectors."""

from __future__ import annotations

from typing import Self

from construct import Bytes, GreedyBytes, GreedyRange, Int8ub, Int16ub, Int32ub, Struct

from cardlib.apdu import CommandAPDU
from cardlib.declared import Command, Encoded, declared, wire
from cardlib.errors import FormatError
from cardlib.iso import read_binary, select_aid
from cardlib.keys import purse_factors
from cardlib.wire import Vector, declare

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


PSAM = "JT/T 978 PSAM (T-Union terminal security module), after JR/T 0025.2's purchase flow"
PROFILE = "the project's profile: the PSAM's generic commands (no public definition found)"
H = bytes.fromhex

CREDIT_SAM = declare(
    "psam.credit_sam_for_purchase", Struct("mac2" / Bytes(4)),
    cite=f"{PSAM}: CREDIT SAM FOR PURCHASE (80 72), command data (the card's MAC2)",
    vectors=(Vector(H("56988A13"), {"mac2": H("56988A13")}, "own: hand-packed, the purchase worked example's MAC2"),),
)
MAC_DATA = declare(
    "psam.descrypt_mac", Struct("iv" / Bytes(8), "data" / GreedyBytes),
    cite=f"{PROFILE}: 80 FA 05 00, a 4-byte MAC of the data with the session key from the IV",
    vectors=(Vector(H("1122334400000000 8418000004"), {"iv": H("1122334400000000"), "data": H("8418000004")},
                    "own: hand-packed, an APPLICATION UNBLOCK's MAC input after a card challenge"),),
)


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


@declared("psam.init_sam_for_purchase", vectors=(
    Vector(H("11223344 0000 00001000 06 20120229 135100 01 00 5170010170907984 01011000FFFFFFFF"),
           {"card_random": H("11223344"), "card_seq": 0, "amount": 0x1000, "tx_type": 6,
            "date": H("20120229"), "time": H("135100"), "key_version": 1, "alg_id": 0,
            "factors": [H("5170010170907984"), H("01011000FFFFFFFF")]},
           "own: hand-packed, the purchase worked example's fields with a public card's serial and issuer"),
), cite=f"{PSAM}: INIT SAM FOR PURCHASE (80 70), command data, Lc = 0x14 + 8·N; the factors card level first")
class InitSamForPurchase(Command, header=(0x80, INS_INIT_SAM_PURCHASE, 0x00, 0x00), le=8):
    """80 70 00 00 Lc data 08; the factors card first (as 8070 lists them)."""

    card_random: bytes = wire(Bytes(4))
    card_seq: int = wire(Int16ub)
    amount: int = wire(Int32ub)
    tx_type: int = wire(Int8ub)
    date: bytes = wire(Bytes(4))
    time: bytes = wire(Bytes(3))
    key_version: int = wire(Int8ub)
    alg_id: int = wire(Int8ub)
    factors: tuple[bytes, ...] = wire(GreedyRange(Bytes(8)))

    def to_apdu(self) -> CommandAPDU:
        if not self.factors:
            raise FormatError("INIT SAM FOR PURCHASE: at least one factor")
        return super().to_apdu()

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> Self:
        request = super().from_apdu(cmd)
        if not request.factors:
            raise FormatError("INIT SAM FOR PURCHASE: Lc 20 is not 0x14 + 8·N with N ≥ 1")
        return request


@declared("psam.init_sam_for_purchase.response", cite=f"{PSAM}: INIT SAM FOR PURCHASE, response data "
          "(terminal counter, MAC1)", vectors=(
    Vector(H("00000001 F15CAB75"), {"terminal_seq": 1, "mac1": H("F15CAB75")},
           "own: hand-packed, the purchase worked example's counter and MAC1"),
))
class InitSamResponse(Encoded):
    terminal_seq: int = wire(Int32ub)
    mac1: bytes = wire(Bytes(4))


def credit_sam_for_purchase(mac2: bytes) -> CommandAPDU:
    """80 72 00 00 04 MAC2: the PSAM verifies the card's MAC2."""
    return CommandAPDU(0x80, INS_CREDIT_SAM_PURCHASE, 0x00, 0x00, CREDIT_SAM.pack(mac2))


@declared("psam.init_descrypt", vectors=(
    Vector(H("5170010170907984 01011000FFFFFFFF"),
           {"factors": [H("5170010170907984"), H("01011000FFFFFFFF")]}, "own: hand-packed, two levels"),
    Vector(b"", {"factors": []}, "own: no diversification"),
), cite=f"{PROFILE}: 80 1A usage index, the diversification factors 8 bytes each")
class InitDescrypt(Command, header=(0x80, INS_INIT_DESCRYPT, "usage", "key_index")):
    """80 1A usage index Lc factors: starts a session key (the project's profile).

    The key usage byte: low 5 bits the key type, high 3 bits the number of
    diversification levels (0x42: purchase, 2 levels).
    """

    usage: int  # P1
    key_index: int  # P2
    factors: tuple[bytes, ...] = wire(GreedyRange(Bytes(8)))

    @property
    def levels(self) -> int:
        return self.usage >> 5


def encrypt_data(data: bytes) -> CommandAPDU:
    """80 FA 00 00 Lc data Le: ECB with the session key."""
    return CommandAPDU(0x80, INS_DESCRYPT, P1_ENCRYPT, 0x00, data, len(data))


def mac_data(iv: bytes, data: bytes) -> CommandAPDU:
    """80 FA 05 00 Lc IV(8) data 04: a 4-byte MAC with the session key."""
    return CommandAPDU(0x80, INS_DESCRYPT, P1_MAC, 0x00, MAC_DATA.build(iv=iv, data=data), 4)
