"""Stage one of a clearing run, per batch file: the batch checked, every TAC verified.

A plain function of one file (the engine maps it over the files): a batch
that fails ``cardlib.batch.read_batch`` (header, count, total, SHA-256, a
replay inside it, a number that is not an integer) or comes from a terminal
the register does not know is set aside whole, never half-counted. A good
batch's lines become rows with what the next stage needs. A line whose TAC
cannot verify whatever the key (no issuer in the store, no TAC input) is
``unknown_issuer`` or ``forged`` here; the others are ``unverified`` with
their TAC input (``message``) beside them, and stage two checks their TACs
card by card (``clearing.chains``): each card's key is then derived once a
day, where here it would be derived again in every task that meets the card.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cardlib.batch import read_batch, replay_key, tac_message
from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.keys import IssuerKeys
from cardlib.keystore import KeyStore
from cardlib.pboc import macs
from cardlib.settlement import tac_ok
from clearing.register import TerminalRegister

# Lines without an issuer_id (batches before journal schema 5) are the built-in TEST ONLY issuer's.
DEFAULT_ISSUER = bytes.fromhex("99990000FFFFFFFF")
NO = -1  # an integer column's "none" (a load's terminal_seq, a header without batch_seq, no state)

LINE_COLUMNS: dict[str, str] = {  # name -> pandas dtype
    "row_kind": "str", "file": "str", "terminal": "str", "operator": "str", "batch_seq": "int64",
    "line_no": "int64", "card": "str", "issuer": "str", "kind": "str", "card_seq": "int64", "amount": "int64",
    "balance_before": "int64", "balance_after": "int64", "time": "int64", "day": "str", "hour": "int64",
    "terminal_id": "str", "terminal_seq": "int64", "tac": "str", "key": "str", "status": "str",
    "algorithm": "str", "key_version": "int64", "message": "bytes",
    "s_online": "int64", "s_offline": "int64", "s_balance": "int64",
}
UNVERIFIED = "unverified"  # a line's status until its TAC is checked (stage two)


@dataclass(frozen=True)
class BatchSummary:
    file: str
    status: str  # ok | bad_batch | unknown_terminal
    reason: str
    batch_id: str
    terminal: str
    batch_seq: int
    count: int
    total_amount: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Rows = list[tuple[Any, ...]]  # in LINE_COLUMNS order


def check_batch(path: str, register: TerminalRegister, store: KeyStore, rows: Rows) -> BatchSummary:
    """Check one batch file; a good one's lines are appended to ``rows``."""
    name = os.path.basename(path)
    try:
        header, records = read_batch(path)
    except FormatError as exc:
        return BatchSummary(name, "bad_batch", str(exc).replace(path, name), "", "", NO, 0, 0)
    seq = NO if header.batch_seq is None else header.batch_seq
    terminal = register.find(header.terminal)
    if terminal is None:
        return BatchSummary(name, "unknown_terminal", f"terminal {header.terminal or '(none)'} is not in the register",
                            header.batch_id, header.terminal, seq, header.count, header.total_amount)
    head = ("line", name, terminal.terminal_id, terminal.operator, seq)
    tail = (NO, NO, NO)  # no state
    rows.extend((*head, number, *line_row(obj, store), *tail) for number, obj in enumerate(records, 2))
    return BatchSummary(name, "ok", "", header.batch_id, terminal.terminal_id, seq, header.count,
                        header.total_amount)


_I64 = range(-(2**63), 2**63)
_KINDS: dict[Any, str] = {}  # type text -> "load" | "purchase" (few distinct)
_ISSUERS: dict[tuple[Any, Any, KeyStore], tuple[str, Any]] = {}  # (issuer_id text, key_version, store) -> hex, keys (the store held: no id reuse)


def line_row(obj: dict[str, Any], store: KeyStore) -> tuple[Any, ...]:
    """A batch line as the columns of the chain stage from ``card`` to ``message``: what its TAC
    check needs, or why it cannot verify. Run for every line of the day: lookups are cached, the
    usual Beijing time cut from its text."""
    found = _ISSUERS.get((obj.get("issuer_id"), obj.get("key_version", 1), store))
    if found is None:
        found = _issuer(obj, store)
    issuer_hex, issuer = found
    try:
        message: tuple[int, int] | None = tac_message(obj)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError, FormatError):
        message = None
    key = replay_key(obj, message) if message else None
    algorithm = obj.get("algorithm")
    if issuer is None:
        status = "unknown_issuer"
    elif key is None or not isinstance(algorithm, str):  # no TAC input, card or TAC: tac_ok says no
        status = "forged"
    else:
        status = UNVERIFIED
    t = obj.get("time")
    try:
        when = datetime.fromisoformat(t)  # type: ignore[arg-type]
        if isinstance(t, str) and len(t) == 25 and t.endswith("+08:00"):  # as the journal writes it
            stamp, day, hour = int(when.timestamp()), t[:10], when.hour
        else:
            when = when.astimezone(BEIJING)
            stamp, day, hour = int(when.timestamp()), when.date().isoformat(), when.hour
    except (ValueError, TypeError):
        stamp, day, hour = NO, "unknown", NO
        status = "forged" if status == UNVERIFIED else status  # (its TAC cannot have verified)
    kind = _KINDS.get(obj.get("type"))
    if kind is None:
        kind = _kind(obj.get("type"))
    seq, amount, before = obj.get("card_seq", NO), obj["amount"], obj.get("balance_before", NO)
    after, tseq = obj.get("balance_after"), obj.get("terminal_seq")
    after = NO if after is None else after
    tseq = NO if tseq is None else tseq
    if not (seq in _I64 and amount in _I64 and before in _I64 and after in _I64 and tseq in _I64):
        # read_batch lets integers of any size by; no card writes such a number
        seq, amount, before, after, tseq = (v if v in _I64 else NO for v in (seq, amount, before, after, tseq))
        status = "forged" if status == UNVERIFIED else status
    verify = status == UNVERIFIED
    return (str(obj.get("app_serial", "")).upper(), issuer_hex, kind, seq, amount, before, after, stamp, day, hour,
            str(obj.get("terminal_id", "")).upper(), tseq, str(obj.get("tac") or "").upper(),
            key.hex().upper() if key else "", status, algorithm if verify else "",
            obj.get("key_version", 1) if verify else NO,
            message[0].to_bytes(message[1], "big") if verify and message else b"")


def tac_verified(issuer: IssuerKeys, card: str, algorithm: str, tac: str, message: bytes) -> bool:
    """A line's TAC checked from its row (``line_row``'s ``card``, ``algorithm``, ``tac`` and
    ``message``): ``cardlib.settlement.tac_ok`` over what it reads of the line."""
    return tac_ok(issuer, {"app_serial": card, "algorithm": algorithm, "tac": tac},
                  (int.from_bytes(message, "big"), len(message)))


def _issuer(obj: dict[str, Any], store: KeyStore) -> tuple[str, Any]:
    raw, version = obj.get("issuer_id"), obj.get("key_version", 1)
    issuer_hex = str(raw or DEFAULT_ISSUER.hex()).upper()
    found = issuer_hex, store.find(bytes.fromhex(issuer_hex), version if isinstance(version, int) else -1)
    if len(_ISSUERS) > 1024:
        _ISSUERS.clear()
    _ISSUERS[(raw, version, store)] = found
    return found


def _kind(text: Any) -> str:
    try:
        load = bytes.fromhex(str(text))[0] in macs.LOAD_TYPES
    except (ValueError, IndexError):
        load = False
    if len(_KINDS) < 256 and isinstance(text, str):
        _KINDS[text] = "load" if load else "purchase"
    return "load" if load else "purchase"


