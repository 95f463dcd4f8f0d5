"""The journal's record: one transaction's row, its batch line, and the checks a stored row
passes before it is one (a file edited by hand is a typed error, not a crash further on)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from cardlib import batch
from cardlib.clock import BEIJING
from cardlib.errors import YktError
from cardlib.pboc import macs

#: grey (灰记录): the card's counter shows the money moved, but its proof is gone (the card was
#: used elsewhere before the re-tap): it counts in the card's account, never in a batch (no TAC)
STATES = ("pending", "completed", "failed", "recovered", "grey")
KINDS = ("load", "purchase", "composite")
SETTLED = ("completed", "recovered")  # what goes into a settlement batch: with a TAC
MOVED = ("completed", "recovered", "grey")  # what moved the card's money


class JournalError(YktError):
    """The journal refused an operation (double completion, unknown record)."""

    exit_code = 2


@dataclass(frozen=True)
class JournalRecord:
    id: int
    state: str
    kind: str  # load | purchase | composite
    tx_type: int
    app_serial: bytes
    card_seq: int
    amount: int
    balance_before: int
    balance_after: int | None
    terminal_id: bytes
    terminal_seq: int | None
    tx_time: datetime
    tac: bytes | None
    mac2: bytes | None
    mac2_verified: bool | None
    algorithm: str
    key_version: int
    key_index: int
    test: bool
    station: str
    line: str
    extra: str
    created_at: datetime
    updated_at: datetime
    batch_id: str | None
    failure_reason: str | None
    issuer_id: bytes | None = None  # 0x15's first 8 bytes; None in records of journals before schema 6

    def to_json(self) -> dict[str, Any]:
        """The settlement line of DESIGN.md's JSON conventions."""
        return {
            "id": self.id,
            "state": self.state,
            "kind": self.kind,
            "type": f"{self.tx_type:02X}",
            "app_serial": self.app_serial.hex().upper(),
            "card_seq": self.card_seq,
            "amount": self.amount,
            "balance_before": self.balance_before,
            "balance_after": self.balance_after,
            "terminal_id": self.terminal_id.hex().upper(),
            "terminal_seq": self.terminal_seq,
            "time": self.tx_time.isoformat(),
            "tac": self.tac.hex().upper() if self.tac else None,
            "mac2": self.mac2.hex().upper() if self.mac2 else None,
            "mac2_verified": self.mac2_verified,
            "algorithm": self.algorithm,
            "key_version": self.key_version,
            "key_index": self.key_index,
            "test": self.test,
            "station": self.station,
            "line": self.line,
            "extra": json.loads(self.extra) if self.extra else {},
        } | ({} if self.issuer_id is None else {"issuer_id": self.issuer_id.hex().upper()})

    def tac_fields(self) -> macs.TacFields:
        """What the record's TAC covers (the batch line's, ``cardlib.batch.tac_fields``)."""
        return batch.tac_fields(self.to_json())[1]


COLUMNS = [f.name for f in fields(JournalRecord)]
RETURNING = "RETURNING " + ", ".join(COLUMNS)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM records"  # every column, in JournalRecord's order
_INTEGERS = ("id", "tx_type", "card_seq", "amount", "balance_before", "key_version", "key_index")


def from_row(row: Sequence[Any]) -> JournalRecord:
    """A stored row as a record; a value the journal never writes (a file edited by hand or by
    another program) is a JournalError naming the record, not a crash further on."""
    d = dict(zip(COLUMNS, row, strict=True))
    try:
        _convert(d)
    except (ValueError, TypeError, RecursionError) as exc:
        raise JournalError(f"journal record {d.get('id')!r}: {str(exc)[:120]}") from None
    d["mac2_verified"] = None if d["mac2_verified"] is None else bool(d["mac2_verified"])
    d["test"] = bool(d["test"])
    return JournalRecord(**d)


def _convert(d: dict[str, Any]) -> None:
    """The row's times and bytes as values, in place; ValueError for what the journal never writes."""
    for key in ("tx_time", "created_at", "updated_at"):
        text = d[key]
        d[key] = datetime.fromisoformat(text)
        if d[key].tzinfo is None:
            raise ValueError(f"{key} {text!r} has no time zone")
    for key in ("app_serial", "terminal_id", "tac", "mac2", "issuer_id"):
        d[key] = bytes(d[key]) if d[key] is not None else None
    for key in (*_INTEGERS, "balance_after", "terminal_seq"):
        if type(d[key]) is not int and not (d[key] is None and key in ("balance_after", "terminal_seq")):
            raise ValueError(f"{key} {d[key]!r} is not an integer")
    if d["amount"] < 0:
        raise ValueError(f"amount {d['amount']} is negative")
    if d["extra"] and not isinstance(json.loads(d["extra"]), dict):
        raise ValueError("extra is not a JSON object")


def check_new(kind: str, alg: str, app_serial: bytes, terminal_id: bytes, issuer_id: bytes | None, amount: int) -> None:
    """A new record's fields the journal refuses before anything is written."""
    if kind not in KINDS:
        raise JournalError(f"journal record kind {kind!r} is not one of {', '.join(KINDS)}")
    if alg not in ("3des", "sm4"):
        raise JournalError(f"journal record algorithm {alg!r} is not 3des or sm4")
    if len(app_serial) != 10 or len(terminal_id) != 6 or (issuer_id is not None and len(issuer_id) != 8):
        raise JournalError("journal record: app_serial has 10 bytes, terminal_id 6 and issuer_id 8")
    if amount < 0:
        raise JournalError(f"journal record: amount must not be negative, got {amount}")


def stamp(when: datetime) -> str:
    """Times are stored as Beijing ISO 8601 with microseconds, so text order is time order."""
    if when.tzinfo is None:
        raise JournalError("journal times must be time-zone aware")
    return when.astimezone(BEIJING).isoformat(timespec="microseconds")

