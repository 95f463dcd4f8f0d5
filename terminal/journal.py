"""The terminal's durable journal (SQLite, WAL, synchronous=FULL).

A record is written and synced *before* DEBIT or CREDIT is sent (pending),
and completed after; a torn transaction is resolved later (recovered or
failed). Export writes settlement batches as JSON Lines (docs/journal.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import IO, Any

from cardlib.clock import BEIJING, Clock
from cardlib.crypto import Algorithm
from cardlib.errors import FormatError, YktError
from cardlib.keys import IssuerKeys, verify_tac
from cardlib.pboc import macs

SCHEMA_VERSION = 1
STATES = ("pending", "completed", "failed", "recovered")
FINAL = ("completed", "failed", "recovered")
SETTLED = ("completed", "recovered")


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
    extra: str
    created_at: datetime
    updated_at: datetime
    batch_id: str | None
    failure_reason: str | None

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
            "extra": json.loads(self.extra) if self.extra else {},
        }

    def tac_fields(self) -> macs.TacFields:
        date, time = macs.bcd_datetime(self.tx_time.astimezone(BEIJING))
        if self.tx_type in macs.LOAD_TYPES:
            return macs.TacFields(self.tx_type, self.amount, self.terminal_id, date, time,
                                  new_balance=self.balance_after or 0, online_seq=self.card_seq)
        return macs.TacFields(self.tx_type, self.amount, self.terminal_id, date, time,
                              terminal_seq=self.terminal_seq or 0)


_COLUMNS = [f.name for f in fields(JournalRecord)]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN ('pending','completed','failed','recovered')),
    kind TEXT NOT NULL,
    tx_type INTEGER NOT NULL,
    app_serial BLOB NOT NULL,
    card_seq INTEGER NOT NULL,
    amount INTEGER NOT NULL CHECK (amount >= 0),
    balance_before INTEGER NOT NULL,
    balance_after INTEGER,
    terminal_id BLOB NOT NULL,
    terminal_seq INTEGER,
    tx_time TEXT NOT NULL,
    tac BLOB,
    mac2 BLOB,
    mac2_verified INTEGER,
    algorithm TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    key_index INTEGER NOT NULL,
    test INTEGER NOT NULL,
    extra TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    batch_id TEXT,
    failure_reason TEXT
);
CREATE INDEX IF NOT EXISTS records_card ON records (app_serial, state);
CREATE INDEX IF NOT EXISTS records_batch ON records (batch_id, state);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, app_serial BLOB, terminal TEXT NOT NULL,
    decision TEXT NOT NULL, reason TEXT NOT NULL, amount INTEGER NOT NULL, journal_id INTEGER
);
CREATE INDEX IF NOT EXISTS events_card ON events (app_serial, time);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, count INTEGER NOT NULL,
    total_amount INTEGER NOT NULL, sha256 TEXT NOT NULL
);
"""


def _row(row: Sequence[Any]) -> JournalRecord:
    d = dict(zip(_COLUMNS, row, strict=True))
    for key in ("tx_time", "created_at", "updated_at"):
        d[key] = datetime.fromisoformat(d[key])
    for key in ("app_serial", "terminal_id", "tac", "mac2"):
        d[key] = bytes(d[key]) if d[key] is not None else None
    d["mac2_verified"] = None if d["mac2_verified"] is None else bool(d["mac2_verified"])
    d["test"] = bool(d["test"])
    return JournalRecord(**d)


@dataclass(frozen=True)
class BatchHeader:
    batch_id: str
    terminal: str
    count: int
    total_amount: int
    sha256: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "header", "batch_id": self.batch_id, "terminal": self.terminal, "count": self.count,
                "total_amount": self.total_amount, "sha256": self.sha256, "created": self.created}


class Journal:
    """One SQLite file; every state change is one synced transaction."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock | None = None) -> None:
        self.path = os.fspath(path)
        self.clock = clock or Clock.system()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise FormatError(f"{self.path}: journal schema {version} is newer than this yikatong ({SCHEMA_VERSION})")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{self.path}: not a usable journal: {exc}") from None
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], clock: Clock | None = None) -> Journal:
        return cls(path, clock)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cur

    def _now(self) -> str:
        return self.clock.now().isoformat()

    def begin(
        self, *, kind: str, tx_type: int, app_serial: bytes, card_seq: int, amount: int, balance_before: int,
        terminal_id: bytes, tx_time: datetime, algorithm: Algorithm | str = "3des", key_version: int = 1,
        key_index: int = 1, test: bool = False, terminal_seq: int | None = None, extra: dict[str, Any] | None = None,
    ) -> JournalRecord:
        """The write-ahead record: committed and synced before DEBIT/CREDIT is sent."""
        alg = algorithm.value if isinstance(algorithm, Algorithm) else algorithm
        now = self._now()
        cur = self._write(
            "INSERT INTO records (state, kind, tx_type, app_serial, card_seq, amount, balance_before, terminal_id,"
            " terminal_seq, tx_time, algorithm, key_version, key_index, test, extra, created_at, updated_at)"
            " VALUES ('pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, tx_type, app_serial, card_seq, amount, balance_before, terminal_id, terminal_seq,
             tx_time.isoformat(), alg, key_version, key_index, int(test),
             json.dumps(extra, ensure_ascii=False) if extra else "", now, now),
        )
        rid = cur.lastrowid
        assert rid is not None
        return self.get(rid)

    def set_terminal_seq(self, record_id: int, terminal_seq: int) -> None:
        self._write("UPDATE records SET terminal_seq=?, updated_at=? WHERE id=? AND state='pending'",
                    (terminal_seq, self._now(), record_id))

    def _finish(self, record_id: int, state: str, **values: Any) -> JournalRecord:
        sets = ", ".join(f"{k}=?" for k in values)
        args = [*values.values()]
        cur = self._write(
            f"UPDATE records SET state=?, updated_at=?{', ' + sets if sets else ''} WHERE id=? AND state='pending'",
            (state, self._now(), *args, record_id),
        )
        if cur.rowcount != 1:
            current = self.find(record_id)
            if current is None:
                raise JournalError(f"journal has no record {record_id}")
            raise JournalError(f"record {record_id} is already {current.state}: it cannot become {state}")
        return self.get(record_id)

    def complete(self, record_id: int, *, tac: bytes, mac2: bytes | None, balance_after: int,
                 terminal_seq: int | None = None, mac2_verified: bool | None = None) -> JournalRecord:
        values: dict[str, Any] = {"tac": tac, "mac2": mac2, "balance_after": balance_after,
                                  "mac2_verified": None if mac2_verified is None else int(mac2_verified)}
        if terminal_seq is not None:
            values["terminal_seq"] = terminal_seq
        return self._finish(record_id, "completed", **values)

    def recover(self, record_id: int, *, tac: bytes, mac2: bytes | None, balance_after: int,
                mac2_verified: bool | None = None) -> JournalRecord:
        return self._finish(record_id, "recovered", tac=tac, mac2=mac2, balance_after=balance_after,
                            mac2_verified=None if mac2_verified is None else int(mac2_verified))

    def fail(self, record_id: int, reason: str) -> JournalRecord:
        return self._finish(record_id, "failed", failure_reason=reason)

    def find(self, record_id: int) -> JournalRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM records WHERE id=?", (record_id,)).fetchone()
        return _row(row) if row else None

    def get(self, record_id: int) -> JournalRecord:
        record = self.find(record_id)
        if record is None:
            raise JournalError(f"journal has no record {record_id}")
        return record

    def records(self, state: str | None = None, app_serial: bytes | None = None) -> list[JournalRecord]:
        where: list[str] = []
        args: list[Any] = []
        if state is not None:
            where.append("state=?")
            args.append(state)
        if app_serial is not None:
            where.append("app_serial=?")
            args.append(app_serial)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM records" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, args)]

    def pending(self, app_serial: bytes | None = None) -> list[JournalRecord]:
        return self.records("pending", app_serial)

    def last_for_card(self, app_serial: bytes) -> JournalRecord | None:
        rows = self.records(app_serial=app_serial)
        return rows[-1] if rows else None

    def log_event(self, time: datetime, app_serial: bytes | None, terminal: str, opened: bool, reason: str,
                  amount: int = 0, journal_id: int | None = None) -> None:
        """Every decision, money or not (entries, refusals): for limits, anti-passback and audits."""
        self._write("INSERT INTO events (time, app_serial, terminal, decision, reason, amount, journal_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (time.isoformat(), app_serial, terminal, "open" if opened else "closed", reason, amount, journal_id))

    def events(self, app_serial: bytes | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
        sql = "SELECT time, app_serial, terminal, decision, reason, amount, journal_id FROM events WHERE 1=1"
        args: list[Any] = []
        if app_serial is not None:
            sql += " AND app_serial=?"
            args.append(app_serial)
        with self._lock:
            rows = list(self._db.execute(sql + " ORDER BY id", args))
        out = []
        for t, serial, terminal, decision, reason, amount, jid in rows:
            when = datetime.fromisoformat(t)
            if since is not None and when < since:
                continue
            out.append({"time": when, "app_serial": serial, "terminal": terminal, "decision": decision,
                        "reason": reason, "amount": amount, "journal_id": jid})
        return out

    def check_integrity(self) -> list[str]:
        with self._lock:
            rows = [r[0] for r in self._db.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    # --- settlement ---------------------------------------------------------------

    def export_batch(self, out: IO[str], terminal_id: bytes | None = None, all_records: bool = False) -> BatchHeader:
        """Write a batch (header + records) and mark the records exported, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cond = "state IN ('completed','recovered')" + ("" if all_records else " AND batch_id IS NULL")
                rows = [_row(r) for r in self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM records WHERE {cond} ORDER BY id")]
                lines = [json.dumps(r.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for r in rows]
                digest = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
                batch_id = uuid.uuid4().hex[:16].upper()
                terminal = (terminal_id or (rows[0].terminal_id if rows else b"")).hex().upper()
                header = BatchHeader(batch_id, terminal, len(rows), sum(r.amount for r in rows), digest, self._now())
                self._db.executemany("UPDATE records SET batch_id=? WHERE id=? AND batch_id IS NULL",
                                     [(batch_id, r.id) for r in rows])
                self._db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?)",
                                 (batch_id, header.created, header.count, header.total_amount, digest))
                out.write(json.dumps(header.to_json(), ensure_ascii=False) + "\n")
                out.writelines(lines)
                out.flush()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return header

    def prune(self, older_than: timedelta) -> int:
        """Delete exported records older than ``older_than``; never pending or unexported ones."""
        cutoff = (self.clock.now() - older_than).isoformat()
        cur = self._write(
            "DELETE FROM records WHERE batch_id IS NOT NULL AND state IN ('completed','recovered','failed')"
            " AND updated_at < ?", (cutoff,))
        return cur.rowcount


def read_batch(path: str | os.PathLike[str]) -> tuple[BatchHeader, list[dict[str, Any]]]:
    """Read and validate a settlement batch (count, total, SHA-256)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError as exc:
        raise FormatError(f"cannot read batch {os.fspath(path)!r}: {exc.strerror}") from None
    if not lines:
        raise FormatError("batch is empty: no header")
    try:
        head = json.loads(lines[0])
        header = BatchHeader(head["batch_id"], head["terminal"], int(head["count"]), int(head["total_amount"]),
                             head["sha256"], head.get("created", ""))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"batch line 1: bad header ({exc})") from None
    body = lines[1:]
    if hashlib.sha256("".join(body).encode("utf-8")).hexdigest() != header.sha256:
        raise FormatError("batch SHA-256 does not match its records")
    records = []
    for number, line in enumerate(body, 2):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise FormatError(f"batch line {number}: not JSON") from None
    if len(records) != header.count:
        raise FormatError(f"batch header says {header.count} records, {len(records)} follow")
    if sum(int(r.get("amount", 0)) for r in records) != header.total_amount:
        raise FormatError("batch total does not match its records")
    return header, records


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    failed: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


def _fields_from_json(obj: dict[str, Any]) -> tuple[bytes, macs.TacFields, bytes, Algorithm]:
    tx_type = int(obj["type"], 16)
    when = datetime.fromisoformat(obj["time"]).astimezone(BEIJING)
    date, time = macs.bcd_datetime(when)
    terminal = bytes.fromhex(obj["terminal_id"])
    if tx_type in macs.LOAD_TYPES:
        f = macs.TacFields(tx_type, obj["amount"], terminal, date, time, new_balance=obj["balance_after"] or 0,
                           online_seq=obj["card_seq"])
    else:
        f = macs.TacFields(tx_type, obj["amount"], terminal, date, time, terminal_seq=obj["terminal_seq"] or 0)
    return bytes.fromhex(obj["app_serial"]), f, bytes.fromhex(obj["tac"] or ""), Algorithm.parse(obj["algorithm"])


def _verify_chunk(args: tuple[dict[str, Any], list[dict[str, Any]]]) -> list[int]:
    issuer_json, items = args
    issuer = IssuerKeys.from_json(issuer_json)
    bad = []
    for obj in items:
        try:
            serial, f, tac, alg = _fields_from_json(obj)
            ok = len(tac) == 4 and verify_tac(issuer, serial, f, tac, alg)
        except (KeyError, ValueError, TypeError, FormatError):
            ok = False
        if not ok:
            bad.append(int(obj.get("id", -1)))
    return bad


def verify_records(records: Iterable[dict[str, Any]], issuer: IssuerKeys, workers: int | None = 1,
                   chunk: int = 5000) -> VerifyReport:
    """Check every TAC; ``workers=None`` uses every core."""
    items = list(records)
    chunks = [(issuer.to_json(), items[i : i + chunk]) for i in range(0, len(items), chunk)]
    n = (os.cpu_count() or 1) if workers is None else workers
    if n > 1 and len(chunks) > 1:
        import multiprocessing  # noqa: PLC0415

        with multiprocessing.get_context("fork").Pool(n) as pool:
            results = pool.map(_verify_chunk, chunks)
    else:
        results = [_verify_chunk(c) for c in chunks]
    failed = tuple(i for r in results for i in r)
    return VerifyReport(len(items), failed)
