"""The terminal's durable journal (SQLite, WAL).

A record is written and synced *before* DEBIT or CREDIT is sent (pending),
and completed after; a torn transaction is resolved later (recovered or
failed). Export writes settlement batches as JSON Lines (docs/journal.md).

Sync modes: ``write_ahead`` (the default) syncs the write-ahead records; a
completion (and an event) is committed at once — a killed process loses
nothing — but reaches the disk with the next synced commit or ``flush()``,
which the terminal loop calls while the card leaves, so the rider's decision
waits for one fsync, not two. A power cut in between leaves the record
pending, and the card's next tap resolves it. ``full`` syncs every state
change before it returns (two fsyncs per transaction).

In ``write_ahead`` mode the connection runs with ``synchronous=NORMAL`` and
the journal syncs the WAL file itself (fdatasync) after a commit that must be
durable: what SQLite's FULL does after every commit (sqlite.org/pragma.html,
PRAGMA synchronous; wal.html, "Performance Considerations"), without switching
the pragma twice per transaction. Every committed frame is in that file, so one sync covers the
commit and all before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cardlib.batch import BatchHeader, batch_digest, batch_lines, batch_terminal, write_batch
from cardlib.clock import BEIJING, Clock
from cardlib.crypto import Algorithm
from cardlib.durable import sync_directory
from cardlib.errors import FormatError, YktError
from cardlib.pboc import macs
from cardlib.safefiles import check_regular

SCHEMA_VERSION = 6  # 1 → 2: station and line columns; 2 → 3: the batch index without state;
# 3 → 4: events numbered without AUTOINCREMENT; 4 → 5: the state grey;
# 5 → 6: the card's issuer id, the batch's sequence number
#: grey (灰记录): the card's counter shows the money moved, but its proof is gone (the card was
#: used elsewhere before the re-tap): it counts in the card's account, never in a batch (no TAC)
STATES = ("pending", "completed", "failed", "recovered", "grey")
KINDS = ("load", "purchase", "composite")
SYNC_MODES = ("full", "write_ahead")
CHECKPOINT_AFTER = 200  # writes; flush() copies the WAL back then, off the rider's wait (SQLite's own comes at ~1000 pages)
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
        date, time = macs.bcd_datetime(self.tx_time.astimezone(BEIJING))
        if self.tx_type in macs.LOAD_TYPES:
            return macs.TacFields(self.tx_type, self.amount, self.terminal_id, date, time,
                                  new_balance=self.balance_after or 0, online_seq=self.card_seq)
        return macs.TacFields(self.tx_type, self.amount, self.terminal_id, date, time,
                              terminal_seq=self.terminal_seq or 0)


_COLUMNS = [f.name for f in fields(JournalRecord)]
_RETURNING = "RETURNING " + ", ".join(_COLUMNS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN ('pending','completed','failed','recovered','grey')),
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
    station TEXT NOT NULL DEFAULT '',
    line TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    batch_id TEXT,
    failure_reason TEXT,
    issuer_id BLOB
);
CREATE INDEX IF NOT EXISTS records_card ON records (app_serial, state);
CREATE INDEX IF NOT EXISTS records_batch ON records (batch_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, app_serial BLOB, terminal TEXT NOT NULL,
    decision TEXT NOT NULL, reason TEXT NOT NULL, amount INTEGER NOT NULL, journal_id INTEGER
);
CREATE INDEX IF NOT EXISTS events_card ON events (app_serial, time);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, count INTEGER NOT NULL,
    total_amount INTEGER NOT NULL, sha256 TEXT NOT NULL, batch_seq INTEGER
);
CREATE TABLE IF NOT EXISTS batch_records (
    batch_id TEXT NOT NULL, record_id INTEGER NOT NULL, PRIMARY KEY (batch_id, record_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# From this record id on, a repeated counter is an error; below it the records were written
# before counters were checked (a fresh per-command PSAM, one image opened twice) and repeats
# among them are warnings. Set once, when the meta table is made (docs/journal.md).
_UNIQUE_FROM = "counters_unique_from"
_COUNTER_KIND = f"CASE WHEN tx_type IN ({', '.join(str(t) for t in sorted(macs.LOAD_TYPES))}) THEN 'online' ELSE 'offline' END"
# Every prune, so that the record ids it removed are told from records deleted by hand: the ids
# as ranges of consecutive ids, how many, and the SHA-256 of their batch lines. Its own step, run
# on every read-write open after the schema (no schema version: a journal without the table reads
# as one whose prunes were not recorded).
_PRUNES_SCHEMA = """
CREATE TABLE IF NOT EXISTS prunes (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, cutoff TEXT NOT NULL, count INTEGER NOT NULL,
    ranges TEXT NOT NULL, sha256 TEXT NOT NULL
)
"""
# From this record id on, a missing id that no recorded prune removed is an error; below it the
# journal was pruned before prunes were recorded, and such a gap is a warning. Set once, to the
# next id the journal gives, when the prunes table is made (docs/journal.md).
_IDS_ACCOUNTED_FROM = "ids_accounted_from"
# Applied in order to a journal whose user_version is the key.
_MIGRATIONS = {
    1: "ALTER TABLE records ADD COLUMN station TEXT NOT NULL DEFAULT '';"
       "ALTER TABLE records ADD COLUMN line TEXT NOT NULL DEFAULT '';",
    # (batch_id, state) moved every completion's entry across the index: two more pages per commit
    2: "DROP INDEX IF EXISTS records_batch;",
    # AUTOINCREMENT wrote its counter page on every event (one per tap); events are never deleted, so
    # max(id) + 1 numbers them the same. Rebuilt: SQLite cannot drop AUTOINCREMENT in place.
    3: "CREATE TABLE events_v4 (id INTEGER PRIMARY KEY, time TEXT NOT NULL, app_serial BLOB,"
       " terminal TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL, amount INTEGER NOT NULL,"
       " journal_id INTEGER);"
       "INSERT INTO events_v4 SELECT id, time, app_serial, terminal, decision, reason, amount, journal_id"
       " FROM events;"
       "DROP TABLE events;"
       "ALTER TABLE events_v4 RENAME TO events;"
       "DELETE FROM sqlite_sequence WHERE name='events';",
    # the state grey: SQLite cannot change a CHECK in place, so the table is rebuilt with its
    # rows, its AUTOINCREMENT counter and its index (a self-contained step)
    4: "CREATE TABLE records_v5 (id INTEGER PRIMARY KEY AUTOINCREMENT,"
       " state TEXT NOT NULL CHECK (state IN ('pending','completed','failed','recovered','grey')),"
       " kind TEXT NOT NULL, tx_type INTEGER NOT NULL, app_serial BLOB NOT NULL, card_seq INTEGER NOT NULL,"
       " amount INTEGER NOT NULL CHECK (amount >= 0), balance_before INTEGER NOT NULL, balance_after INTEGER,"
       " terminal_id BLOB NOT NULL, terminal_seq INTEGER, tx_time TEXT NOT NULL, tac BLOB, mac2 BLOB,"
       " mac2_verified INTEGER, algorithm TEXT NOT NULL, key_version INTEGER NOT NULL, key_index INTEGER NOT NULL,"
       " test INTEGER NOT NULL, station TEXT NOT NULL DEFAULT '', line TEXT NOT NULL DEFAULT '',"
       " extra TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL, batch_id TEXT,"
       " failure_reason TEXT);"
       "INSERT INTO records_v5 (id, state, kind, tx_type, app_serial, card_seq, amount, balance_before,"
       " balance_after, terminal_id, terminal_seq, tx_time, tac, mac2, mac2_verified, algorithm, key_version,"
       " key_index, test, station, line, extra, created_at, updated_at, batch_id, failure_reason)"
       " SELECT id, state, kind, tx_type, app_serial, card_seq, amount, balance_before, balance_after,"
       " terminal_id, terminal_seq, tx_time, tac, mac2, mac2_verified, algorithm, key_version, key_index, test,"
       " station, line, extra, created_at, updated_at, batch_id, failure_reason FROM records;"
       "UPDATE sqlite_sequence SET seq=(SELECT seq FROM sqlite_sequence WHERE name='records')"
       " WHERE name='records_v5' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name='records');"
       "DROP TABLE records;"
       "ALTER TABLE records_v5 RENAME TO records;"
       "CREATE INDEX IF NOT EXISTS records_card ON records (app_serial, state);",
    # clearing needs the card's issuer (whose keys check its TAC) and each terminal's batches in order;
    # records and batches made before stay without (NULL): their lines and headers are written as before
    5: "ALTER TABLE records ADD COLUMN issuer_id BLOB;"
       "ALTER TABLE batches ADD COLUMN batch_seq INTEGER;",
}


def _create_private(path: str) -> None:
    """A new journal file is made 0600 (like card images): the records name cards and amounts.
    SQLite gives its -wal and -shm files the mode of the database file."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))


_INTEGERS = ("id", "tx_type", "card_seq", "amount", "balance_before", "key_version", "key_index")


def _row(row: Sequence[Any]) -> JournalRecord:
    """A stored row as a record; a value the journal never writes (a file edited by hand or by
    another program) is a JournalError naming the record, not a crash further on."""
    d = dict(zip(_COLUMNS, row, strict=True))
    try:
        for key in ("tx_time", "created_at", "updated_at"):
            d[key] = datetime.fromisoformat(d[key])
            if d[key].tzinfo is None:
                raise ValueError(f"{key} {row[_COLUMNS.index(key)]!r} has no time zone")
        for key in ("app_serial", "terminal_id", "tac", "mac2", "issuer_id"):
            d[key] = bytes(d[key]) if d[key] is not None else None
        for key in _INTEGERS:
            if type(d[key]) is not int:
                raise ValueError(f"{key} {d[key]!r} is not an integer")
        for key in ("balance_after", "terminal_seq"):
            if d[key] is not None and type(d[key]) is not int:
                raise ValueError(f"{key} {d[key]!r} is not an integer")
        if d["amount"] < 0:
            raise ValueError(f"amount {d['amount']} is negative")
        if d["extra"] and not isinstance(json.loads(d["extra"]), dict):
            raise ValueError("extra is not a JSON object")
    except (ValueError, TypeError, RecursionError) as exc:
        raise JournalError(f"journal record {d.get('id')!r}: {str(exc)[:120]}") from None
    d["mac2_verified"] = None if d["mac2_verified"] is None else bool(d["mac2_verified"])
    d["test"] = bool(d["test"])
    return JournalRecord(**d)


class Journal:
    """One SQLite file; every state change is one transaction, synced as ``sync`` says."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock | None = None, sync: str = "write_ahead", *,
                 create: bool = True, readonly: bool = False) -> None:
        """Open (or, with ``create``, make: mode 0600) a journal. ``create=False`` refuses a file that
        is not a journal already; ``readonly`` opens it read-only (SQLite ``mode=ro``): nothing is
        written, an older schema is not migrated (the error says to run ``ykt journal migrate``)."""
        self.path = os.fspath(path)
        self.clock = clock or Clock.system()
        if sync not in SYNC_MODES:
            raise JournalError(f"journal sync mode {sync!r} is not one of {', '.join(SYNC_MODES)}")
        self.sync = sync
        self.readonly = readonly
        self.schema_before: int | None = None  # the schema found on opening (before a migration)
        self._unsynced = False  # a commit made under synchronous=NORMAL that no sync has covered yet
        self._wal_fd: int | None = None  # the WAL file, opened at the first sync
        self._writes = 0  # since the last checkpoint
        on_disk = self.path not in ("", ":memory:") and not self.path.startswith("file:")
        if on_disk:
            check_regular(self.path, "journal", FormatError)
            if not (create and not readonly) and not os.path.exists(self.path):
                raise FormatError(f"{self.path}: no such journal")
        try:
            if readonly:
                self._db = sqlite3.connect(Path(self.path).absolute().as_uri() + "?mode=ro", uri=True,
                                           isolation_level=None, check_same_thread=False, timeout=10)
            else:
                if on_disk and create:
                    _create_private(self.path)
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        except sqlite3.Error as exc:
            raise FormatError(f"{self.path}: cannot open journal: {exc}") from None
        except OSError as exc:
            raise FormatError(f"{self.path}: cannot create journal: {exc.strerror}") from None
        try:
            self.schema_before = self._check_journal(must_exist=not create or readonly)
            if readonly:
                self._own_sync = False
            else:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                # the WAL synced by hand; where SQLite could not use a WAL (":memory:", some network
                # file systems) it syncs as FULL itself
                self._own_sync = sync == "write_ahead" and str(mode).lower() == "wal"
                self._db.execute("PRAGMA synchronous=NORMAL" if self._own_sync else "PRAGMA synchronous=FULL")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            self._release()
            raise FormatError(f"{self.path}: not a usable journal: {exc}") from None
        except BaseException:
            self._release()
            raise
        self._lock = threading.RLock()
        self._pending: dict[int, JournalRecord] = {}  # records begun by this object and not finished yet

    def _check_journal(self, must_exist: bool) -> int | None:
        """The schema version of the journal in the file, None for a new (empty) database; a SQLite
        file holding other tables, or (``must_exist``) no journal at all, is refused untouched."""
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FormatError(f"{self.path}: journal schema {version} is newer than this yikatong ({SCHEMA_VERSION})")
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "records" not in names:
            if names or must_exist:
                raise FormatError(f"{self.path}: not a journal (no records table)")
            return None
        if self.readonly and version < SCHEMA_VERSION:
            raise JournalError(f"{self.path}: journal schema {version} is older than {SCHEMA_VERSION}; run"
                               f" 'ykt journal migrate --journal {self.path}' first")
        return version

    def _migrate(self) -> None:
        """Create the schema, or bring an older journal up to SCHEMA_VERSION, in one transaction."""
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]  # _check_journal refused a newer one
            exists = self._db.execute("SELECT 1 FROM sqlite_master WHERE name='records'").fetchone()
            if exists and version < SCHEMA_VERSION:
                for step in range(max(version, 1), SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
            marked = self._db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if not marked:
                self._db.execute("INSERT OR IGNORE INTO meta SELECT ?, COALESCE(MAX(id), 0) + 1 FROM records",
                                 (_UNIQUE_FROM,))
            self._db.execute(_PRUNES_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta SELECT ?, COALESCE((SELECT seq FROM sqlite_sequence"
                             " WHERE name='records'), 0) + 1", (_IDS_ACCOUNTED_FROM,))
            if version != SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @classmethod
    def open(cls, path: str | os.PathLike[str], clock: Clock | None = None) -> Journal:
        return cls(path, clock)

    def close(self) -> None:
        self.flush()
        self._release()

    def _release(self) -> None:
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: Sequence[Any], durable: bool = True) -> tuple[sqlite3.Cursor, list[Any]]:
        """One statement as its own transaction (autocommit: SQLite commits when the
        statement finishes); the cursor and what a RETURNING clause gave. In write_ahead
        mode ``durable`` syncs the WAL before returning, otherwise the sync waits."""
        with self._lock:
            cur = self._db.execute(sql, args)
            rows = cur.fetchall()
            self._writes += 1
            if self._own_sync:
                if durable:
                    self._sync_wal()
                else:
                    self._unsynced = True
            return cur, rows

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A transaction of several statements: committed (and durable in every mode) when
        the block ends, rolled back when it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if self._own_sync:
            self._sync_wal()

    def _sync_wal(self) -> None:
        """Every commit so far onto the disk: fdatasync of the WAL, which holds them all."""
        try:
            fd = self._wal_fd
            if fd is None:  # the WAL exists from the first commit on and stays while we are connected
                fd = self._wal_fd = os.open(self.path + "-wal", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                sync_directory(os.path.dirname(os.path.abspath(self.path)))  # its name, once
            _fdatasync(fd)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot sync the journal: {exc.strerror or exc}") from None
        self._unsynced = False

    def flush(self) -> None:
        """Put every commit on disk now (only write_ahead mode ever has one waiting); now and
        then also copy the WAL back into the file, here rather than in a rider's commit."""
        with self._lock:
            if self._unsynced:
                self._sync_wal()
            if self._writes >= CHECKPOINT_AFTER and self._own_sync:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._writes = 0

    def _now(self) -> str:
        return _stamp(self.clock.now())

    def begin(
        self, *, kind: str, tx_type: int, app_serial: bytes, card_seq: int, amount: int, balance_before: int,
        terminal_id: bytes, tx_time: datetime, algorithm: Algorithm | str = "3des", key_version: int = 1,
        key_index: int = 1, test: bool = False, terminal_seq: int | None = None, station: str = "",
        line: str = "", extra: dict[str, Any] | None = None, issuer_id: bytes | None = None,
    ) -> JournalRecord:
        """The write-ahead record: committed and synced before DEBIT/CREDIT is sent."""
        alg = algorithm.value if isinstance(algorithm, Algorithm) else algorithm
        if kind not in KINDS:
            raise JournalError(f"journal record kind {kind!r} is not one of {', '.join(KINDS)}")
        if alg not in ("3des", "sm4"):
            raise JournalError(f"journal record algorithm {alg!r} is not 3des or sm4")
        if len(app_serial) != 10 or len(terminal_id) != 6 or (issuer_id is not None and len(issuer_id) != 8):
            raise JournalError("journal record: app_serial has 10 bytes, terminal_id 6 and issuer_id 8")
        if amount < 0:
            raise JournalError(f"journal record: amount must not be negative, got {amount}")
        now, when = self._now(), _stamp(tx_time)
        extra_text = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else ""
        with self._lock:
            cur, _ = self._write(
                "INSERT INTO records (state, kind, tx_type, app_serial, card_seq, amount, balance_before,"
                " terminal_id, terminal_seq, tx_time, algorithm, key_version, key_index, test, station, line, extra,"
                " created_at, updated_at, issuer_id)"
                " VALUES ('pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, tx_type, bytes(app_serial), card_seq, amount, balance_before, bytes(terminal_id), terminal_seq,
                 when, alg, key_version, key_index, int(test), station, line, extra_text, now, now,
                 None if issuer_id is None else bytes(issuer_id)),
            )
            assert cur.lastrowid is not None
            # the record as a read would give it back (the wallet needs it at once; no second statement)
            stamp = datetime.fromisoformat(now)
            record = JournalRecord(
                cur.lastrowid, "pending", kind, tx_type, bytes(app_serial), card_seq, amount, balance_before, None,
                bytes(terminal_id), terminal_seq, datetime.fromisoformat(when), None, None, None, alg, key_version,
                key_index, bool(test), station, line, extra_text, stamp, stamp, None, None,
                None if issuer_id is None else bytes(issuer_id))
            self._pending[record.id] = record
            if len(self._pending) > 64:  # only the newest few can still be finished by this terminal soon
                del self._pending[next(iter(self._pending))]
        return record

    def _finish(self, record_id: int, state: str, **values: Any) -> JournalRecord:
        sets = ", ".join(f"{k}=?" for k in values)
        now = self._now()
        with self._lock:
            known = self._pending.pop(record_id, None)  # begun here: no need to read the row back
            cur, rows = self._write(
                f"UPDATE records SET state=?, updated_at=?{', ' + sets if sets else ''} WHERE id=? AND state='pending'"
                f"{'' if known else ' ' + _RETURNING}",
                (state, now, *values.values(), record_id), durable=False,
            )
        if cur.rowcount != 1:
            current = self.find(record_id)
            if current is None:
                raise JournalError(f"journal has no record {record_id}")
            raise JournalError(f"record {record_id} is already {current.state}: it cannot become {state}")
        if known is None:
            return _row(rows[0])
        if values.get("mac2_verified") is not None:
            values["mac2_verified"] = bool(values["mac2_verified"])
        # dataclasses.replace, without re-running __init__ over 26 fields on the hot path
        done: JournalRecord = object.__new__(JournalRecord)
        done.__dict__.update(known.__dict__, state=state, updated_at=datetime.fromisoformat(now), **values)
        return done

    def complete(self, record_id: int, *, tac: bytes, mac2: bytes | None, balance_after: int,
                 terminal_seq: int | None = None, mac2_verified: bool | None = None) -> JournalRecord:
        values: dict[str, Any] = {"tac": tac, "mac2": mac2, "balance_after": balance_after,
                                  "mac2_verified": None if mac2_verified is None else int(mac2_verified)}
        if terminal_seq is not None:
            values["terminal_seq"] = terminal_seq
        return self._finish(record_id, "completed", **values)

    def recover(self, record_id: int, *, tac: bytes, mac2: bytes | None, balance_after: int,
                mac2_verified: bool | None = None) -> JournalRecord:
        """A torn transaction proven done by the card (GET TRANSACTION PROVE)."""
        return self._finish(record_id, "recovered", tac=tac, mac2=mac2, balance_after=balance_after,
                            mac2_verified=None if mac2_verified is None else int(mac2_verified))

    def grey(self, record_id: int, *, balance_after: int, reason: str = "proof_gone") -> JournalRecord:
        """A torn transaction the card's counter shows done whose proof is gone (9406):
        the money moved, without a TAC; listed for the back office, never batched."""
        return self._finish(record_id, "grey", balance_after=balance_after, failure_reason=reason)

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

    def records(self, state: str | None = None, app_serial: bytes | None = None, *,
                since: datetime | None = None) -> list[JournalRecord]:
        """Records in id order, optionally of one state, one card, or with tx_time at or after ``since``."""
        where: list[str] = []
        args: list[Any] = []
        if state is not None:
            if state not in STATES:
                raise JournalError(f"journal state {state!r} is not one of {', '.join(STATES)}")
            where.append("state=?")
            args.append(state)
        if app_serial is not None:
            where.append("app_serial=?")
            args.append(bytes(app_serial))
        if since is not None:
            where.append("tx_time>=?")
            args.append(_stamp(since))
        sql = f"SELECT {', '.join(_COLUMNS)} FROM records" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, args)]

    def count(self) -> int:
        """How many records the journal holds."""
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return n

    def pending(self, app_serial: bytes | None = None) -> list[JournalRecord]:
        return self.records("pending", app_serial)

    def last_for_card(self, app_serial: bytes) -> JournalRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM records WHERE app_serial=? ORDER BY id DESC LIMIT 1",
                                   (bytes(app_serial),)).fetchone()
        return _row(row) if row else None

    def log_event(self, time: datetime, app_serial: bytes | None, terminal: str, opened: bool, reason: str,
                  amount: int = 0, journal_id: int | None = None) -> None:
        """Every decision, money or not (entries, refusals): for limits, anti-passback and audits."""
        self._write("INSERT INTO events (time, app_serial, terminal, decision, reason, amount, journal_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (time.isoformat(), app_serial, terminal, "open" if opened else "closed", reason, amount, journal_id),
                    durable=False)

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
        """SQLite's own check plus the journal's invariants, then the grey records; empty when all is well."""
        return self.integrity_errors() + self.integrity_notes()

    def integrity_notes(self) -> list[str]:
        """Grey records: money that moved without a TAC, for the back office (not a fault of the journal)."""
        with self._lock:
            return [f"record {rid}: grey ({amount} fen moved on the card without a TAC): for the back office"
                    for rid, amount in self._db.execute("SELECT id, amount FROM records WHERE state='grey' ORDER BY id")]

    def integrity_errors(self) -> list[str]:
        """SQLite's own check, the journal's invariants and repeated counters."""
        with self._lock:
            problems = [r[0] for r in self._db.execute("PRAGMA integrity_check")]
            if problems == ["ok"]:
                problems = []
            for (rid,) in self._db.execute("SELECT id FROM records WHERE state IN ('completed','recovered')"
                                           " AND (tac IS NULL OR balance_after IS NULL)"):
                problems.append(f"record {rid}: settled without TAC or balance")
            for (rid,) in self._db.execute("SELECT id FROM records WHERE batch_id IS NOT NULL"
                                           " AND state NOT IN ('completed','recovered')"):
                problems.append(f"record {rid}: exported but not settled")
        problems.extend(text for text, older in self._counter_repeats() if not older)
        return problems

    def integrity_warnings(self) -> list[str]:
        """Repeated counters among records written before counters were checked."""
        return [text for text, older in self._counter_repeats() if older]

    def _counter_repeats(self) -> list[tuple[str, bool]]:
        """Settled records sharing (card, online or offline counter, value) or (terminal,
        terminal sequence): money taken or credited twice on one counter. A failed record
        may share its counter with the next (the card refused it, its counter did not move).
        Each with whether every record of it predates the check."""
        settled = "state IN ('completed','recovered','grey')"  # grey moved money on its counter too
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (_UNIQUE_FROM,)).fetchone()
            first = int(row[0]) if row else None  # no marker: written by a version before the check
            cards = list(self._db.execute(
                f"SELECT app_serial, {_COUNTER_KIND}, card_seq, GROUP_CONCAT(id), MAX(id) FROM records"
                f" WHERE {settled} GROUP BY 1, 2, 3 HAVING COUNT(*) > 1 ORDER BY MIN(id)"))
            terminals = list(self._db.execute(
                f"SELECT terminal_id, terminal_seq, GROUP_CONCAT(id), MAX(id) FROM records"
                f" WHERE {settled} AND terminal_seq IS NOT NULL GROUP BY 1, 2 HAVING COUNT(*) > 1 ORDER BY MIN(id)"))
        out = []
        for serial, kind, seq, ids, newest in cards:
            out.append((f"records {_ids(ids)}: card {bytes(serial).hex().upper()} {kind} counter {seq} used twice",
                        first is None or newest < first))
        for terminal, seq, ids, newest in terminals:
            out.append((f"records {_ids(ids)}: terminal {bytes(terminal).hex().upper()} sequence {seq} used twice",
                        first is None or newest < first))
        return out

    # --- settlement ---------------------------------------------------------------

    def export_batch(self, out: IO[str], terminal_id: bytes | None = None, all: bool = False,
                     *, all_records: bool = False, batch_id: str | None = None) -> BatchHeader:
        """Write a settlement batch (header + records, docs/journal.md).

        The batch id is assigned and the records marked exported in one
        transaction, committed *before* the file is written: a record is in at
        most one batch (no double settlement), and if writing fails the same
        batch is written again with ``batch_id=`` (nothing lost).
        ``all`` (or ``all_records``) re-exports records already exported
        before, in a new batch, without moving them out of their first one.
        """
        if batch_id is not None:
            header, lines = self._batch_lines(batch_id)
        else:
            header, lines = self._new_batch(terminal_id, all or all_records)
        write_batch(out, header, lines)
        return header

    def _new_batch(self, terminal_id: bytes | None, everything: bool) -> tuple[BatchHeader, list[str]]:
        with self._lock:
            with self._transaction():
                cond = "state IN ('completed','recovered')" + ("" if everything else " AND batch_id IS NULL")
                rows = [_row(r) for r in self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM records WHERE {cond} ORDER BY id")]
                lines = _lines(rows)
                new_id = uuid.uuid4().hex[:16].upper()
                seq = self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0] + 1  # this journal's nth
                header = BatchHeader(new_id, _terminal_hex(terminal_id, rows), len(rows), sum(r.amount for r in rows),
                                     batch_digest(lines), self._now(), seq)
                self._db.executemany("UPDATE records SET batch_id=? WHERE id=? AND batch_id IS NULL",
                                     [(new_id, r.id) for r in rows])
                self._db.executemany("INSERT INTO batch_records VALUES (?, ?)", [(new_id, r.id) for r in rows])
                self._db.execute("INSERT INTO batches (batch_id, created_at, count, total_amount, sha256, batch_seq)"
                                 " VALUES (?, ?, ?, ?, ?, ?)",
                                 (new_id, header.created, header.count, header.total_amount, header.sha256, seq))
        return header, lines

    def _batch_lines(self, batch_id: str) -> tuple[BatchHeader, list[str]]:
        with self._lock:
            meta = self._db.execute("SELECT created_at, count, total_amount, sha256, batch_seq FROM batches"
                                    " WHERE batch_id=?",
                                    (batch_id,)).fetchone()
            if meta is None:
                raise JournalError(f"journal has no batch {batch_id!r}")
            cols = ", ".join(f"r.{c}" for c in _COLUMNS)
            rows = [_row(r) for r in self._db.execute(
                f"SELECT {cols} FROM records r JOIN batch_records b ON b.record_id = r.id WHERE b.batch_id=?"
                " ORDER BY r.id", (batch_id,))]
        lines = _lines(rows)
        digest = batch_digest(lines)
        if len(rows) != meta[1] or digest != meta[3].upper():  # batches before 0.1 stored lower case
            raise JournalError(f"batch {batch_id}: records were pruned since; it cannot be written again")
        return BatchHeader(batch_id, _terminal_hex(None, rows), meta[1], meta[2], digest, meta[0], meta[4]), lines

    def batches(self) -> list[BatchHeader]:
        """Every batch exported from this journal, oldest first."""
        with self._lock:
            rows = list(self._db.execute("SELECT batch_id, created_at, count, total_amount, sha256, batch_seq"
                                         " FROM batches ORDER BY created_at, rowid"))
        return [BatchHeader(b, "", n, total, digest, created, seq) for b, created, n, total, digest, seq in rows]

    def prune(self, older_than: timedelta, clock: Clock | None = None) -> int:
        """Delete exported records whose transaction is older than ``older_than``.

        Never a pending record, never one that was not exported (failed
        records stay too: they are the audit trail of money that did not move).
        """
        if older_than < timedelta(0):
            raise JournalError("prune: the age must not be negative")
        try:
            cutoff = _stamp((clock or self.clock).now() - older_than)
        except OverflowError:  # older than the calendar's first day: no record is
            return 0
        with self._lock:
            with self._transaction():
                cond = "batch_id IS NOT NULL AND state IN ('completed','recovered') AND tx_time < ?"
                rows = [_row(r) for r in self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM records WHERE {cond} ORDER BY id", (cutoff,))]
                if not rows:
                    return 0
                self._db.execute(f"DELETE FROM batch_records WHERE record_id IN (SELECT id FROM records WHERE {cond})",
                                 (cutoff,))
                count = self._db.execute(f"DELETE FROM records WHERE {cond}", (cutoff,)).rowcount
                # what was removed, so that its ids are not taken for records deleted by hand
                self._db.execute("INSERT INTO prunes (time, cutoff, count, ranges, sha256) VALUES (?, ?, ?, ?, ?)",
                                 (_stamp((clock or self.clock).now()), cutoff, count,
                                  json.dumps(_runs(r.id for r in rows)),
                                  batch_digest(_lines(rows))))
        return count

    def prunes(self) -> list[Prune]:
        """Every recorded prune, oldest first (none in a journal never opened read-write by a version
        that records them)."""
        with self._lock:
            if not self._db.execute("SELECT 1 FROM sqlite_master WHERE name='prunes'").fetchone():
                return []
            rows = list(self._db.execute("SELECT id, time, cutoff, count, ranges, sha256 FROM prunes ORDER BY id"))
        out = []
        for pid, time, cutoff, count, ranges, digest in rows:
            try:
                runs = tuple((int(a), int(b)) for a, b in json.loads(ranges))
            except (ValueError, TypeError, RecursionError):
                raise JournalError(f"journal prune {pid}: its ranges {str(ranges)[:60]!r} are not [[first, last], ...]") from None
            out.append(Prune(pid, time, cutoff, count, runs, digest))
        return out

    def id_gaps(self) -> tuple[list[str], list[str]]:
        """Record ids the journal gave out that are gone and that no recorded prune removed, as
        (errors, warnings): a record deleted by hand. Ids come from AUTOINCREMENT, never reused, so
        every id up to the highest given out is a record or was pruned; a missing id below the
        ``ids_accounted_from`` marker is only a warning (pruned before prunes were recorded)."""
        prunes = self.prunes()
        covered = sorted(run for p in prunes for run in p.ranges)
        errors: list[str] = []
        with self._lock:
            gaps = list(self._db.execute(
                "SELECT prev + 1, id - 1 FROM (SELECT id, LAG(id, 1, 0) OVER (ORDER BY id) AS prev FROM records)"
                " WHERE id > prev + 1"))
            top, highest = self._db.execute("SELECT (SELECT seq FROM sqlite_sequence WHERE name='records'),"
                                            " (SELECT MAX(id) FROM records)").fetchone()
            mark = self._db.execute("SELECT value FROM meta WHERE key=?", (_IDS_ACCOUNTED_FROM,)).fetchone()
            for p in prunes:
                if p.count != sum(last - first + 1 for first, last in p.ranges):
                    errors.append(f"prune {p.id}: its count {p.count} is not the number of ids in its ranges")
                if any(self._db.execute("SELECT 1 FROM records WHERE id BETWEEN ? AND ?", run).fetchone()
                       for run in p.ranges):
                    errors.append(f"prune {p.id}: lists records that are still in the journal")
        if top is not None and top > (highest or 0):
            gaps.append(((highest or 0) + 1, top))
        first = int(mark[0]) if mark else None
        warnings: list[str] = []
        for a, b in gaps:
            for x, y in _uncovered(a, b, covered):
                if first is None or y < first:
                    warnings.append(_missing(x, y) + " (before prunes were recorded)")
                elif x >= first:
                    errors.append(_missing(x, y) + ", and no recorded prune removed it: deleted by hand?")
                else:
                    warnings.append(_missing(x, first - 1) + " (before prunes were recorded)")
                    errors.append(_missing(first, y) + ", and no recorded prune removed it: deleted by hand?")
        return errors, warnings


@dataclass(frozen=True)
class Prune:
    """One recorded prune: when, the cutoff, how many records, their ids as (first, last) runs and
    the SHA-256 (upper-case hex) of their batch lines."""

    id: int
    time: str
    cutoff: str
    count: int
    ranges: tuple[tuple[int, int], ...]
    sha256: str


def _runs(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def _uncovered(a: int, b: int, covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [a, b] outside the sorted runs ``covered``."""
    out = []
    for first, last in covered:
        if last < a or first > b:
            continue
        if first > a:
            out.append((a, first - 1))
        a = max(a, last + 1)
        if a > b:
            return out
    return [*out, (a, b)]


def _missing(x: int, y: int) -> str:
    return f"record {x}: missing" if x == y else f"records {x}-{y}: missing ({y - x + 1})"


_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _ids(text: str) -> str:
    return ", ".join(str(i) for i in sorted(int(i) for i in text.split(",")))


def _stamp(when: datetime) -> str:
    """Times are stored as Beijing ISO 8601 with microseconds, so text order is time order."""
    if when.tzinfo is None:
        raise JournalError("journal times must be time-zone aware")
    return when.astimezone(BEIJING).isoformat(timespec="microseconds")


def _lines(rows: Iterable[JournalRecord]) -> list[str]:
    return batch_lines(r.to_json() for r in rows)


def _terminal_hex(terminal_id: bytes | None, rows: Sequence[JournalRecord]) -> str:
    return batch_terminal(terminal_id, (r.terminal_id for r in rows))
