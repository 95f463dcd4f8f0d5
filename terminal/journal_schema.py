"""The journal's SQLite schema, its migrations and the file's first checks.

A journal's ``PRAGMA user_version`` is its schema version; an older journal is
brought up to SCHEMA_VERSION in one transaction when opened read-write
(``ykt journal migrate``), a newer one is refused (docs/journal.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from cardlib.errors import FormatError
from terminal.journal_record import JournalError

SCHEMA_VERSION = 6  # 1 → 2: station and line columns; 2 → 3: the batch index without state;
# 3 → 4: events numbered without AUTOINCREMENT; 4 → 5: the state grey;
# 5 → 6: the card's issuer id, the batch's sequence number
SCHEMA = """
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
UNIQUE_FROM = "counters_unique_from"
# Every prune, so that the record ids it removed are told from records deleted by hand: the ids
# as ranges of consecutive ids, how many, and the SHA-256 of their batch lines. Its own step, run
# on every read-write open after the schema (no schema version: a journal without the table reads
# as one whose prunes were not recorded).
PRUNES_SCHEMA = """
CREATE TABLE IF NOT EXISTS prunes (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, cutoff TEXT NOT NULL, count INTEGER NOT NULL,
    ranges TEXT NOT NULL, sha256 TEXT NOT NULL
)
"""
# From this record id on, a missing id that no recorded prune removed is an error; below it the
# journal was pruned before prunes were recorded, and such a gap is a warning. Set once, to the
# next id the journal gives, when the prunes table is made (docs/journal.md).
IDS_ACCOUNTED_FROM = "ids_accounted_from"
# Applied in order to a journal whose user_version is the key.
MIGRATIONS = {
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


def create_private(path: str) -> None:
    """A new journal file is made 0600 (like card images): the records name cards and amounts.
    SQLite gives its -wal and -shm files the mode of the database file."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))



def check_version(db: sqlite3.Connection, path: str, must_exist: bool, readonly: bool) -> int | None:
    """The schema version of the journal in the file, None for a new (empty) database; a SQLite
    file holding other tables, or (``must_exist``) no journal at all, is refused untouched; a
    read-only journal of an older schema too (it cannot be migrated)."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise FormatError(f"{path}: journal schema {version} is newer than this yikatong ({SCHEMA_VERSION})")
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "records" not in names:
        if names or must_exist:
            raise FormatError(f"{path}: not a journal (no records table)")
        return None
    if readonly and version < SCHEMA_VERSION:
        raise JournalError(f"{path}: journal schema {version} is older than {SCHEMA_VERSION}; run"
                           f" 'ykt journal migrate --journal {path}' first")
    return version


def migrate(db: sqlite3.Connection) -> None:
    """Create the schema, or bring an older journal up to SCHEMA_VERSION (inside the caller's
    transaction: all of it or nothing)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]  # check_version refused a newer one
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE name='records'").fetchone()
    if exists and version < SCHEMA_VERSION:
        for step in range(max(version, 1), SCHEMA_VERSION):
            _run(db, MIGRATIONS[step])
    marked = db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
    _run(db, SCHEMA)
    if not marked:
        db.execute("INSERT OR IGNORE INTO meta SELECT ?, COALESCE(MAX(id), 0) + 1 FROM records", (UNIQUE_FROM,))
    db.execute(PRUNES_SCHEMA)
    db.execute("INSERT OR IGNORE INTO meta SELECT ?, COALESCE((SELECT seq FROM sqlite_sequence"
               " WHERE name='records'), 0) + 1", (IDS_ACCOUNTED_FROM,))
    if version != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _run(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
