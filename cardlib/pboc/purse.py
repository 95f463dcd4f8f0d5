"""Wire formats of the transit purse commands (PBOC EP / JT/T 978; reference §1, §8).

Each command is a frozen value with ``to_apdu()`` and ``from_apdu()``; each
response has ``encode()`` and ``decode()``. The terminal sends them, the
simulated card parses and answers them: one definition for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cardlib.apdu import CommandAPDU
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


def _expect(cmd: CommandAPDU, ins: int, lc: int | None, what: str, cla: int = CLA_PURSE) -> None:
    if cmd.cla != cla or cmd.ins != ins:
        raise FormatError(f"{what}: not this command ({cmd.cla:02X} {cmd.ins:02X})")
    if lc is not None and len(cmd.data) != lc:
        raise FormatError(f"{what}: data must be {lc} bytes, got {len(cmd.data)}")


def _size(raw: bytes, n: int, what: str) -> bytes:
    if len(raw) != n:
        raise FormatError(f"{what}: expected {n} bytes, got {len(raw)}")
    return raw


def _u(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _terminal(tid: bytes) -> bytes:
    if len(tid) != 6:
        raise FormatError(f"terminal number must be 6 bytes, got {len(tid)}")
    return tid


def _amount(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise FormatError(f"amount {value} out of range")
    return value.to_bytes(4, "big")


def _uint(value: int, size: int, what: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise FormatError(f"{what} {value} does not fit in {size} byte(s)")
    return value.to_bytes(size, "big")


def balance4(value: int) -> bytes:
    """A balance on the wire: 4 bytes, two's complement (negative = overdraft in use)."""
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        raise FormatError(f"balance {value} out of range")
    return value.to_bytes(4, "big", signed=True)


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def select_purse(fci: bool = True) -> CommandAPDU:
    """SELECT the purse by AID (reference §1); the FCI carries 0x15 in tag 9F0C."""
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
    Shanghai gate's comment; reference §1); 00 is the baseline, configurable."""

    p1: int = 0x00
    p2: int = P2_EP

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(CLA_PURSE, INS_GET_BALANCE, self.p1, self.p2, le=4)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> GetBalance:
        _expect(cmd, INS_GET_BALANCE, 0, "GET BALANCE")
        return cls(cmd.p1, cmd.p2)


def encode_balance(balance: int) -> bytes:
    """The card's answer: two's complement, so a purse in overdraft sets the top bit."""
    return balance4(balance)


def decode_balance(raw: bytes, *, signed: bool = False) -> int:
    """Baseline: bits 0..30 of the 4-byte answer (reference §1). ``signed`` reads it as
    two's complement instead, for a purse that may be in overdraft."""
    r = _size(raw, 4, "GET BALANCE response")
    return _signed(r) if signed else _u(r) & BALANCE_MASK


@dataclass(frozen=True)
class InitializeForLoad:
    key_index: int
    amount: int
    terminal_id: bytes

    def to_apdu(self) -> CommandAPDU:
        data = _uint(self.key_index, 1, "key index") + _amount(self.amount) + _terminal(self.terminal_id)
        return CommandAPDU(CLA_PURSE, INS_INITIALIZE, P1_LOAD, P2_EP, data, 0x10)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> InitializeForLoad:
        _expect(cmd, INS_INITIALIZE, 11, "INITIALIZE FOR LOAD")
        if cmd.p1 != P1_LOAD:
            raise FormatError(f"INITIALIZE: P1 {cmd.p1:02X} is not a load")
        return cls(cmd.data[0], _u(cmd.data[1:5]), cmd.data[5:11])


@dataclass(frozen=True)
class InitializeForLoadResponse:
    balance: int
    online_seq: int
    key_version: int
    alg_id: int
    random: bytes
    mac1: bytes

    SIZE: ClassVar[int] = 16

    def encode(self) -> bytes:
        return (balance4(self.balance) + _uint(self.online_seq, 2, "online seq")
                + _uint(self.key_version, 1, "key version") + _uint(self.alg_id, 1, "alg id")
                + _size(self.random, 4, "random") + _size(self.mac1, 4, "MAC1"))

    @classmethod
    def decode(cls, raw: bytes) -> InitializeForLoadResponse:
        r = _size(raw, cls.SIZE, "INITIALIZE FOR LOAD response")
        return cls(_signed(r[0:4]), _u(r[4:6]), r[6], r[7], r[8:12], r[12:16])


@dataclass(frozen=True)
class CreditForLoad:
    date: bytes
    time: bytes
    mac2: bytes

    def to_apdu(self) -> CommandAPDU:
        data = _size(self.date, 4, "date") + _size(self.time, 3, "time") + _size(self.mac2, 4, "MAC2")
        return CommandAPDU(CLA_PURSE, INS_CREDIT, 0x00, 0x00, data, 4)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> CreditForLoad:
        _expect(cmd, INS_CREDIT, 11, "CREDIT FOR LOAD")
        return cls(cmd.data[0:4], cmd.data[4:7], cmd.data[7:11])


@dataclass(frozen=True)
class InitializeForPurchase:
    """80 50 01 02 (purchase) or 80 50 03 02 (CAPP purchase)."""

    key_index: int
    amount: int
    terminal_id: bytes
    capp: bool = False

    def to_apdu(self) -> CommandAPDU:
        data = _uint(self.key_index, 1, "key index") + _amount(self.amount) + _terminal(self.terminal_id)
        # checked above: 11 bytes (bytes first, so bytes), the rest constants
        return CommandAPDU(CLA_PURSE, INS_INITIALIZE, P1_CAPP if self.capp else P1_PURCHASE, P2_EP, data, 0x0F)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> InitializeForPurchase:
        _expect(cmd, INS_INITIALIZE, 11, "INITIALIZE FOR PURCHASE")
        if cmd.p1 not in (P1_PURCHASE, P1_CAPP):
            raise FormatError(f"INITIALIZE: P1 {cmd.p1:02X} is not a purchase")
        return cls(cmd.data[0], _u(cmd.data[1:5]), cmd.data[5:11], cmd.p1 == P1_CAPP)


@dataclass(frozen=True)
class InitializeForPurchaseResponse:
    balance: int
    offline_seq: int
    overdraft_limit: int
    key_version: int
    alg_id: int
    random: bytes

    SIZE: ClassVar[int] = 15

    def encode(self) -> bytes:
        return (balance4(self.balance) + _uint(self.offline_seq, 2, "offline seq")
                + _uint(self.overdraft_limit, 3, "overdraft limit") + _uint(self.key_version, 1, "key version")
                + _uint(self.alg_id, 1, "alg id") + _size(self.random, 4, "random"))

    @classmethod
    def decode(cls, raw: bytes) -> InitializeForPurchaseResponse:
        r = _size(raw, cls.SIZE, "INITIALIZE FOR PURCHASE response")
        return cls(_signed(r[0:4]), _u(r[4:6]), _u(r[6:9]), r[9], r[10], r[11:15])


@dataclass(frozen=True)
class UpdateCappDataCache:
    """80 DC P1 P2 Lc record, cached by the card until the DEBIT of the same session.

    0x1A: ``80 DC id2 D0 80`` + the record keyed ``27 id2`` (P1 = the record id's
    second byte, as public gate code sends it; reference §8). 0x1E: ``80 DC 00 F0
    30`` + a 48-byte transit record appended to the cyclic file (public gate and
    reader code, docs/protocol.md); ``record_id`` is 0 there.
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
        _expect(cmd, INS_UPDATE_CAPP, None, "UPDATE CAPP DATA CACHE")
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


@dataclass(frozen=True)
class DebitForPurchase:
    terminal_seq: int
    date: bytes
    time: bytes
    mac1: bytes

    def to_apdu(self) -> CommandAPDU:
        data = (_uint(self.terminal_seq, 4, "terminal seq") + _size(self.date, 4, "date")
                + _size(self.time, 3, "time") + _size(self.mac1, 4, "MAC1"))
        return CommandAPDU(CLA_PURSE, INS_DEBIT, 0x01, 0x00, data, 8)  # 15 bytes, checked above

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> DebitForPurchase:
        _expect(cmd, INS_DEBIT, 15, "DEBIT FOR PURCHASE")
        return cls(_u(cmd.data[0:4]), cmd.data[4:8], cmd.data[8:11], cmd.data[11:15])


@dataclass(frozen=True)
class DebitResponse:
    """TAC ‖ MAC2 (the order DEBIT uses)."""

    tac: bytes
    mac2: bytes

    def encode(self) -> bytes:
        return _size(self.tac, 4, "TAC") + _size(self.mac2, 4, "MAC2")

    @classmethod
    def decode(cls, raw: bytes) -> DebitResponse:
        r = _size(raw, 8, "DEBIT response")
        return cls(r[:4], r[4:])


@dataclass(frozen=True)
class GetTransactionProve:
    """80 5A 00 type 02 seq 08: ``seq`` is the card's counter *after* the proved
    transaction — the value INITIALIZE returned plus one (:func:`prove_seq`), as
    public field code sends it (reference §5, §8; docs/protocol.md). The card
    answers for its most recent transaction only, 9406 otherwise."""

    tx_type: int
    seq: int

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(CLA_PURSE, INS_PROVE, 0x00, _uint(self.tx_type, 1, "transaction type")[0],
                           _uint(self.seq, 2, "card seq"), 8)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> GetTransactionProve:
        _expect(cmd, INS_PROVE, 2, "GET TRANSACTION PROVE")
        return cls(cmd.p2, _u(cmd.data))


def prove_seq(initialize_seq: int) -> int:
    """The sequence number GET TRANSACTION PROVE takes for a transaction whose
    INITIALIZE returned ``initialize_seq``: the counter after it."""
    return (initialize_seq + 1) & 0xFFFF


#: P2 of GET TRANSACTION PROVE by the type of the torn transaction; a composite
#: purchase's P2 is 09 by default, 06 where the field sends that (configurable).
PROVE_P2 = {0x02: 0x02, 0x06: 0x06, 0x09: 0x09}


@dataclass(frozen=True)
class ProveResponse:
    """MAC ‖ TAC (the reverse of DEBIT's order)."""

    mac: bytes
    tac: bytes

    def encode(self) -> bytes:
        return _size(self.mac, 4, "MAC") + _size(self.tac, 4, "TAC")

    @classmethod
    def decode(cls, raw: bytes) -> ProveResponse:
        r = _size(raw, 8, "GET TRANSACTION PROVE response")
        return cls(r[:4], r[4:])


@dataclass(frozen=True)
class ApplicationBlock:
    """84 1E 00 P2 04 MAC; P2 00 temporary, 01 permanent (reference §8)."""

    permanent: bool
    mac: bytes = b"\x00" * 4

    @property
    def p2(self) -> int:
        return 0x01 if self.permanent else 0x00

    def mac_input(self) -> bytes:
        return bytes((CLA_SECURE, INS_APP_BLOCK, 0x00, self.p2, 0x04))

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(CLA_SECURE, INS_APP_BLOCK, 0x00, self.p2, _size(self.mac, 4, "MAC"))

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> ApplicationBlock:
        _expect(cmd, INS_APP_BLOCK, 4, "APPLICATION BLOCK", CLA_SECURE)
        if cmd.p2 not in (0, 1):
            raise FormatError(f"APPLICATION BLOCK: P2 {cmd.p2:02X} (00 temporary, 01 permanent)")
        return cls(cmd.p2 == 1, cmd.data)


@dataclass(frozen=True)
class ApplicationUnblock:
    """84 18 00 00 04 MAC: lifts a temporary block."""

    mac: bytes = b"\x00" * 4

    def mac_input(self) -> bytes:
        return bytes((CLA_SECURE, INS_APP_UNBLOCK, 0x00, 0x00, 0x04))

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(CLA_SECURE, INS_APP_UNBLOCK, 0x00, 0x00, _size(self.mac, 4, "MAC"))

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> ApplicationUnblock:
        _expect(cmd, INS_APP_UNBLOCK, 4, "APPLICATION UNBLOCK", CLA_SECURE)
        return cls(cmd.data)
