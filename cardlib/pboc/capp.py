"""The 0x1A industry records of the transit purse (JT/T 978; reference §1,
"Field conventions"), declared once with construct for gates, validators and
the simulated card.

Metro record 2701, as a public Shanghai gate keeps it (fengyuruhui98/File,
``shapi/sh_transport_operation.c`` and ``shapi/crc.c``; docs/protocol.md):
bytes 0–5 a header (record id, record length, interoperability flag, lock
flag), the gate's serial at 6, the status at 14, entry and exit fields, the
entry/exit flags at 120–121, the in/out status at 122, and a CRC-32 —
zlib's: reflected 04C11DB7, initial and final FFFFFFFF — over bytes 6..123,
stored most significant byte first at 124..127 (the gate's ``LongToByte``).

Bus record 2702: no public layout was found; it follows THE PROJECT'S PROFILE
(same header, status at 14 and CRC as 2701; the fields in ``BUS_BODY``).
The header values written at personalisation (length 0080, interoperable 01,
unlocked 00) are the project's profile too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from construct import Bytes, ConstructError, Int8ub, Int16ub, Int24ub, Int32ub, Struct

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime

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

HEADER = Struct(
    "record_id" / Int16ub,
    "length" / Int16ub,
    "interop" / Int8ub,
    "lock" / Int8ub,
)
METRO_BODY = Struct(
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
    "entry_time" / Bytes(7),  # 67
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
)
BUS_BODY = Struct(  # THE PROJECT'S PROFILE: no public layout of 2702
    "line" / Bytes(8),  # 6, ASCII, 00-padded
    "status" / Int8ub,  # 14: 01 boarded
    "time" / Bytes(7),  # 15
    "terminal" / Bytes(6),  # 22
    "amount" / Int32ub,  # 28
    "rfu" / Bytes(BODY_SIZE - 26),
)
RECORD = Struct(
    "header" / HEADER,
    "body" / Bytes(BODY_SIZE),
    "crc" / Int32ub,  # 124, most significant byte first
)
BODIES = {METRO_RECORD: METRO_BODY, BUS_RECORD: BUS_BODY}
# the same declarations compiled by construct to Python code: four times faster, and a gate
# parses and builds a record on every tap
_COMPILED = {rid: body.compile() for rid, body in BODIES.items()}
_RECORD = RECORD.compile()
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
    def _body(record_id: int) -> Any:
        body = _COMPILED.get(record_id)
        if body is None:
            raise FormatError(f"0x1A record {record_id:04X}: no layout known (2701 metro, 2702 bus)")
        return body

    @classmethod
    def blank(cls, record_id: int) -> CappRecord:
        """The record as personalisation writes it: header, zero body."""
        return cls.decode(_blank_bytes(record_id))

    @classmethod
    def decode(cls, raw: bytes) -> CappRecord:
        if len(raw) != RECORD_SIZE:
            raise FormatError(f"0x1A record: expected {RECORD_SIZE} bytes, got {len(raw)}")
        try:
            rec = _RECORD.parse(bytes(raw))
            body = cls._body(rec.header.record_id).parse(rec.body)
        except ConstructError as exc:  # pragma: no cover - fixed sizes: every 128 bytes parse
            raise FormatError(f"0x1A record: {exc}") from None
        values = {k: v for k, v in body.items() if not k.startswith("_")}
        h = rec.header
        return cls(h.record_id, values, h.length, h.interop, h.lock, crc_holds(raw))

    def encode(self) -> bytes:
        try:
            body = self._body(self.record_id).build(self.fields)
            raw = _RECORD.build({"header": {"record_id": self.record_id, "length": self.length,
                                           "interop": self.interop, "lock": self.lock},
                                "body": body, "crc": 0})
        except ConstructError as exc:
            raise FormatError(f"0x1A record {self.record_id:04X}: cannot encode: {exc}") from None
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
    header = HEADER.build({"record_id": record_id, "length": DEFAULT_LENGTH, "interop": DEFAULT_INTEROP,
                           "lock": DEFAULT_LOCK})
    return sealed(header + bytes(RECORD_SIZE - 6))


def blank_record(record_id: int) -> bytes:
    """The bytes personalisation writes for 2701 or 2702."""
    CappRecord._body(record_id)
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
    if raw is None or len(raw) != RECORD_SIZE or int.from_bytes(raw[:2], "big") != record_id:
        return CappRecord.blank(record_id)
    record = CappRecord.decode(raw)
    if not record.crc_ok and on_bad_crc == "reset":
        return record.zeroed()
    return record


ON_BAD_CRC = ("reset", "keep")
