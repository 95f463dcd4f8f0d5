"""The 0x1A industry records of the transit purse (JT/T 978 user card, file
0x1A, the PBOC e-purse's CAPP data records), declared once through
cardlib/wire.py for gates, validators and the simulated card; and what gates
and validators keep in them (``metro_trip``/``metro_entry``/``metro_exit``,
``bus_ride``/``with_bus_ride``), so terminals never slice a record.

Metro record 2701, as a public Shanghai gate keeps it (fengyuruhui98/File,
``shapi/sh_transport_operation.c`` and ``shapi/crc.c``; docs/protocol.md):
bytes 0–5 a header (record id, record length, interoperability flag, lock
flag), the gate's serial at 6, the status at 14, entry and exit fields, the
entry/exit flags at 120–121, the in/out status at 122, and a CRC-32 —
zlib's: reflected 04C11DB7, initial and final FFFFFFFF — over bytes 6..123,
stored most significant byte first at 124..127 (the gate's ``LongToByte``).

Bus record 2702: no public layout was found; it follows THE PROJECT'S PROFILE
(same header, status at 14 and CRC as 2701; the fields in ``BUS``).
The header values written at personalisation (length 0080, interoperable 01,
unlocked 00) are the project's profile too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from construct import Bytes, Int8ub, Int16ub, Int24ub, Int32ub, Struct

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime
from cardlib.wire import Declaration, Vector, declare

RECORD_SIZE = 128
BODY_SIZE = 118  # bytes 6..123: what the CRC covers
METRO_RECORD = 0x2701
BUS_RECORD = 0x2702

#: status byte (offset 14) as the public gate writes it: 01 entry, 02 exit, 03/04 entry/exit updated
STATUS_NONE, STATUS_ENTRY, STATUS_EXIT, STATUS_ENTRY_UPDATE, STATUS_EXIT_UPDATE = 0x00, 0x01, 0x02, 0x03, 0x04
#: in/out status (offset 122): 55 after an entry, 66 after an exit (public gate)
INOUT_ENTERED, INOUT_EXITED = 0x55, 0x66
#: entry flag (120) and exit flag (121) of a normal entry and exit (public gate)
ENTRY_FLAG_NORMAL, EXIT_FLAG_NORMAL = 0x41, 0x81

H = bytes.fromhex
_GATE = "fengyuruhui98/File, Work/shanghai/shanghai-agm-V5.19-release/shapi/sh_transport_operation.c"
_HEADER = ("record_id", "length", "interop", "lock")
_HEADER_FIELDS = (
    "record_id" / Int16ub,
    "length" / Int16ub,
    "interop" / Int8ub,
    "lock" / Int8ub,
)
_CRC = "crc" / Int32ub  # 124, most significant byte first

HEADER = declare("0x1A record header", Struct(*_HEADER_FIELDS), cite=(
    f"JT/T 978 user card, file 0x1A (CAPP data) record header as the public Shanghai gate reads it: {_GATE}; "
    "the values written at personalisation are the project's profile"), vectors=(
    Vector(H("2701 0080 01 00"), {"record_id": 0x2701, "length": 0x80, "interop": 1, "lock": 0},
           "own: packed by hand, the header this project personalises"),
))
METRO = declare("0x1A record 2701", Struct(
    *_HEADER_FIELDS,
    "serial" / Bytes(8),  # 6
    "status" / Int8ub,  # 14
    "entry_city" / Bytes(2),
    "exit_city" / Bytes(2),
    "entry_org" / Bytes(8),
    "exit_org" / Bytes(8),
    "entry_station" / Bytes(8),  # 35
    "exit_station" / Bytes(8),  # 43
    "entry_device" / Bytes(8),  # 51
    "exit_device" / Bytes(8),  # 59
    "entry_time" / Bytes(7),  # 67; times stay bytes: a blank record's zeros are no date (parse_bcd7)
    "exit_time" / Bytes(7),  # 74
    "max_fare" / Int32ub,  # 81
    "entry_line" / Int8ub,
    "exit_line" / Int8ub,
    "entry_amount" / Int32ub,  # 87
    "entry_balance" / Int32ub,  # 91
    "actual_amount" / Int32ub,  # 95
    "last_time" / Bytes(7),  # 99
    "last_device" / Bytes(4),  # 106
    "day_amount" / Int24ub,  # 110
    "day_count" / Int16ub,  # 113
    "transfer" / Bytes(5),  # 115
    "entry_flag" / Int8ub,  # 120
    "exit_flag" / Int8ub,  # 121
    "inout" / Int8ub,  # 122
    "rfu" / Int8ub,  # 123
    _CRC,
), cite=f"JT/T 978 user card, file 0x1A metro record 2701, offsets and CRC-32 of the public Shanghai gate: {_GATE} "
        "and shapi/crc.c", vectors=(
    Vector(H("2701 0080 01 00" "0000000000000000" "01" "2900" "0000" "0000000000000000" "0000000000000000"
             "5330310000000000" "0000000000000000" "0000000000000001" "0000000000000000"
             "20261128081530" "00000000000000" "00000000" "00" "00" "00000000" "000003E8" "00000000"
             "20261128081530" "00000001" "000000" "0000" "0000000000" "41" "00" "55" "00" "A8D88963"),
           {"record_id": 0x2701, "length": 0x80, "interop": 1, "lock": 0, "serial": bytes(8), "status": 1,
            "entry_city": H("2900"), "exit_city": bytes(2), "entry_org": bytes(8), "exit_org": bytes(8),
            "entry_station": b"S01" + bytes(5), "exit_station": bytes(8), "entry_device": H("0000000000000001"),
            "exit_device": bytes(8), "entry_time": H("20261128081530"), "exit_time": bytes(7), "max_fare": 0,
            "entry_line": 0, "exit_line": 0, "entry_amount": 0, "entry_balance": 1000, "actual_amount": 0,
            "last_time": H("20261128081530"), "last_device": H("00000001"), "day_amount": 0, "day_count": 0,
            "transfer": bytes(5), "entry_flag": 0x41, "exit_flag": 0, "inout": 0x55, "rfu": 0, "crc": 0xA8D88963},
           "own: an entry at S01 packed by hand at the public gate's offsets, its CRC-32 by zlib over 6..123"),
))
BUS = declare("0x1A record 2702", Struct(  # THE PROJECT'S PROFILE: no public layout of 2702
    *_HEADER_FIELDS,
    "line" / Bytes(8),  # 6, ASCII, 00-padded
    "status" / Int8ub,  # 14: 01 boarded
    "time" / Bytes(7),  # 15
    "terminal" / Bytes(6),  # 22
    "amount" / Int32ub,  # 28
    "rfu" / Bytes(BODY_SIZE - 26),
    _CRC,
), cite="project profile: the bus record 2702 of file 0x1A (no public layout found); header, status at 14 and "
        "CRC-32 as the public gate's 2701", vectors=(
    Vector(H("2702 0080 01 00" "4B31303100000000" "01" "20261128081530" "000000000001" "000000C8" + "00" * 92
             + "59154DBF"),
           {"record_id": 0x2702, "length": 0x80, "interop": 1, "lock": 0, "line": b"K101" + bytes(4),
            "status": 1, "time": H("20261128081530"), "terminal": H("000000000001"), "amount": 200,
            "rfu": bytes(92), "crc": 0x59154DBF},
           "own: a ride on K101 packed by hand, its CRC-32 by zlib over 6..123"),
))
DECLARATIONS: dict[int, Declaration] = {METRO_RECORD: METRO, BUS_RECORD: BUS}
DEFAULT_LENGTH, DEFAULT_INTEROP, DEFAULT_LOCK = RECORD_SIZE, 0x01, 0x00  # the project's profile


def crc32(record: bytes) -> int:
    """The record's CRC-32 as the public gate computes it: over bytes 6..123."""
    return zlib.crc32(bytes(record[6:124])) & 0xFFFFFFFF


def crc_holds(record: bytes) -> bool:
    return len(record) == RECORD_SIZE and int.from_bytes(record[124:128], "big") == crc32(record)


def sealed(record: bytes) -> bytes:
    """``record`` with its CRC-32 written at 124..127."""
    if len(record) != RECORD_SIZE:
        raise FormatError(f"0x1A record: expected {RECORD_SIZE} bytes, got {len(record)}")
    return bytes(record[:124]) + crc32(record).to_bytes(4, "big")


def bcd7(when: datetime) -> bytes:
    d, t = bcd_datetime(when.astimezone(BEIJING))
    return d + t


def parse_bcd7(raw: bytes) -> datetime | None:
    try:
        return parse_bcd_datetime(raw[:4], raw[4:7])
    except FormatError:
        return None


def ascii8(text: str) -> bytes:
    return text.encode("ascii", "replace")[:8].ljust(8, b"\x00")


def text8(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("ascii", "replace")


@dataclass(frozen=True)
class CappRecord:
    """One 0x1A record: its header, its body's fields (by the record's layout), and
    whether the CRC held when it was read. ``encode`` writes a fresh CRC."""

    record_id: int
    fields: dict[str, Any] = field(compare=True)
    length: int = DEFAULT_LENGTH
    interop: int = DEFAULT_INTEROP
    lock: int = DEFAULT_LOCK
    crc_ok: bool = True

    @staticmethod
    def _declaration(record_id: int) -> Declaration:
        declaration = DECLARATIONS.get(record_id)
        if declaration is None:
            raise FormatError(f"0x1A record {record_id:04X}: no layout known (2701 metro, 2702 bus)")
        return declaration

    @classmethod
    def blank(cls, record_id: int) -> CappRecord:
        """The record as personalisation writes it: header, zero body."""
        return cls.decode(_blank_bytes(record_id))

    @classmethod
    def decode(cls, raw: bytes) -> CappRecord:
        if len(raw) != RECORD_SIZE:
            raise FormatError(f"0x1A record: expected {RECORD_SIZE} bytes, got {len(raw)}")
        values = cls._declaration(int.from_bytes(raw[:2], "big")).parse(bytes(raw))  # the record id: bytes 0..1
        header = [values.pop(name) for name in _HEADER]
        crc_ok = values.pop("crc") == crc32(raw)
        return cls(header[0], values, header[1], header[2], header[3], crc_ok)

    def encode(self) -> bytes:
        raw = self._declaration(self.record_id).build({
            **self.fields, "record_id": self.record_id, "length": self.length, "interop": self.interop,
            "lock": self.lock, "crc": 0})
        return sealed(raw)

    def replace(self, **changes: Any) -> CappRecord:
        """The record with some body fields changed (read, modify, write back)."""
        unknown = set(changes) - set(self.fields)
        if unknown:
            raise FormatError(f"0x1A record {self.record_id:04X}: no field {sorted(unknown)[0]!r}")
        return CappRecord(self.record_id, {**self.fields, **changes}, self.length, self.interop, self.lock, True)

    def zeroed(self) -> CappRecord:
        """Bytes 6..127 zeroed, the header kept: what the public gate does on a CRC failure."""
        raw = self.encode()[:6] + bytes(RECORD_SIZE - 6)
        return CappRecord.decode(sealed(raw))


def _blank_bytes(record_id: int) -> bytes:
    header = HEADER.build(record_id=record_id, length=DEFAULT_LENGTH, interop=DEFAULT_INTEROP, lock=DEFAULT_LOCK)
    return sealed(header + bytes(RECORD_SIZE - 6))


def blank_record(record_id: int) -> bytes:
    """The bytes personalisation writes for 2701 or 2702."""
    CappRecord._declaration(record_id)
    return _blank_bytes(record_id)


# --- what gates and validators keep in them ------------------------------------------


@dataclass(frozen=True)
class MetroTrip:
    """What a metro gate needs from 2701: inside or not, and where and when the rider
    entered (or left); ``terminal`` is the 6-byte terminal number of that gate."""

    inside: bool
    station: str
    time: datetime
    terminal: bytes


def _device(terminal: bytes) -> bytes:
    """An 8-byte device field: the 6-byte terminal number right-aligned (the public
    gate writes its device number into the low bytes, zeros before it)."""
    return bytes(8 - len(terminal)) + terminal[-8:]


def _as_read(raw: bytes | None, record_id: int) -> CappRecord | None:
    """The card's record as read, or None when the card answered none of ``record_id``'s size and id."""
    if raw is None or len(raw) != RECORD_SIZE or int.from_bytes(raw[:2], "big") != record_id:
        return None
    return CappRecord.decode(raw)


def trip_as_read(raw: bytes | None) -> MetroTrip | None:
    """The trip in the card's 2701 as read (None: no record, or no trip in it)."""
    record = _as_read(raw, METRO_RECORD)
    return metro_trip(record) if record is not None else None


def ride_as_read(raw: bytes | None) -> BusRide | None:
    """The previous ride in the card's 2702 as read (None: no record, or no ride in it)."""
    record = _as_read(raw, BUS_RECORD)
    return bus_ride(record) if record is not None else None


def metro_trip(record: CappRecord) -> MetroTrip | None:
    """The trip in a 2701 record; None for no trip (blank, or a CRC that failed)."""
    if record.record_id != METRO_RECORD or not record.crc_ok:
        return None
    f = record.fields
    status = f["status"]
    if status in (STATUS_ENTRY, STATUS_ENTRY_UPDATE):
        when = parse_bcd7(f["entry_time"])
        station, device = f["entry_station"], f["entry_device"]
    elif status in (STATUS_EXIT, STATUS_EXIT_UPDATE):
        when = parse_bcd7(f["exit_time"])
        station, device = f["exit_station"], f["exit_device"]
    else:
        return None
    if when is None:
        return None
    return MetroTrip(status in (STATUS_ENTRY, STATUS_ENTRY_UPDATE), text8(station), when, device[2:])


def metro_entry(record: CappRecord, station: str, when: datetime, terminal: bytes, balance: int) -> CappRecord:
    """2701 after an entry at ``station`` (status 01, flags 41/55, as the public gate)."""
    at = bcd7(when)
    return record.replace(status=STATUS_ENTRY, entry_station=ascii8(station), entry_device=_device(terminal),
                          entry_time=at, entry_amount=0, entry_balance=max(balance, 0) & 0xFFFFFFFF,
                          actual_amount=0, last_time=at, last_device=terminal[-4:], entry_flag=ENTRY_FLAG_NORMAL,
                          inout=INOUT_ENTERED, rfu=0)


def metro_exit(record: CappRecord, station: str, when: datetime, terminal: bytes, fare: int) -> CappRecord:
    """2701 after an exit at ``station`` charging ``fare`` (status 02, flags 81/66)."""
    at = bcd7(when)
    f = record.fields
    same_day = f["last_time"][:4] == at[:4]
    return record.replace(status=STATUS_EXIT, exit_station=ascii8(station), exit_device=_device(terminal),
                          exit_time=at, actual_amount=fare, last_time=at, last_device=terminal[-4:],
                          day_amount=min((f["day_amount"] if same_day else 0) + fare, 0xFFFFFF),
                          day_count=min((f["day_count"] if same_day else 0) + 1, 0xFFFF),
                          exit_flag=EXIT_FLAG_NORMAL, inout=INOUT_EXITED, rfu=0)


@dataclass(frozen=True)
class BusRide:
    """The previous ride kept in 2702 (the project's profile)."""

    line: str
    time: datetime
    terminal: bytes
    amount: int


def bus_ride(record: CappRecord) -> BusRide | None:
    if record.record_id != BUS_RECORD or not record.crc_ok or record.fields["status"] != STATUS_ENTRY:
        return None
    f = record.fields
    when = parse_bcd7(f["time"])
    if when is None:
        return None
    return BusRide(text8(f["line"]), when, f["terminal"], f["amount"])


def with_bus_ride(record: CappRecord, ride: BusRide) -> CappRecord:
    return record.replace(line=ascii8(ride.line), status=STATUS_ENTRY, time=bcd7(ride.time),
                          terminal=ride.terminal, amount=ride.amount)


def read_for_update(raw: bytes | None, record_id: int, on_bad_crc: str = "reset") -> CappRecord:
    """The record a terminal modifies and writes back: the card's own (read, modify,
    write), a blank one when the card has none, and on a failed CRC either the
    public gate's way (``reset``: bytes 6..127 zeroed, header kept) or ``keep``
    (the fields as read; the trip counts as none either way)."""
    record = _as_read(raw, record_id)
    if record is None:
        return CappRecord.blank(record_id)
    if not record.crc_ok and on_bad_crc == "reset":
        return record.zeroed()
    return record


ON_BAD_CRC = ("reset", "keep")
