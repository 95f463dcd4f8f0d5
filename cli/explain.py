"""What a person reads from one exchange: the answer's data as a known record, a balance or a TLV tree.

The layouts are the ones cardlib declares (cardlib.pboc.files, cardlib.ssse.files); this module
only says which file an APDU reads (its SFI, ISO 7816-4 §7.2/§7.3) and which decoder fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from cardlib import iso
from cardlib import sw as SW
from cardlib.errors import FormatError
from cardlib.pboc import purse as purse_commands
from cardlib.pboc.files import (
    HOLDER_SFI,
    LOG_SFI,
    MANAGEMENT_SFI,
    PUBLIC_SFI,
    TRIP_SFI,
    HolderData,
    ManagementData,
    PublicData,
    TransactionRecord,
    TripRecord,
)
from cardlib.ssse import files as ssse
from cardlib.tlv import Tlv, parse, tag_bytes

MONEY_FIELDS = frozenset({"amount", "balance", "overdraft"})

# EF05/EF06 record tags by the names cardlib gives them (T_CARD_ID -> "card id")
SSSE_TAGS = {value: name[2:].lower().replace("_", " ")
             for name, value in vars(ssse).items() if name.startswith("T_") and isinstance(value, int)}


def fen(value: int) -> str:
    """Money for people: integer fen with the yuan beside it."""
    return f"{value} fen (¥{value / 100:.2f})"


@dataclass(frozen=True)
class KnownFile:
    """A file this project knows the layout of, by SFI: records or one binary body."""

    name: str
    records: bool
    size: int  # Le: a record's or the file's size, 0 for "as long as it is"
    decode: Callable[[bytes], object] | None = None


def _ssse_record(raw: bytes) -> object:
    return {"tag": raw[:1].hex().upper(), "name": SSSE_TAGS.get(raw[0], "?") if raw else "?",
            "value": ssse.parse_record(raw)}


KNOWN_FILES: dict[int, KnownFile] = {
    PUBLIC_SFI: KnownFile("purse public data (0x15)", False, PublicData.SIZE, PublicData.decode),
    HOLDER_SFI: KnownFile("purse holder data (0x16)", False, HolderData.SIZE, HolderData.decode),
    MANAGEMENT_SFI: KnownFile("purse management data (0x17)", False, ManagementData.SIZE, ManagementData.decode),
    LOG_SFI: KnownFile("transaction log (0x18)", True, TransactionRecord.SIZE, TransactionRecord.decode),
    TRIP_SFI: KnownFile("trip records (0x1E)", True, TripRecord.SIZE, TripRecord.decode),
    ssse.SFI_ISSUER: KnownFile("SSSE issuer data (EF05)", True, 0, _ssse_record),
    ssse.SFI_HOLDER: KnownFile("SSSE holder data (EF06)", True, 0, _ssse_record),
}

# EF05/EF06 read whole: the records by tag, decoded by cardlib's own classes
WHOLE_SSSE: dict[int, Callable[[dict[int, bytes]], object]] = {
    ssse.SFI_ISSUER: ssse.IssuerRecords.from_records,
    ssse.SFI_HOLDER: ssse.HolderRecords.from_records,
}


def file_read(command: bytes) -> tuple[int, str] | None:
    """The SFI a READ BINARY / READ RECORD names and "binary" or "record", else None."""
    if len(command) < 4 or command[0] & 0x80:
        return None
    ins = command[1]
    sfi = iso.file_sfi(ins, command[2], command[3])
    if sfi is None or ins not in (iso.INS_READ_BINARY, iso.INS_READ_RECORD):
        return None
    return sfi, "binary" if ins == iso.INS_READ_BINARY else "record"


def value_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and name in MONEY_FIELDS:
        return fen(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex(" ").upper() if value else "(empty)"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def fields(obj: object) -> list[tuple[str, str]]:
    """A decoded value as (name, text) rows: a dataclass's fields or a dict's items."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    elif isinstance(obj, dict):
        items = list(obj.items())
    else:
        return [("value", str(obj))]
    return [(str(k), value_text(str(k), v)) for k, v in items]


def rows_text(title: str, rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{title}"] + [f"{indent}  {k.ljust(width)}  {v}" for k, v in rows]


def tlv_lines(obj: Tlv, depth: int = 0) -> Iterator[str]:
    """A BER-TLV object as an indented tree, one line a tag (ISO 7816-4 §5.2)."""
    name = f"  ({obj.name})" if obj.name else ""
    tag = tag_bytes(obj.tag).hex().upper()
    pad = "  " * depth
    if obj.children is not None:
        yield f"{pad}{tag} [{len(obj.content())}]{name}"
        for child in obj.children:
            yield from tlv_lines(child, depth + 1)
    else:
        yield f"{pad}{tag} [{len(obj.value)}] {obj.value.hex(' ').upper()}{name}"


def explain(command: bytes, data: bytes, sw: int) -> list[str]:
    """Lines saying what the answer's data is, indented; empty when nothing is known of it."""
    if sw != SW.SW_OK or not data:
        return []
    read = file_read(command)
    if read is not None and read[0] in KNOWN_FILES:
        known = KNOWN_FILES[read[0]]
        what = f"{known.name} record {command[2]}" if read[1] == "record" else known.name
        if known.decode is not None and known.records == (read[1] == "record"):
            try:
                return rows_text(what, fields(known.decode(data)))
            except (FormatError, ValueError, IndexError) as exc:
                return [f"  {what}: does not decode ({exc})"]
    if len(command) >= 2 and command[0] == purse_commands.CLA_PURSE and command[1] == purse_commands.INS_GET_BALANCE and len(data) == 4:
        return [f"  balance {fen(purse_commands.decode_balance(data))}"]
    try:
        objects = parse(data, strict=True)
    except FormatError:
        return []
    return [f"  {line}" for obj in objects for line in tlv_lines(obj)]
