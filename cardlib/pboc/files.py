"""File layouts of the transit purse and the PSAM (JT/T 978; reference §1, §2).

Declared once with construct and shared by the terminal and the simulators.
The layouts on the transaction path (0x15, 0x18, 0x1E) are compiled:
interpreted construct costs about 11 µs a record, compiled about 3.5 µs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from construct import Bytes, ConstructError, Int8ub, Int16ub, Int24ub, Int32ub, Struct

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime

PUBLIC_SFI = 0x15
HOLDER_SFI = 0x16
MANAGEMENT_SFI = 0x17
LOG_SFI = 0x18
CAPP_SFI = 0x1A
TRIP_SFI = 0x1E
PSAM_TERMINAL_SFI = 0x16
PSAM_APP_SFI = 0x17

_Public = Struct(
    "issuer_id" / Bytes(8),
    "app_type" / Int8ub,
    "app_version" / Int8ub,
    "app_serial" / Bytes(10),
    "valid_from" / Bytes(4),
    "valid_until" / Bytes(4),
    "issuer_fci" / Bytes(2),
)
_Holder = Struct(
    "card_type" / Int8ub,
    "staff" / Int8ub,
    "name" / Bytes(20),
    "id_number" / Bytes(32),
    "id_type" / Int8ub,
)
_Management = Struct(
    "country" / Bytes(4),
    "province" / Bytes(2),
    "city" / Bytes(2),
    "interop" / Bytes(2),
    "card_kind" / Int8ub,
    "rfu" / Bytes(49),
)
_Log = Struct(
    "seq" / Int16ub,
    "overdraft" / Int24ub,
    "amount" / Int32ub,
    "tx_type" / Int8ub,
    "terminal_id" / Bytes(6),
    "date" / Bytes(4),
    "time" / Bytes(3),
)
_Trip = Struct(
    "record_type" / Int8ub,
    "terminal" / Bytes(8),
    "industry" / Int8ub,
    "station" / Bytes(4),
    "operator" / Bytes(3),
    "amount" / Int32ub,
    "balance" / Int32ub,
    "date" / Bytes(4),
    "time" / Bytes(3),
    "city" / Bytes(2),
    "acquirer" / Bytes(8),
    "rfu" / Bytes(6),
)
_PsamApp = Struct(
    "key_index" / Int8ub,
    "issuer_id" / Bytes(8),
    "user_id" / Bytes(8),
    "valid_from" / Bytes(4),
    "valid_until" / Bytes(4),
)

PUBLIC = _Public.compile()
LOG = _Log.compile()
TRIP = _Trip.compile()
HOLDER = _Holder
MANAGEMENT = _Management
PSAM_APP = _PsamApp


def _parse(layout: Any, raw: bytes, size: int, what: str) -> Any:
    if len(raw) != size:
        raise FormatError(f"{what}: expected {size} bytes, got {len(raw)}")
    try:
        return layout.parse(raw)
    except ConstructError as exc:  # pragma: no cover - fixed sizes checked above
        raise FormatError(f"{what}: {exc}") from None


def _build(layout: Any, values: dict[str, Any], what: str, size: int) -> bytes:
    try:
        out: bytes = layout.build(values)
    except (ConstructError, ValueError, TypeError, struct.error) as exc:  # compiled structs raise struct.error
        raise FormatError(f"{what}: cannot encode: {exc}") from None
    if len(out) != size:  # compiled Bytes(n) does not check the length of what it writes
        raise FormatError(f"{what}: a field has the wrong size ({len(out)} bytes, the file has {size})")
    return out


def bcd_date(d: date) -> bytes:
    return bytes.fromhex(f"{d.year:04d}{d.month:02d}{d.day:02d}")


def parse_bcd_date(raw: bytes) -> date:
    text = raw.hex()
    if len(raw) != 4 or not text.isdigit():
        raise FormatError(f"not a BCD date: {raw.hex().upper()}")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise FormatError(f"impossible date {text}: {exc}") from None


def gbk_field(text: str, size: int) -> bytes:
    """A GBK text field, 00-padded."""
    raw = text_bytes(text, "gbk")
    if len(raw) > size:
        raise FormatError(f"{text!r} is {len(raw)} bytes in GBK, the field holds {size}")
    return raw.ljust(size, b"\x00")


def text_bytes(text: str, encoding: str = "ascii") -> bytes:
    """``text`` in a card's encoding; FormatError for a character it cannot hold
    (such as the U+FFFD a decoder put in place of bytes it could not read)."""
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise FormatError(f"text cannot be written in {encoding.upper()} (character {exc.start + 1})") from None


def gbk_text(raw: bytes) -> str:
    return raw.rstrip(b"\x00\xff").decode("gbk", errors="replace")


@dataclass(frozen=True)
class PublicData:
    """File 0x15: public application data (30 bytes)."""

    issuer_id: bytes
    app_serial: bytes
    valid_from: date
    valid_until: date
    app_type: int = 0x02
    app_version: int = 0x01
    issuer_fci: bytes = b"\x00\x00"

    SIZE = 30

    def encode(self) -> bytes:
        return _build(PUBLIC, {
            "issuer_id": self.issuer_id, "app_type": self.app_type, "app_version": self.app_version,
            "app_serial": self.app_serial, "valid_from": bcd_date(self.valid_from),
            "valid_until": bcd_date(self.valid_until), "issuer_fci": self.issuer_fci,
        }, "file 0x15", self.SIZE)

    @classmethod
    def decode(cls, raw: bytes) -> PublicData:
        v = _parse(PUBLIC, raw, cls.SIZE, "file 0x15")
        return cls(bytes(v.issuer_id), bytes(v.app_serial), parse_bcd_date(v.valid_from),
                   parse_bcd_date(v.valid_until), v.app_type, v.app_version, bytes(v.issuer_fci))


@dataclass(frozen=True)
class HolderData:
    """File 0x16: card holder (55 bytes)."""

    card_type: int
    name: str
    id_number: str
    id_type: int = 0x00
    staff: int = 0x00

    SIZE = 55

    def encode(self) -> bytes:
        return _build(HOLDER, {
            "card_type": self.card_type, "staff": self.staff, "name": gbk_field(self.name, 20),
            "id_number": text_bytes(self.id_number).ljust(32, b"\x00"), "id_type": self.id_type,
        }, "file 0x16", self.SIZE)

    @classmethod
    def decode(cls, raw: bytes) -> HolderData:
        v = _parse(HOLDER, raw, cls.SIZE, "file 0x16")
        return cls(v.card_type, gbk_text(v.name), bytes(v.id_number).rstrip(b"\x00").decode("ascii", "replace"),
                   v.id_type, v.staff)


@dataclass(frozen=True)
class ManagementData:
    """File 0x17: management data (60 bytes)."""

    province: bytes
    city: bytes
    country: bytes = b"\x01\x56\x00\x00"
    interop: bytes = b"\x00\x01"
    card_kind: int = 0x01

    SIZE = 60

    def encode(self) -> bytes:
        return _build(MANAGEMENT, {
            "country": self.country, "province": self.province, "city": self.city,
            "interop": self.interop, "card_kind": self.card_kind, "rfu": bytes(49),
        }, "file 0x17", self.SIZE)

    @classmethod
    def decode(cls, raw: bytes) -> ManagementData:
        v = _parse(MANAGEMENT, raw, cls.SIZE, "file 0x17")
        return cls(bytes(v.province), bytes(v.city), bytes(v.country), bytes(v.interop), v.card_kind)


@dataclass(frozen=True)
class TransactionRecord:
    """A 0x18 record (23 bytes): seq is the counter INITIALIZE returned."""

    seq: int
    amount: int
    tx_type: int
    terminal_id: bytes
    time: datetime
    overdraft: int = 0

    SIZE = 23

    def encode(self) -> bytes:
        d, t = bcd_datetime(self.time.astimezone(BEIJING))
        return _build(LOG, {
            "seq": self.seq, "overdraft": self.overdraft, "amount": self.amount,
            "tx_type": self.tx_type, "terminal_id": self.terminal_id, "date": d, "time": t,
        }, "0x18 record", self.SIZE)

    @classmethod
    def decode(cls, raw: bytes) -> TransactionRecord:
        v = _parse(LOG, raw, cls.SIZE, "0x18 record")
        return cls(v.seq, v.amount, v.tx_type, bytes(v.terminal_id),
                   parse_bcd_datetime(bytes(v.date), bytes(v.time)), v.overdraft)


@dataclass(frozen=True)
class TripRecord:
    """A 0x1E record (48 bytes): 03/04 entry/exit, 06 single ride."""

    record_type: int
    terminal: bytes
    industry: int
    station: bytes
    amount: int
    balance: int
    time: datetime
    city: bytes = b"\x00\x00"
    operator: bytes = b"\x00\x00\x00"
    acquirer: bytes = bytes(8)

    SIZE = 48

    def encode(self) -> bytes:
        d, t = bcd_datetime(self.time.astimezone(BEIJING))
        return _build(TRIP, {
            "record_type": self.record_type, "terminal": self.terminal, "industry": self.industry,
            "station": self.station, "operator": self.operator, "amount": self.amount,
            "balance": self.balance, "date": d, "time": t, "city": self.city,
            "acquirer": self.acquirer, "rfu": bytes(6),
        }, "0x1E record", self.SIZE)

    @classmethod
    def decode(cls, raw: bytes) -> TripRecord:
        v = _parse(TRIP, raw, cls.SIZE, "0x1E record")
        return cls(v.record_type, bytes(v.terminal), v.industry, bytes(v.station), v.amount, v.balance,
                   parse_bcd_datetime(bytes(v.date), bytes(v.time)), bytes(v.city), bytes(v.operator),
                   bytes(v.acquirer))


CAPP_RECORD_SIZE = 128


def capp_record(record_id: int, body: bytes) -> bytes:
    """A 0x1A variable record keyed by 27 xx: id(2) ‖ body, 00-padded to 128 bytes."""
    if not 0x2701 <= record_id <= 0x2712:
        raise FormatError(f"CAPP record id {record_id:04X} outside 2701..2712")
    if len(body) > CAPP_RECORD_SIZE - 2:
        raise FormatError(f"CAPP record body of {len(body)} bytes exceeds {CAPP_RECORD_SIZE - 2}")
    return record_id.to_bytes(2, "big") + body.ljust(CAPP_RECORD_SIZE - 2, b"\x00")


@dataclass(frozen=True)
class PsamAppData:
    """PSAM file 0x17 (25 bytes)."""

    key_index: int
    issuer_id: bytes
    user_id: bytes
    valid_from: date
    valid_until: date

    SIZE = 25

    def encode(self) -> bytes:
        return _build(PSAM_APP, {
            "key_index": self.key_index, "issuer_id": self.issuer_id, "user_id": self.user_id,
            "valid_from": bcd_date(self.valid_from), "valid_until": bcd_date(self.valid_until),
        }, "PSAM file 0x17", self.SIZE)

    @classmethod
    def decode(cls, raw: bytes) -> PsamAppData:
        v = _parse(PSAM_APP, raw, cls.SIZE, "PSAM file 0x17")
        return cls(v.key_index, bytes(v.issuer_id), bytes(v.user_id),
                   parse_bcd_date(v.valid_from), parse_bcd_date(v.valid_until))
