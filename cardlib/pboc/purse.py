"""Wire formats of the transit purse commands: PBOC EP/ED (JR/T 0025.2, the
e-purse application's commands) as the T-Union purse (JT/T 978) uses them.

Every command data field and response is a declaration (cardlib/wire.py)
with its vectors: public bytes where a published worked example or field
trace shows them, else hand-packed *own* bytes. Each command is a frozen
value with ``to_apdu()`` and ``from_apdu()``; each response has ``encode()``
and ``decode()``. The terminal sends them, the simulated card parses and
answers them: one definition for both.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import Bytes, Int8ub, Int16ub, Int24ub, Int32sb, Int32ub, Struct

from cardlib.apdu import CommandAPDU
from cardlib.declared import Command, Encoded, declared, expect_command, wire
from cardlib.errors import FormatError
from cardlib.iso import read_binary, read_record, select_aid, select_fid
from cardlib.pboc.fci import purse_fci as purse_fci  # the FCI is declared with the files
from cardlib.pboc.files import (
    CAPP_SFI,
    LOG_SFI,
    MANAGEMENT_SFI,
    PUBLIC_SFI,
    TRIP_SFI,
    TransactionRecord,
    TripRecord,
)
from cardlib.wire import Vector, declare

PURSE_AID = bytes.fromhex("A000000632010105")
PURSE_DF = 0x1001
CLA_PURSE = 0x80
CLA_SECURE = 0x84

INS_INITIALIZE = 0x50
INS_CREDIT = 0x52
INS_DEBIT = 0x54
INS_PROVE = 0x5A
INS_GET_BALANCE = 0x5C
INS_UPDATE_CAPP = 0xDC
INS_APP_BLOCK = 0x1E
INS_APP_UNBLOCK = 0x18

P1_LOAD = 0x00
P1_PURCHASE = 0x01
P1_CAPP = 0x03
P2_EP = 0x02
P2_ED = 0x01
BALANCE_P1 = (0x00, 0x03)  # 00 including the overdraft, 03 excluding it
BALANCE_MASK = 0x7FFFFFFF


#: The standard every declaration here follows; each names its command.
EP = "JR/T 0025.2 (PBOC e-purse/e-passbook application), JT/T 978 (T-Union)"
#: Public worked examples of a purchase and a load (the same bytes are published on several sites).
PURCHASE_EXAMPLE = "public: PBOC EP purchase worked example, https://www.cnblogs.com/ttss/p/4280430.html"
LOAD_EXAMPLE = "public: PBOC EP load worked example, http://www.ncuisine.com/xingyexinwen/379.html"
H = bytes.fromhex

INITIALIZE = declare(
    "purse.initialize", Struct("key_index" / Int8ub, "amount" / Int32ub, "terminal_id" / Bytes(6)),
    cite=f"{EP}: INITIALIZE FOR PURCHASE / LOAD (80 50), command data",
    vectors=(Vector(H("01 00001000 001122334455"), {"key_index": 1, "amount": 0x1000, "terminal_id": H("001122334455")},
                    PURCHASE_EXAMPLE),),
)
BALANCE = declare(
    "purse.get_balance.response", Struct("balance" / Int32sb),
    cite=f"{EP}: GET BALANCE (80 5C), response data; two's complement below zero is the project's profile",
    vectors=(Vector(H("00001000"), {"balance": 0x1000}, "own: hand-packed, 40.96 yuan"),
             Vector(H("FFFFFF9C"), {"balance": -100}, "own: hand-packed, 1 yuan into the overdraft")),
)


def _expect(cmd: CommandAPDU, ins: int, what: str) -> None:
    expect_command(cmd, CLA_PURSE, ins, what)


def balance4(value: int) -> bytes:
    """A balance on the wire: 4 bytes, two's complement (negative = overdraft in use)."""
    return BALANCE.pack(value)


def select_purse(fci: bool = True) -> CommandAPDU:
    """SELECT the purse by AID (ISO 7816-4 SELECT by DF name); the FCI carries 0x15 in tag 9F0C."""
    return select_aid(PURSE_AID, fci)


def select_purse_df() -> CommandAPDU:
    """The alternative path: SELECT 3F00 first, then this (DF 1001)."""
    return select_fid(PURSE_DF, p1=0x00)


def read_public() -> CommandAPDU:
    """00 B0 95 00 1E: file 0x15."""
    return read_binary(0, 30, sfi=PUBLIC_SFI)


def read_management() -> CommandAPDU:
    """00 B0 97 00 3C: file 0x17."""
    return read_binary(0, 60, sfi=MANAGEMENT_SFI)


def read_log(number: int = 1) -> CommandAPDU:
    """00 B2 nn C4 17: record nn of the 0x18 log (1 = newest)."""
    return read_record(number, sfi=LOG_SFI, le=TransactionRecord.SIZE)


def read_trip(number: int = 1) -> CommandAPDU:
    """00 B2 nn F4 30: record nn of the 0x1E trip log (1 = newest)."""
    return read_record(number, sfi=TRIP_SFI, le=TripRecord.SIZE)


@dataclass(frozen=True)
class GetBalance:
    """80 5C P1 02 04. P1 00 includes the overdraft, 03 excludes it (a public
    Shanghai gate's comment, docs/protocol.md); 00 is the baseline, configurable."""

    p1: int = 0x00
    p2: int = P2_EP

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(CLA_PURSE, INS_GET_BALANCE, self.p1, self.p2, le=4)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> GetBalance:
        _expect(cmd, INS_GET_BALANCE, "GET BALANCE")
        if cmd.data:
            raise FormatError(f"GET BALANCE: no data expected, got {len(cmd.data)} bytes")
        return cls(cmd.p1, cmd.p2)


def encode_balance(balance: int) -> bytes:
    """The card's answer: two's complement, so a purse in overdraft sets the top bit."""
    return BALANCE.pack(balance)


def decode_balance(raw: bytes, *, signed: bool = False) -> int:
    """Baseline: bits 0..30 of the 4-byte answer (the top bit is no balance a
    3DES-era card reaches). ``signed`` reads it as two's complement instead, for
    a purse that may be in overdraft."""
    balance: int = BALANCE.unpack(raw)[0]
    return balance if signed else balance & BALANCE_MASK


def _initialize(p1: int, key_index: int, amount: int, terminal_id: bytes, le: int) -> CommandAPDU:
    return CommandAPDU(CLA_PURSE, INS_INITIALIZE, p1, P2_EP, INITIALIZE.pack(key_index, amount, terminal_id), le)


def _initialized(cmd: CommandAPDU, p1: tuple[int, ...], what: str) -> tuple[int, int, bytes]:
    """INITIALIZE's data, once P1 says it is ``what``."""
    _expect(cmd, INS_INITIALIZE, f"INITIALIZE FOR {what.upper()}")
    if cmd.p1 not in p1:
        raise FormatError(f"INITIALIZE: P1 {cmd.p1:02X} is not a {what}")
    key_index, amount, terminal_id = INITIALIZE.unpack(cmd.data)
    return key_index, amount, terminal_id


@dataclass(frozen=True)
class InitializeForLoad:
    """80 50 00 02 0B … 10."""

    key_index: int
    amount: int
    terminal_id: bytes

    def to_apdu(self) -> CommandAPDU:
        return _initialize(P1_LOAD, self.key_index, self.amount, self.terminal_id, 0x10)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> InitializeForLoad:
        return cls(*_initialized(cmd, (P1_LOAD,), "load"))


@declared("purse.initialize_load.response", vectors=(
    Vector(H("00000000 0000 02 00 11223344 2988AE5A"),
           {"balance": 0, "online_seq": 0, "key_version": 2, "alg_id": 0, "random": H("11223344"),
            "mac1": H("2988AE5A")}, LOAD_EXAMPLE),
    Vector(H("00000000 0000 01 00 B1EE180C F20B5E52"),
           {"balance": 0, "online_seq": 0, "key_version": 1, "alg_id": 0, "random": H("B1EE180C"),
            "mac1": H("F20B5E52")}, "public: PBOC EP load trace, https://e-com-net.com/article/5815544.htm"),
), cite=f"{EP}: INITIALIZE FOR LOAD, response data (balance two's complement: the project's reading of overdraft)")
class InitializeForLoadResponse(Encoded):
    """The card's state before the load and its MAC1, for the host."""

    balance: int = wire(Int32sb)
    online_seq: int = wire(Int16ub)
    key_version: int = wire(Int8ub)
    alg_id: int = wire(Int8ub)
    random: bytes = wire(Bytes(4))
    mac1: bytes = wire(Bytes(4))


@declared("purse.credit_for_load", cite=f"{EP}: CREDIT FOR LOAD (80 52), command data", vectors=(
    Vector(H("20111221 214822 3A845BF0"), {"date": H("20111221"), "time": H("214822"), "mac2": H("3A845BF0")},
           LOAD_EXAMPLE),
))
class CreditForLoad(Command, header=(CLA_PURSE, INS_CREDIT, 0x00, 0x00), le=4):
    date: bytes = wire(Bytes(4))
    time: bytes = wire(Bytes(3))
    mac2: bytes = wire(Bytes(4))


@declared("purse.credit_for_load.response", cite=f"{EP}: CREDIT FOR LOAD, response data", vectors=(
    Vector(H("78644D7B"), {"tac": H("78644D7B")}, "own: hand-packed, the load TAC of tests/cardlib/test_macs.py"),
))
class CreditResponse(Encoded):
    """The load's TAC."""

    tac: bytes = wire(Bytes(4))


@dataclass(frozen=True)
class InitializeForPurchase:
    """80 50 01 02 (purchase) or 80 50 03 02 (CAPP purchase) 0B … 0F."""

    key_index: int
    amount: int
    terminal_id: bytes
    capp: bool = False

    def to_apdu(self) -> CommandAPDU:
        return _initialize(P1_CAPP if self.capp else P1_PURCHASE, self.key_index, self.amount, self.terminal_id, 0x0F)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> InitializeForPurchase:
        return cls(*_initialized(cmd, (P1_PURCHASE, P1_CAPP), "purchase"), cmd.p1 == P1_CAPP)


@declared("purse.initialize_purchase.response", vectors=(
    Vector(H("00000000 0000 000000 01 00 11223344"),
           {"balance": 0, "offline_seq": 0, "overdraft_limit": 0, "key_version": 1, "alg_id": 0,
            "random": H("11223344")}, PURCHASE_EXAMPLE),
    Vector(H("FFFFFF9C 0102 0003E8 02 04 A1B2C3D4"),
           {"balance": -100, "offline_seq": 0x0102, "overdraft_limit": 1000, "key_version": 2, "alg_id": 4,
            "random": H("A1B2C3D4")}, "own: hand-packed, a purse 1 yuan into a 10 yuan overdraft, SM4 alg id"),
), cite=f"{EP}: INITIALIZE FOR PURCHASE / CAPP PURCHASE, response data")
class InitializeForPurchaseResponse(Encoded):
    """The card's state before the purchase and its random, for the PSAM's MAC1."""

    balance: int = wire(Int32sb)
    offline_seq: int = wire(Int16ub)
    overdraft_limit: int = wire(Int24ub)
    key_version: int = wire(Int8ub)
    alg_id: int = wire(Int8ub)
    random: bytes = wire(Bytes(4))


@dataclass(frozen=True)
class UpdateCappDataCache:
    """80 DC P1 P2 Lc record, cached by the card until the DEBIT of the same session.

    0x1A: ``80 DC id2 D0 80`` + the record keyed ``27 id2`` (P1 = the record id's
    second byte, as public gate code sends it: fengyuruhui98/File,
    sh_transport_operation.c). 0x1E: ``80 DC 00 F0 30`` + a 48-byte transit record
    appended to the cyclic file (public gate and reader code, docs/protocol.md);
    ``record_id`` is 0 there. The records themselves are declared in
    cardlib/pboc/files.py and capp.py.
    """

    record_id: int
    record: bytes
    sfi: int = CAPP_SFI

    def to_apdu(self) -> CommandAPDU:
        if not 0 < len(self.record) <= 255:
            raise FormatError(f"CAPP record of {len(self.record)} bytes")
        if self.sfi == TRIP_SFI:
            if len(self.record) != TripRecord.SIZE:
                raise FormatError(f"0x1E record must be {TripRecord.SIZE} bytes, got {len(self.record)}")
            return CommandAPDU(CLA_PURSE, INS_UPDATE_CAPP, 0x00, TRIP_SFI << 3, self.record)
        if self.sfi != CAPP_SFI:
            raise FormatError(f"UPDATE CAPP DATA CACHE: SFI {self.sfi:02X} is neither 1A nor 1E")
        if self.record_id >> 8 != 0x27:
            raise FormatError(f"CAPP record id {self.record_id:04X} must be 27xx")
        return CommandAPDU(CLA_PURSE, INS_UPDATE_CAPP, self.record_id & 0xFF, CAPP_SFI << 3, self.record)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> UpdateCappDataCache:
        _expect(cmd, INS_UPDATE_CAPP, "UPDATE CAPP DATA CACHE")
        if not cmd.data:
            raise FormatError("UPDATE CAPP DATA CACHE: no record")
        if cmd.p2 == TRIP_SFI << 3:
            if cmd.p1 != 0x00 or len(cmd.data) != TripRecord.SIZE:
                raise FormatError(f"UPDATE CAPP DATA CACHE: a 0x1E record is P1 00 and {TripRecord.SIZE} bytes")
            return cls(0, cmd.data, TRIP_SFI)
        if cmd.p2 != CAPP_SFI << 3:
            raise FormatError(f"UPDATE CAPP DATA CACHE: P2 {cmd.p2:02X}, expected {CAPP_SFI << 3:02X} or "
                              f"{TRIP_SFI << 3:02X}")
        return cls(0x2700 | cmd.p1, cmd.data)


@declared("purse.debit_for_purchase", cite=f"{EP}: DEBIT FOR PURCHASE / CAPP PURCHASE (80 54), command data",
          vectors=(
    Vector(H("00000001 20111221 214822 3A845BF0"),
           {"terminal_seq": 1, "date": H("20111221"), "time": H("214822"), "mac1": H("3A845BF0")}, PURCHASE_EXAMPLE),
))
class DebitForPurchase(Command, header=(CLA_PURSE, INS_DEBIT, 0x01, 0x00), le=8):
    terminal_seq: int = wire(Int32ub)
    date: bytes = wire(Bytes(4))
    time: bytes = wire(Bytes(3))
    mac1: bytes = wire(Bytes(4))


@declared("purse.debit_for_purchase.response", cite=f"{EP}: DEBIT FOR PURCHASE, response data (TAC, then MAC2)",
          vectors=(
    Vector(H("926FF1B6 56988A13"), {"tac": H("926FF1B6"), "mac2": H("56988A13")},
           "own: hand-packed, the TAC and MAC2 of tests/cardlib/test_macs.py"),
))
class DebitResponse(Encoded):
    """TAC ‖ MAC2 (the order DEBIT uses)."""

    tac: bytes = wire(Bytes(4))
    mac2: bytes = wire(Bytes(4))


@declared("purse.get_transaction_prove", vectors=(
    Vector(H("0006"), {"seq": 6}, "own: hand-packed, the counter 0005 plus one"),
), cite=f"{EP}: GET TRANSACTION PROVE (80 5A), command data; the counter after the transaction as public "
        "field code sends it (AndroidZM233/Pos80_SDK_GongJiao, ZJBCardManager.java)")
class GetTransactionProve(Command, header=(CLA_PURSE, INS_PROVE, 0x00, "tx_type"), le=8):
    """80 5A 00 type 02 seq 08: ``seq`` is the card's counter *after* the proved
    transaction — the value INITIALIZE returned plus one (:func:`prove_seq`), as
    public field code sends it (AndroidZM233/Pos80_SDK_GongJiao; docs/protocol.md).
    The card answers for its most recent transaction only, 9406 otherwise."""

    tx_type: int  # P2
    seq: int = wire(Int16ub)


def prove_seq(initialize_seq: int) -> int:
    """The sequence number GET TRANSACTION PROVE takes for a transaction whose
    INITIALIZE returned ``initialize_seq``: the counter after it."""
    return (initialize_seq + 1) & 0xFFFF


#: P2 of GET TRANSACTION PROVE by the type of the torn transaction; a composite
#: purchase's P2 is 09 by default, 06 where the field sends that (configurable).
PROVE_P2 = {0x02: 0x02, 0x06: 0x06, 0x09: 0x09}


@declared("purse.get_transaction_prove.response", vectors=(
    Vector(H("56988A13 926FF1B6"), {"mac": H("56988A13"), "tac": H("926FF1B6")},
           "own: hand-packed, DEBIT's answer in PROVE's order"),
), cite=f"{EP}: GET TRANSACTION PROVE, response data (MAC or MAC2, then TAC)")
class ProveResponse(Encoded):
    """MAC ‖ TAC (the reverse of DEBIT's order)."""

    mac: bytes = wire(Bytes(4))
    tac: bytes = wire(Bytes(4))


class _LineMacCommand(Command):
    """A command whose data is the line MAC (the project's profile): computed over its
    header and Lc, from the header the command itself sends."""

    def mac_input(self) -> bytes:
        return self.to_apdu().header() + bytes((self.SIZE,))


@declared("purse.application_block", vectors=(
    Vector(H("0A0B0C0D"), {"mac": H("0A0B0C0D")}, "own: hand-packed"),
), cite=f"{EP}: APPLICATION BLOCK (84 1E), command data (the line MAC)")
class ApplicationBlock(_LineMacCommand, header=(CLA_SECURE, INS_APP_BLOCK, 0x00, "p2")):
    """84 1E 00 P2 04 MAC; P2 00 temporary, 01 permanent (JR/T 0025.2 APPLICATION BLOCK)."""

    p2: int
    mac: bytes = wire(Bytes(4), default=bytes(4))

    def __post_init__(self) -> None:
        if self.p2 not in (0, 1):
            raise FormatError(f"APPLICATION BLOCK: P2 {self.p2:02X} (00 temporary, 01 permanent)")

    @classmethod
    def of(cls, permanent: bool, mac: bytes = bytes(4)) -> ApplicationBlock:
        return cls(0x01 if permanent else 0x00, mac)

    @property
    def permanent(self) -> bool:
        return self.p2 == 0x01


@declared("purse.application_unblock", vectors=(
    Vector(H("0A0B0C0D"), {"mac": H("0A0B0C0D")}, "own: hand-packed"),
), cite=f"{EP}: APPLICATION UNBLOCK (84 18), command data (the line MAC)")
class ApplicationUnblock(_LineMacCommand, header=(CLA_SECURE, INS_APP_UNBLOCK, 0x00, 0x00)):
    """84 18 00 00 04 MAC: lifts a temporary block."""

    mac: bytes = wire(Bytes(4), default=bytes(4))
