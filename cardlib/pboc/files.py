"""The files of the transit purse and the PSAM, declared once (cardlib/wire.py).

Record layouts of JT/T 978 (the T-Union user card: files 0x15 public data,
0x16 holder, 0x17 management, 0x18 transaction log, 0x1E trip records) on
the PBOC e-purse of JR/T 0025, and of the PSAM (files 0x16 terminal number
and 0x17 application data). Each declaration carries vectors: records read
from real cards where published (domosekai/cardemulator, ``HCEService.kt``,
answers of real cards to READ BINARY and READ RECORD), otherwise bytes packed
by hand. A record class is its declaration (cardlib/declared.py): each field
is written once with its type and its bytes, in the card's order.
"""

from __future__ import annotations

from datetime import date, datetime

from construct import Bytes, Int8ub, Int16ub, Int24ub, Int32ub

from cardlib.clock import BEIJING
from cardlib.declared import Encoded, declared, wire
from cardlib.errors import FormatError
from cardlib.pboc.fields import BcdDate, BcdDateTime, GbkName, Text
from cardlib.pboc.fields import bcd_date as bcd_date
from cardlib.pboc.fields import gbk_field as gbk_field
from cardlib.pboc.fields import gbk_text as gbk_text
from cardlib.pboc.fields import parse_bcd_date as parse_bcd_date
from cardlib.pboc.fields import text_bytes as text_bytes
from cardlib.pboc.macs import parse_bcd_datetime
from cardlib.wire import Vector

PUBLIC_SFI = 0x15
HOLDER_SFI = 0x16
MANAGEMENT_SFI = 0x17
LOG_SFI = 0x18
CAPP_SFI = 0x1A
TRIP_SFI = 0x1E

H = bytes.fromhex
_EMULATOR = "domosekai/cardemulator, app/src/main/java/com/domosekai/cardemulator/HCEService.kt"


def _at(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)


#: 0x15 byte 28, a plain T-Union card's type (public bus POS code: 00 ordinary, 01 elder, 11 disabled;
#: AndroidZM233/Pos80_SDK_GongJiao, JTBCardManager.getSnr)
LOCAL_CARD_TYPES = {0x00: "adult", 0x01: "elder", 0x11: "disabled"}


@declared("file 0x15", cite="JT/T 978 user card, file 0x15 public application data (30 bytes); the PBOC "
          "e-purse's 0x15 (JR/T 0025)", vectors=(
    Vector(H("01011000FFFFFFFF 02 01 03105170056789012345 20190806 20401231 0000"),
           {"issuer_id": H("01011000FFFFFFFF"), "app_type": 2, "app_version": 1,
            "app_serial": H("03105170056789012345"), "valid_from": date(2019, 8, 6),
            "valid_until": date(2040, 12, 31), "issuer_fci": H("0000")},
           f"public: {_EMULATOR}, READ BINARY 0x15 of a Beijing T-Union card"),
    Vector(H("02002900FFFFFFFF 02 01 03104770012345678901 20191224 20241224 0114"),
           {"issuer_id": H("02002900FFFFFFFF"), "app_type": 2, "app_version": 1,
            "app_serial": H("03104770012345678901"), "valid_from": date(2019, 12, 24),
            "valid_until": date(2024, 12, 24), "issuer_fci": H("0114")},
           f"public: {_EMULATOR}, READ BINARY 0x15 of a Shanghai T-Union card"),
))
class PublicData(Encoded):
    """File 0x15: public application data (30 bytes)."""

    issuer_id: bytes = wire(Bytes(8))
    app_type: int = wire(Int8ub, default=0x02, kw_only=True)
    app_version: int = wire(Int8ub, default=0x01, kw_only=True)
    app_serial: bytes = wire(Bytes(10))
    valid_from: date = wire(BcdDate)
    valid_until: date = wire(BcdDate)
    #: byte 28: the issuer's own card type (LOCAL_CARD_TYPES)
    issuer_fci: bytes = wire(Bytes(2), default=b"\x00\x00", kw_only=True)

    @property
    def local_card_type(self) -> int:
        """Byte 28, the issuer's own card type (:data:`LOCAL_CARD_TYPES`)."""
        return self.issuer_fci[0]


@declared("file 0x16", cite="JT/T 978 user card, file 0x16 card holder data (55 bytes)", vectors=(
    Vector(H("01 00 D5C5C8FD" + "00" * 16 + "333330333032313939303031303131323334" + "00" * 14 + "00"),
           {"card_type": 1, "staff": 0, "name": "张三", "id_number": "330302199001011234", "id_type": 0},
           "own: packed by hand, the name in GBK (D5C5 C8FD) and the number in ASCII, 00-padded"),
))
class HolderData(Encoded):
    """File 0x16: card holder (55 bytes)."""

    card_type: int = wire(Int8ub)
    staff: int = wire(Int8ub, default=0x00, kw_only=True)
    name: str = wire(GbkName(20))
    id_number: str = wire(Text(32))
    id_type: int = wire(Int8ub, default=0x00, kw_only=True)


#: 0x17's interoperability flag: 0000 a card of its city alone (the public cards read 0001)
INTEROPERABLE, NOT_INTEROPERABLE = b"\x00\x01", b"\x00\x00"


@declared("file 0x17", cite="JT/T 978 user card, file 0x17 management data (60 bytes)", rfu=49, vectors=(
    Vector(H("00000156 1000 1000 0001 01" + "00" * 49),
           {"country": H("00000156"), "province": H("1000"), "city": H("1000"), "interop": H("0001"),
            "card_kind": 1},
           f"public: {_EMULATOR}, READ BINARY 0x17 of a T-Union card"),
    Vector(H("01560000 3300 3303 0001 01" + "00" * 49),
           {"country": H("01560000"), "province": H("3300"), "city": H("3303"), "interop": H("0001"),
            "card_kind": 1},
           "own: packed by hand, the values this project personalises"),
))
class ManagementData(Encoded):
    """File 0x17: management data (60 bytes, the last 49 RFU)."""

    country: bytes = wire(Bytes(4), default=b"\x01\x56\x00\x00", kw_only=True)
    province: bytes = wire(Bytes(2))
    city: bytes = wire(Bytes(2))
    interop: bytes = wire(Bytes(2), default=INTEROPERABLE, kw_only=True)
    card_kind: int = wire(Int8ub, default=0x01, kw_only=True)

    @property
    def interoperable(self) -> bool:
        """Whether the card belongs to the interoperable (T-Union) network: any flag but 0000."""
        return self.interop != NOT_INTEROPERABLE


@declared("0x18 record", cite="PBOC e-purse transaction detail record (JR/T 0025), file 0x18 of JT/T 978 "
          "(23 bytes)", vectors=(
    Vector(H("0002 000000 000001F4 09 413106146723 20200902 141153"),
           {"seq": 2, "overdraft": 0, "amount": 500, "tx_type": 9, "terminal_id": H("413106146723"),
            "time": _at(2020, 9, 2, 14, 11, 53)},
           f"public: {_EMULATOR}, READ RECORD 0x18 of a Beijing T-Union card (a Hangzhou metro ride)"),
    Vector(H("0260 003D27 000000C8 09 200011505037 20201015 200019"),
           {"seq": 0x260, "overdraft": 0x3D27, "amount": 200, "tx_type": 9, "terminal_id": H("200011505037"),
            "time": _at(2020, 10, 15, 20, 0, 19)},
           f"public: {_EMULATOR}, READ RECORD 0x18 of a Shanghai T-Union card"),
))
class TransactionRecord(Encoded):
    """A 0x18 record (23 bytes): seq is the counter INITIALIZE returned."""

    seq: int = wire(Int16ub)
    #: the card's overdraft limit (PBOC's meaning; docs/protocol.md)
    overdraft: int = wire(Int24ub, default=0, kw_only=True)
    amount: int = wire(Int32ub)
    tx_type: int = wire(Int8ub)
    terminal_id: bytes = wire(Bytes(6))
    time: datetime = wire(BcdDateTime)


LOG = TransactionRecord.DECLARATION


def log_record(seq: int, amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes,
               overdraft: int = 0) -> bytes:
    """A 0x18 record from the wire's BCD date and time (the card writes what DEBIT carried)."""
    return LOG.build(seq=seq, overdraft=overdraft, amount=amount, tx_type=tx_type, terminal_id=terminal_id,
                     time=parse_bcd_datetime(date4, time3))


#: names of the 0x18 transaction types (PBOC e-purse transaction types, JR/T 0025)
TX_TYPE_NAMES = {0x01: "ED load", 0x02: "load", 0x05: "ED purchase", 0x06: "purchase", 0x09: "composite"}
#: names of the 0x1E record types (JT/T 978; the public Shanghai gate writes 03 and 04)
TRIP_ENTRY, TRIP_EXIT, TRIP_SINGLE = 0x03, 0x04, 0x06
TRIP_TYPE_NAMES = {TRIP_ENTRY: "entry", TRIP_EXIT: "exit", TRIP_SINGLE: "single ride"}
INDUSTRY_METRO, INDUSTRY_BUS = 0x01, 0x02
INDUSTRY_NAMES = {INDUSTRY_METRO: "metro", INDUSTRY_BUS: "bus", 0x03: "water", 0x04: "taxi"}


@declared("0x1E record", cite="JT/T 978 user card, file 0x1E transit trip records (48 bytes); offsets as the "
          "public Shanghai gate's, fengyuruhui98/File shapi/sh_transport_operation.c", rfu=6, vectors=(
    Vector(H("04 0000000018211503 01 00180021 000000 00000190 0000085C 20201227 140456 2900 12002900FFFFFFFF"
             "000000000000"),
           {"record_type": 4, "terminal": H("0000000018211503"), "industry": 1, "station": H("00180021"),
            "operator": H("000000"), "amount": 400, "balance": 2140, "time": _at(2020, 12, 27, 14, 4, 56),
            "city": H("2900"), "acquirer": H("12002900FFFFFFFF")},
           f"public: {_EMULATOR}, READ RECORD 0x1E of a Beijing T-Union card (exit, Shanghai metro line 18)"),
    Vector(H("03 0000001122334455 01 00010203 AABBCC 00000000 0000128E 20261128 081530 3303 0102030405060708"
             "000000000000"),
           {"record_type": 3, "terminal": H("0000001122334455"), "industry": 1, "station": H("00010203"),
            "operator": H("AABBCC"), "amount": 0, "balance": 4750, "time": _at(2026, 11, 28, 8, 15, 30),
            "city": H("3303"), "acquirer": H("0102030405060708")},
           "own: packed by hand, an entry as this project's gate writes it"),
))
class TripRecord(Encoded):
    """A 0x1E record (48 bytes, the last 6 RFU): 03/04 entry/exit, 06 single ride."""

    record_type: int = wire(Int8ub)
    terminal: bytes = wire(Bytes(8))
    industry: int = wire(Int8ub)
    station: bytes = wire(Bytes(4))  # line and station
    operator: bytes = wire(Bytes(3), default=b"\x00\x00\x00", kw_only=True)
    amount: int = wire(Int32ub)
    balance: int = wire(Int32ub)  # after the trip
    time: datetime = wire(BcdDateTime)
    city: bytes = wire(Bytes(2), default=b"\x00\x00", kw_only=True)
    acquirer: bytes = wire(Bytes(8), default=bytes(8), kw_only=True)


CAPP_RECORD_SIZE = 128


def capp_record(record_id: int, body: bytes) -> bytes:
    """A 0x1A variable record keyed by 27 xx of any body: id(2) ‖ body, 00-padded to 128
    bytes (for tests and benchmarks; gates and validators write :mod:`cardlib.pboc.capp`'s)."""
    if not 0x2701 <= record_id <= 0x2712:
        raise FormatError(f"CAPP record id {record_id:04X} outside 2701..2712")
    if len(body) > CAPP_RECORD_SIZE - 2:
        raise FormatError(f"CAPP record body of {len(body)} bytes exceeds {CAPP_RECORD_SIZE - 2}")
    return record_id.to_bytes(2, "big") + body.ljust(CAPP_RECORD_SIZE - 2, b"\x00")


@declared("PSAM file 0x16", cite="JT/T 978 PSAM, file 0x16 terminal number (6 bytes, read by 00 B0 96 00 06)",
          vectors=(
    Vector(H("000000000001"), {"terminal_id": H("000000000001")}, "own: the terminal number of this project's test PSAM"),
))
class PsamTerminal(Encoded):
    """PSAM file 0x16: the terminal number every MAC1, TAC and journal line names."""

    terminal_id: bytes = wire(Bytes(6))


@declared("PSAM file 0x17", cite="JT/T 978 PSAM, file 0x17 application data (25 bytes)", vectors=(
    Vector(H("01 01011000FFFFFFFF 0000000000000001 20240101 20341231"),
           {"key_index": 1, "issuer_id": H("01011000FFFFFFFF"), "user_id": H("0000000000000001"),
            "valid_from": date(2024, 1, 1), "valid_until": date(2034, 12, 31)},
           "own: packed by hand"),
))
class PsamAppData(Encoded):
    """PSAM file 0x17 (25 bytes)."""

    key_index: int = wire(Int8ub)
    issuer_id: bytes = wire(Bytes(8))
    user_id: bytes = wire(Bytes(8))
    valid_from: date = wire(BcdDate)
    valid_until: date = wire(BcdDate)
