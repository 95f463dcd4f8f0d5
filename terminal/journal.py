"""The terminal's durable journal (SQLite, WAL): the journal only.

A record is written and synced *before* DEBIT or CREDIT is sent (pending),
and completed after; a torn transaction is resolved later (recovered or
failed). The record and its row checks are ``journal_record``, the schema and
migrations ``journal_schema``, the integrity queries ``journal_integrity``,
batches and pruning ``journal_export``; the batch format is ``cardlib.batch``.

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
the pragma twice per transaction; every committed frame is in that file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cardlib.batch import BatchHeader
from cardlib.clock import Clock
from cardlib.crypto import Algorithm
from cardlib.durable import sync_directory
from cardlib.errors import FormatError
from cardlib.safefiles import check_regular
from terminal import journal_export, journal_integrity, journal_schema
from terminal.journal_integrity import Prune
from terminal.journal_record import (
    KINDS,
    MOVED,
    RETURNING,
    SELECT,
    SETTLED,
    STATES,
    JournalError,
    JournalRecord,
    check_new,
    from_row,
    stamp,
)
from terminal.journal_schema import SCHEMA_VERSION

SYNC_MODES = ("full", "write_ahead")
CHECKPOINT_AFTER = 200  # writes; flush() copies the WAL back then, off the rider's wait (SQLite's own comes at ~1000 pages)
__all__ = ["CHECKPOINT_AFTER", "KINDS", "MOVED", "SCHEMA_VERSION", "SETTLED", "STATES", "SYNC_MODES",
           "Journal", "JournalError", "JournalRecord", "Prune"]


def _written(**fields: Any) -> JournalRecord:
    """The record the journal just wrote, as a read would give it back, without the dataclass's
    ``__init__`` over 27 fields: begin and complete are B5's hot path (docs/performance.md)."""
    record: JournalRecord = object.__new__(JournalRecord)
    record.__dict__.update(fields)
    return record


@functools.cache
def _update_sql(columns: tuple[str, ...], returning: bool) -> str:
    """A pending record's move to its end state, setting ``columns`` (a handful of shapes)."""
    sets = "".join(f", {column}=?" for column in columns)
    return (f"UPDATE records SET state=?, updated_at=?{sets} WHERE id=? AND state='pending'"
            f"{' ' + RETURNING if returning else ''}")


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
        self._db = self._connect(on_disk and create and not readonly)
        try:
            self.schema_before = journal_schema.check_version(self._db, self.path, not create or readonly, readonly)
            if readonly:
                self._own_sync = False
            else:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                # the WAL synced by hand; where SQLite could not use a WAL (":memory:", some network
                # file systems) it syncs as FULL itself
                self._own_sync = sync == "write_ahead" and str(mode).lower() == "wal"
                self._db.execute("PRAGMA synchronous=NORMAL" if self._own_sync else "PRAGMA synchronous=FULL")
                with self._transaction():
                    journal_schema.migrate(self._db)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise FormatError(f"{self.path}: not a usable journal: {exc}") from None
        except BaseException:
            self._release()
            raise
        self._lock = threading.RLock()
        self._pending: dict[int, JournalRecord] = {}  # records begun by this object and not finished yet

    def _connect(self, make: bool) -> sqlite3.Connection:
        """The connection (``make``: the file made first, mode 0600); read-only with SQLite's mode=ro."""
        try:
            if self.readonly:
                return sqlite3.connect(Path(self.path).absolute().as_uri() + "?mode=ro", uri=True,
                                       isolation_level=None, check_same_thread=False, timeout=10)
            if make:
                journal_schema.create_private(self.path)
            return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        except sqlite3.Error as exc:
            raise FormatError(f"{self.path}: cannot open journal: {exc}") from None
        except OSError as exc:
            raise FormatError(f"{self.path}: cannot create journal: {exc.strerror}") from None

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
        return stamp(self.clock.now())

    def begin(
        self, *, kind: str, tx_type: int, app_serial: bytes, card_seq: int, amount: int, balance_before: int,
        terminal_id: bytes, tx_time: datetime, algorithm: Algorithm | str = "3des", key_version: int = 1,
        key_index: int = 1, test: bool = False, terminal_seq: int | None = None, station: str = "",
        line: str = "", extra: dict[str, Any] | None = None, issuer_id: bytes | None = None,
    ) -> JournalRecord:
        """The write-ahead record: committed and synced before DEBIT/CREDIT is sent."""
        alg = algorithm.value if isinstance(algorithm, Algorithm) else algorithm
        check_new(kind, alg, app_serial, terminal_id, issuer_id, amount)
        now, when = self._now(), stamp(tx_time)
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
            made = datetime.fromisoformat(now)
            record = _written(
                id=cur.lastrowid, state="pending", kind=kind, tx_type=tx_type, app_serial=bytes(app_serial),
                card_seq=card_seq, amount=amount, balance_before=balance_before, balance_after=None,
                terminal_id=bytes(terminal_id), terminal_seq=terminal_seq, tx_time=datetime.fromisoformat(when),
                tac=None, mac2=None, mac2_verified=None, algorithm=alg, key_version=key_version, key_index=key_index,
                test=bool(test), station=station, line=line, extra=extra_text, created_at=made, updated_at=made,
                batch_id=None, failure_reason=None, issuer_id=None if issuer_id is None else bytes(issuer_id))
            self._pending[record.id] = record
            if len(self._pending) > 64:  # only the newest few can still be finished by this terminal soon
                del self._pending[next(iter(self._pending))]
        return record

    def _finish(self, record_id: int, state: str, **values: Any) -> JournalRecord:
        now = self._now()
        with self._lock:
            known = self._pending.pop(record_id, None)  # begun here: no need to read the row back
            cur, rows = self._write(_update_sql(tuple(values), known is None),
                                    (state, now, *values.values(), record_id), durable=False)
        if cur.rowcount != 1:
            current = self.find(record_id)
            if current is None:
                raise JournalError(f"journal has no record {record_id}")
            raise JournalError(f"record {record_id} is already {current.state}: it cannot become {state}")
        if known is None:
            return from_row(rows[0])
        if values.get("mac2_verified") is not None:
            values["mac2_verified"] = bool(values["mac2_verified"])
        return _written(**{**known.__dict__, "state": state, "updated_at": datetime.fromisoformat(now), **values})

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
            row = self._db.execute(SELECT + " WHERE id=?", (record_id,)).fetchone()
        return from_row(row) if row else None

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
            args.append(stamp(since))
        sql = SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        with self._lock:
            return [from_row(r) for r in self._db.execute(sql, args)]

    def count(self) -> int:
        """How many records the journal holds."""
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return n

    def pending(self, app_serial: bytes | None = None) -> list[JournalRecord]:
        return self.records("pending", app_serial)

    def last_for_card(self, app_serial: bytes) -> JournalRecord | None:
        with self._lock:
            row = self._db.execute(SELECT + " WHERE app_serial=? ORDER BY id DESC LIMIT 1",
                                   (bytes(app_serial),)).fetchone()
        return from_row(row) if row else None

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
            return journal_integrity.notes(self._db)

    def integrity_errors(self) -> list[str]:
        """SQLite's own check, the journal's invariants and repeated counters."""
        with self._lock:
            return journal_integrity.errors(self._db)

    def integrity_warnings(self) -> list[str]:
        """Repeated counters among records written before counters were checked."""
        with self._lock:
            return [text for text, older in journal_integrity.counter_repeats(self._db) if older]

    def prunes(self) -> list[Prune]:
        """Every recorded prune, oldest first."""
        with self._lock:
            return journal_integrity.prunes(self._db)

    def id_gaps(self) -> tuple[list[str], list[str]]:
        """Record ids gone that no recorded prune removed, as (errors, warnings)."""
        with self._lock:
            return journal_integrity.id_gaps(self._db)

    def export_batch(self, out: IO[str], terminal_id: bytes | None = None, all: bool = False,
                     *, all_records: bool = False, batch_id: str | None = None) -> BatchHeader:
        """Write a settlement batch: each record in at most one batch, marked before the file is
        written (``terminal.journal_export.export_batch`` says how)."""
        return journal_export.export_batch(self, out, terminal_id, all, all_records=all_records, batch_id=batch_id)

    def batches(self) -> list[BatchHeader]:
        """Every batch exported from this journal, oldest first."""
        return journal_export.batches(self)

    def prune(self, older_than: timedelta, clock: Clock | None = None) -> int:
        """Delete exported records older than ``older_than`` (never pending or unexported ones)."""
        return journal_export.prune(self, older_than, clock)


_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
