"""Settlement batches: JSON Lines, a header then one record a line (docs/settlement.md).

The terminal's journal writes them and the back office (``ykt journal verify``,
the clearing job) reads them without the terminal, so the format lives here:
the header, the lines, their checks, the bytes a record's TAC covers and the
replay key.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm
from cardlib.errors import FormatError
from cardlib.pboc import macs
from cardlib.safefiles import LIMIT_TRACE, read_text


@dataclass(frozen=True)
class BatchHeader:
    batch_id: str
    terminal: str
    count: int
    total_amount: int
    sha256: str
    created: str
    batch_seq: int | None = None  # the terminal's nth batch, from 1; None in batches written before it

    def to_json(self) -> dict[str, Any]:
        return {"type": "header", "batch_id": self.batch_id, "terminal": self.terminal, "count": self.count,
                "total_amount": self.total_amount, "sha256": self.sha256, "created": self.created} | (
                    {} if self.batch_seq is None else {"batch_seq": self.batch_seq})


def batch_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each record as its batch line (keys sorted, UTF-8 text, newline-terminated)."""
    return [json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records]


def batch_digest(lines: Iterable[str]) -> str:
    """The header's SHA-256: over the record lines as written, upper-case hex."""
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest().upper()


def write_batch(out: IO[str], header: BatchHeader, lines: Sequence[str]) -> None:
    out.write(json.dumps(header.to_json(), ensure_ascii=False) + "\n")
    out.writelines(lines)
    out.flush()


def batch_terminal(terminal_id: bytes | None, terminal_ids: Iterable[bytes]) -> str:
    """The header's terminal: the one given, else the records' only one, else ``""``."""
    if terminal_id is not None:
        return terminal_id.hex().upper()
    terminals = set(terminal_ids)
    return terminals.pop().hex().upper() if len(terminals) == 1 else ""


def read_batch(path: str | os.PathLike[str]) -> tuple[BatchHeader, list[dict[str, Any]]]:
    """Read and validate a settlement batch: header fields, count, total and SHA-256."""
    name = os.fspath(path)
    try:  # a regular file of a bounded size: a FIFO or /dev/zero is refused, not read forever
        lines = io.StringIO(read_text(path, "batch", LIMIT_TRACE), newline="").readlines()
    except OSError as exc:
        raise FormatError(f"cannot read batch {name!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FormatError(f"batch {name}: not UTF-8 text") from None
    if not lines:
        raise FormatError(f"batch {name}: empty, no header")
    header = _header(name, lines[0])
    body = lines[1:]
    if body and not body[-1].endswith("\n"):
        raise FormatError(f"batch {name} line {len(lines)}: truncated (no final newline)")
    records = _records(name, body)
    if len(records) != header.count:
        raise FormatError(f"batch {name}: header count is {header.count}, {len(records)} record(s) follow")
    total = sum(r["amount"] for r in records)
    if total != header.total_amount:
        raise FormatError(f"batch {name}: header total_amount is {header.total_amount} fen, the records sum to {total}")
    if hashlib.sha256("".join(body).encode("utf-8")).hexdigest() != header.sha256.lower():
        raise FormatError(f"batch {name}: SHA-256 does not match its records")
    return header, records


def _header(name: str, line: str) -> BatchHeader:
    """The batch's first line."""
    try:
        head = json.loads(line)
        if not isinstance(head, dict) or head.get("type") != "header":
            raise ValueError('the first line is not {"type": "header", ...}')
        seq = head.get("batch_seq")
        return BatchHeader(str(head["batch_id"]), str(head["terminal"]), _int(head["count"]),
                           _int(head["total_amount"]), str(head["sha256"]), str(head.get("created", "")),
                           None if seq is None else _int(seq))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise FormatError(f"batch {name} line 1: bad header ({exc})") from None


def _records(name: str, body: list[str]) -> list[dict[str, Any]]:
    """The record lines (from line 2), each readable and none a replay of another."""
    records = []
    seen: dict[bytes, int] = {}  # a transaction's replay key, to the line first holding it
    for number, line in enumerate(body, 2):
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
            raise FormatError(f"batch {name} line {number}: not JSON") from None
        problem = record_problem(obj)
        if problem:
            raise FormatError(f"batch {name} line {number}: {problem}")
        key = replay_key(obj)
        if key is not None:
            if key in seen:  # its TAC verifies again: settling it would pay twice
                raise FormatError(f"batch {name} line {number}: the transaction of line {seen[key]} again (a replay)")
            seen[key] = number
        records.append(obj)
    return records


# Numbers of a batch line: an integer (JSON's 1, never 1.0, "1" or true), some may be null.
INTEGER_FIELDS = ("amount", "card_seq", "id", "balance_before", "key_version", "key_index")
NULLABLE_INTEGER_FIELDS = ("balance_after", "terminal_seq")


def record_problem(obj: Any) -> str:
    """What makes a batch line unreadable as a record, or ``""``. A number written as
    ``1.0`` or ``"1"`` would compare unequal to ``1`` as text and slip past the replay
    check, so every number must be a JSON integer."""
    if not isinstance(obj, dict):
        return "not a record (a JSON object)"
    for field in INTEGER_FIELDS + NULLABLE_INTEGER_FIELDS:
        value = obj.get(field)
        if field == "amount" or field in obj:
            if value is None and field in NULLABLE_INTEGER_FIELDS:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{field} is not an integer ({json.dumps(value)})"
    issuer = obj.get("issuer_id")
    if issuer is not None and not (isinstance(issuer, str) and len(issuer) == 16 and _is_hex(issuer)):
        return "issuer_id is not 8 bytes of hex"
    return ""


def _is_hex(text: str) -> bool:
    return text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text)


def replay_key(obj: Mapping[str, Any], message: tuple[int, int] | None = None) -> bytes | None:
    """What makes a record the same transaction as another: the card, the bytes its TAC
    covers and the TAC's bytes (hex read in either case). A field outside the TAC (a
    purchase's counter, the record id) can be changed without the TAC noticing, so it
    is not in the key. None when the line has no TAC input (its TAC cannot verify).
    ``message``: the line's ``tac_message``, when the caller has it."""
    try:
        value, size = message or tac_message(obj)
        card = bytes.fromhex(obj["app_serial"])
        tac = bytes.fromhex(obj["tac"] or "")
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError, FormatError):
        return None
    return card + value.to_bytes(size, "big") + tac


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def tac_fields(obj: Mapping[str, Any]) -> tuple[bytes, macs.TacFields, bytes, Algorithm]:
    """A batch line's card, TAC input, TAC and algorithm. Load records: the load TAC
    layout (new balance, online seq); others: the purchase layout."""
    kind = bytes.fromhex(obj["type"])  # two hex digits (int() would also take '0_6' or ' 6')
    if len(kind) != 1:
        raise FormatError(f"record: transaction type {obj['type']!r} is not one byte of hex")
    tx_type = kind[0]
    when = datetime.fromisoformat(obj["time"]).astimezone(BEIJING)
    date, time = macs.bcd_datetime(when)
    terminal = bytes.fromhex(obj["terminal_id"])
    if tx_type in macs.LOAD_TYPES:
        f = macs.TacFields(tx_type, obj["amount"], terminal, date, time, new_balance=obj["balance_after"] or 0,
                           online_seq=obj["card_seq"])
    else:
        f = macs.TacFields(tx_type, obj["amount"], terminal, date, time, terminal_seq=obj["terminal_seq"] or 0)
    return bytes.fromhex(obj["app_serial"]), f, bytes.fromhex(obj["tac"] or ""), Algorithm.parse(obj["algorithm"])


_U32 = 0xFFFFFFFF
# Where tac_message puts each field: from the declarations of the two TAC inputs
# (cardlib/pboc/macs.py), type ‖ terminal and date ‖ time each taken as one number.
_P, _L = macs.PURCHASE_TAC.shifts(), macs.LOAD_TAC.shifts()
assert _P["tx_type"] - _P["terminal_id"] == _L["tx_type"] - _L["terminal_id"] == 48 and _P["date"] == _L["date"] == 24
_P_AMOUNT, _P_HEAD, _P_SEQ = _P["amount"], _P["terminal_id"], _P["terminal_seq"]
_L_BALANCE, _L_ONLINE, _L_AMOUNT, _L_HEAD = _L["new_balance"], _L["online_seq"], _L["amount"], _L["terminal_id"]
_P_SIZE, _L_SIZE = _P["amount"] // 8 + 4, _L["new_balance"] // 8 + 4
_HEADS: dict[str, int] = {}  # type ‖ terminal id text -> its 7 bytes as a number; a batch has few terminals


def _head(text: str) -> int:
    head = bytes.fromhex(text)  # strict hex (int() would also take '_', a sign or '0x')
    if len(head) != 7:
        raise ValueError(f"record: type and terminal id {text!r} are not 7 bytes of hex")
    if len(_HEADS) >= 4096:
        _HEADS.clear()
    _HEADS[text] = found = int.from_bytes(head, "big")
    return found


def tac_message(obj: Mapping[str, Any]) -> tuple[int, int]:
    """The TAC input of a record's JSON as (big-endian value, length): the bytes of
    ``TacFields.tac_input()``. Settlement checks a million of these, so when the time
    is Beijing time as the journal writes it the number is put together from the
    fields directly (text formatting costs more than the MAC); anything else goes
    through the dataclasses."""
    t: str = obj["time"]
    if len(t) == 25 and t.isascii() and t[19:] == "+08:00" and t[4] == t[7] == "-" and t[10] == "T" \
            and t[13] == t[16] == ":":
        head = obj["type"] + obj["terminal_id"]
        where = _HEADS.get(head)
        if where is None:
            where = _head(head)
        digits = t[:19].encode().translate(None, b"-T:")  # the date and time in BCD, written as decimal
        if len(digits) == 14 and digits.isdigit():
            amount: int = obj["amount"]
            if where >> 48 in macs.LOAD_TYPES:  # newBalance ‖ onlineSeq ‖ amount ‖ type ‖ terminal ‖ date ‖ time
                balance: int = obj["balance_after"] or 0
                online: int = obj["card_seq"]
                if 0 <= balance <= _U32 and 0 <= online <= 0xFFFF and 0 <= amount <= _U32:
                    return (balance << _L_BALANCE | online << _L_ONLINE | amount << _L_AMOUNT | where << _L_HEAD
                            | int(digits, 16), _L_SIZE)
            else:  # amount ‖ type ‖ terminal ‖ terminal seq ‖ date ‖ time
                seq: int = obj["terminal_seq"] or 0
                if 0 <= seq <= _U32 and 0 <= amount <= _U32:
                    return amount << _P_AMOUNT | where << _P_HEAD | seq << _P_SEQ | int(digits, 16), _P_SIZE
    data = tac_fields(obj)[1].tac_input()  # the exact error for whatever the text got wrong
    return int.from_bytes(data, "big"), len(data)
