"""File layouts of the transit purse and the PSAM (JT/T 978; reference §1, §2).

Declared once, as fixed layouts of numbers and byte strings, and shared by the
terminal and the simulators. Each layout is one ``struct`` format: a record
costs about 1 µs to write or read (construct, which declared them before,
cost 3.5 µs compiled and 11 µs interpreted, on every transaction).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime

PUBLIC_SFI = 0x15
HOLDER_SFI = 0x16
MANAGEMENT_SFI = 0x17
LOG_SFI = 0x18
CAPP_SFI = 0x1A
TRIP_SFI = 0x1E

_UINT_CODES = {1: "B", 2: "H", 4: "I"}


class Layout:
    """A fixed-size record: fields in order, each ``(name, "u" | "b", size)``.

    "u" is an unsigned big-endian number (1 to 4 bytes), "b" a byte string of
    exactly ``size`` bytes. ``pack`` and ``unpack`` take and give the values
    in field order; a value that does not fit its field is a FormatError
    (struct alone would pad or cut a byte string silently).
    """

    def __init__(self, what: str, *fields: tuple[str, str, int]) -> None:
        self.what = what
        self.names = tuple(name for name, _, _ in fields)
        fmt = ">"
        self._sized: list[tuple[int, int]] = []  # (index, size) of the byte strings
        self._u24: list[int] = []  # 3-byte numbers: struct has no code, written as 3s
        for i, (_, kind, size) in enumerate(fields):
            if kind == "u" and size in _UINT_CODES:
                fmt += _UINT_CODES[size]
            elif kind == "u" and size == 3:
                fmt += "3s"
                self._u24.append(i)
            elif kind == "b":
                fmt += f"{size}s"
                self._sized.append((i, size))
            else:
                raise ValueError(f"{what}: field {fields[i][0]} of kind {kind} and size {size}")
        self._struct = struct.Struct(fmt)
        self.size = self._struct.size

    def pack(self, *values: Any) -> bytes:
        what = self.what
        for i, size in self._sized:
            value = values[i]
            if not isinstance(value, (bytes, bytearray)):
                raise FormatError(f"{what}: cannot encode: {self.names[i]} is not bytes")
            if len(value) != size:
                raise FormatError(f"{what}: a field has the wrong size ({self.names[i]}: {len(value)} bytes, "
                                  f"the field holds {size})")
        if self._u24:
            items = list(values)
            for i in self._u24:
                value = items[i]
                if not isinstance(value, int) or not 0 <= value <= 0xFFFFFF:
                    raise FormatError(f"{what}: cannot encode: {self.names[i]} {value!r} does not fit in 3 bytes")
                items[i] = value.to_bytes(3, "big")
            values = tuple(items)
        try:
            return self._struct.pack(*values)
        except struct.error as exc:
            raise FormatError(f"{what}: cannot encode: {exc}") from None

    def unpack(self, raw: bytes) -> tuple[Any, ...]:
        if len(raw) != self.size:
            raise FormatError(f"{self.what}: expected {self.size} bytes, got {len(raw)}")
        values = self._struct.unpack(raw)
        if self._u24:
            items = list(values)
            for i in self._u24:
                items[i] = int.from_bytes(items[i], "big")
            return tuple(items)
        return values


PUBLIC = Layout(
    "file 0x15",
    ("issuer_id", "b", 8),
    ("app_type", "u", 1),
    ("app_version", "u", 1),
    ("app_serial", "b", 10),
    ("valid_from", "b", 4),
    ("valid_until", "b", 4),
    ("issuer_fci", "b", 2),
)
HOLDER = Layout(
    "file 0x16",
    ("card_type", "u", 1),
    ("staff", "u", 1),
    ("name", "b", 20),
    ("id_number", "b", 32),
    ("id_type", "u", 1),
)
MANAGEMENT = Layout(
    "file 0x17",
    ("country", "b", 4),
    ("province", "b", 2),
    ("city", "b", 2),
    ("interop", "b", 2),
    ("card_kind", "u", 1),
    ("rfu", "b", 49),
)
LOG = Layout(
    "0x18 record",
    ("seq", "u", 2),
    ("overdraft", "u", 3),
    ("amount", "u", 4),
    ("tx_type", "u", 1),
    ("terminal_id", "b", 6),
    ("date", "b", 4),
    ("time", "b", 3),
)
TRIP = Layout(
    "0x1E record",
    ("record_type", "u", 1),
    ("terminal", "b", 8),
    ("industry", "u", 1),
    ("station", "b", 4),
    ("operator", "b", 3),
    ("amount", "u", 4),
    ("balance", "u", 4),
    ("date", "b", 4),
    ("time", "b", 3),
    ("city", "b", 2),
    ("acquirer", "b", 8),
    ("rfu", "b", 6),
)
PSAM_APP = Layout(
    "PSAM file 0x17",
    ("key_index", "u", 1),
    ("issuer_id", "b", 8),
    ("user_id", "b", 8),
    ("valid_from", "b", 4),
    ("valid_until", "b", 4),
)


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

    @property
    def local_card_type(self) -> int:
        """Byte 28, the issuer's own card type (public bus POS code: 00 ordinary, 01 elder,
        11 disabled; AndroidZM233/Pos80_SDK_GongJiao, JTBCardManager.getSnr)."""
        return self.issuer_fci[0]

    def encode(self) -> bytes:
        return PUBLIC.pack(self.issuer_id, self.app_type, self.app_version, self.app_serial,
                           bcd_date(self.valid_from), bcd_date(self.valid_until), self.issuer_fci)

    @classmethod
    def decode(cls, raw: bytes) -> PublicData:
        issuer_id, app_type, app_version, app_serial, valid_from, valid_until, issuer_fci = PUBLIC.unpack(raw)
        return cls(issuer_id, app_serial, parse_bcd_date(valid_from), parse_bcd_date(valid_until),
                   app_type, app_version, issuer_fci)


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
        return HOLDER.pack(self.card_type, self.staff, gbk_field(self.name, 20),
                           text_bytes(self.id_number).ljust(32, b"\x00"), self.id_type)

    @classmethod
    def decode(cls, raw: bytes) -> HolderData:
        card_type, staff, name, id_number, id_type = HOLDER.unpack(raw)
        return cls(card_type, gbk_text(name), id_number.rstrip(b"\x00").decode("ascii", "replace"), id_type, staff)


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
        return MANAGEMENT.pack(self.country, self.province, self.city, self.interop, self.card_kind, bytes(49))

    @classmethod
    def decode(cls, raw: bytes) -> ManagementData:
        country, province, city, interop, card_kind, _rfu = MANAGEMENT.unpack(raw)
        return cls(province, city, country, interop, card_kind)


def log_record(seq: int, amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes,
               overdraft: int = 0) -> bytes:
    """A 0x18 record from the wire's BCD date and time (the card writes what DEBIT carried)."""
    return LOG.pack(seq, overdraft, amount, tx_type, terminal_id, date4, time3)


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
        return log_record(self.seq, self.amount, self.tx_type, self.terminal_id, d, t, self.overdraft)

    @classmethod
    def decode(cls, raw: bytes) -> TransactionRecord:
        seq, overdraft, amount, tx_type, terminal_id, d, t = LOG.unpack(raw)
        return cls(seq, amount, tx_type, terminal_id, parse_bcd_datetime(d, t), overdraft)


#: names of the 0x18 transaction types (reference §1)
TX_TYPE_NAMES = {0x01: "ED load", 0x02: "load", 0x05: "ED purchase", 0x06: "purchase", 0x09: "composite"}
#: names of the 0x1E record types (reference §1; the public Shanghai gate writes 03 and 04)
TRIP_ENTRY, TRIP_EXIT, TRIP_SINGLE = 0x03, 0x04, 0x06
TRIP_TYPE_NAMES = {TRIP_ENTRY: "entry", TRIP_EXIT: "exit", TRIP_SINGLE: "single ride"}
INDUSTRY_METRO, INDUSTRY_BUS = 0x01, 0x02
INDUSTRY_NAMES = {INDUSTRY_METRO: "metro", INDUSTRY_BUS: "bus", 0x03: "water", 0x04: "taxi"}


@dataclass(frozen=True)
class TripRecord:
    """A 0x1E record (48 bytes): 03/04 entry/exit, 06 single ride. The offsets agree with
    the public Shanghai gate's (fengyuruhui98/File): type 0, device 1..8, industry 9,
    line/station 10..13, operator 14..16, amount 17, balance after 21, time 25, city 32,
    acquirer 34, RFU 42..47."""

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
        return TRIP.pack(self.record_type, self.terminal, self.industry, self.station, self.operator,
                         self.amount, self.balance, d, t, self.city, self.acquirer, bytes(6))

    @classmethod
    def decode(cls, raw: bytes) -> TripRecord:
        record_type, terminal, industry, station, operator, amount, balance, d, t, city, acquirer, _rfu = (
            TRIP.unpack(raw))
        return cls(record_type, terminal, industry, station, amount, balance, parse_bcd_datetime(d, t),
                   city, operator, acquirer)


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
        return PSAM_APP.pack(self.key_index, self.issuer_id, self.user_id,
                             bcd_date(self.valid_from), bcd_date(self.valid_until))

    @classmethod
    def decode(cls, raw: bytes) -> PsamAppData:
        key_index, issuer_id, user_id, valid_from, valid_until = PSAM_APP.unpack(raw)
        return cls(key_index, issuer_id, user_id, parse_bcd_date(valid_from), parse_bcd_date(valid_until))
