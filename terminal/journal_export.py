"""Settlement batches out of the journal, and pruning what was settled (docs/journal.md).

The batch format is ``cardlib.batch``'s; here are the journal's side of it: which
records go into a batch, marking them exported in the same transaction, writing a
batch again, and deleting old exported records with a note of what went.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import IO, TYPE_CHECKING

from cardlib.batch import BatchHeader, batch_digest, batch_lines, batch_terminal, write_batch
from cardlib.clock import Clock
from terminal.journal_integrity import runs
from terminal.journal_record import COLUMNS, SELECT, JournalError, JournalRecord, from_row, stamp

if TYPE_CHECKING:
    from terminal.journal import Journal


def export_batch(journal: Journal, out: IO[str], terminal_id: bytes | None = None, all: bool = False,
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
        header, lines = _batch_lines(journal, batch_id)
    else:
        header, lines = _new_batch(journal, terminal_id, all or all_records)
    write_batch(out, header, lines)
    return header


def _new_batch(journal: Journal, terminal_id: bytes | None, everything: bool) -> tuple[BatchHeader, list[str]]:
    with journal._lock:
        with journal._transaction():
            cond = "state IN ('completed','recovered')" + ("" if everything else " AND batch_id IS NULL")
            rows = [from_row(r) for r in journal._db.execute(SELECT + f" WHERE {cond} ORDER BY id")]
            lines = _lines(rows)
            new_id = uuid.uuid4().hex[:16].upper()
            seq = journal._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0] + 1  # this journal's nth
            header = BatchHeader(new_id, _terminal_hex(terminal_id, rows), len(rows), sum(r.amount for r in rows),
                                 batch_digest(lines), journal._now(), seq)
            journal._db.executemany("UPDATE records SET batch_id=? WHERE id=? AND batch_id IS NULL",
                                 [(new_id, r.id) for r in rows])
            journal._db.executemany("INSERT INTO batch_records VALUES (?, ?)", [(new_id, r.id) for r in rows])
            journal._db.execute("INSERT INTO batches (batch_id, created_at, count, total_amount, sha256, batch_seq)"
                             " VALUES (?, ?, ?, ?, ?, ?)",
                             (new_id, header.created, header.count, header.total_amount, header.sha256, seq))
    return header, lines


def _batch_lines(journal: Journal, batch_id: str) -> tuple[BatchHeader, list[str]]:
    with journal._lock:
        meta = journal._db.execute("SELECT created_at, count, total_amount, sha256, batch_seq FROM batches"
                                " WHERE batch_id=?",
                                (batch_id,)).fetchone()
        if meta is None:
            raise JournalError(f"journal has no batch {batch_id!r}")
        cols = ", ".join(f"r.{c}" for c in COLUMNS)
        rows = [from_row(r) for r in journal._db.execute(
            f"SELECT {cols} FROM records r JOIN batch_records b ON b.record_id = r.id WHERE b.batch_id=?"
            " ORDER BY r.id", (batch_id,))]
    lines = _lines(rows)
    digest = batch_digest(lines)
    if len(rows) != meta[1] or digest != meta[3].upper():  # batches before 0.1 stored lower case
        raise JournalError(f"batch {batch_id}: records were pruned since; it cannot be written again")
    return BatchHeader(batch_id, _terminal_hex(None, rows), meta[1], meta[2], digest, meta[0], meta[4]), lines


def batches(journal: Journal) -> list[BatchHeader]:
    """Every batch exported from this journal, oldest first."""
    with journal._lock:
        rows = list(journal._db.execute("SELECT batch_id, created_at, count, total_amount, sha256, batch_seq"
                                     " FROM batches ORDER BY created_at, rowid"))
    return [BatchHeader(b, "", n, total, digest, created, seq) for b, created, n, total, digest, seq in rows]


def prune(journal: Journal, older_than: timedelta, clock: Clock | None = None) -> int:
    """Delete exported records whose transaction is older than ``older_than``.

    Never a pending record, never one that was not exported (failed
    records stay too: they are the audit trail of money that did not move).
    """
    if older_than < timedelta(0):
        raise JournalError("prune: the age must not be negative")
    try:
        cutoff = stamp((clock or journal.clock).now() - older_than)
    except OverflowError:  # older than the calendar's first day: no record is
        return 0
    with journal._lock:
        with journal._transaction():
            cond = "batch_id IS NOT NULL AND state IN ('completed','recovered') AND tx_time < ?"
            rows = [from_row(r) for r in journal._db.execute(
                SELECT + f" WHERE {cond} ORDER BY id", (cutoff,))]
            if not rows:
                return 0
            journal._db.execute(f"DELETE FROM batch_records WHERE record_id IN (SELECT id FROM records WHERE {cond})",
                             (cutoff,))
            count = journal._db.execute(f"DELETE FROM records WHERE {cond}", (cutoff,)).rowcount
            # what was removed, so that its ids are not taken for records deleted by hand
            journal._db.execute("INSERT INTO prunes (time, cutoff, count, ranges, sha256) VALUES (?, ?, ?, ?, ?)",
                             (stamp((clock or journal.clock).now()), cutoff, count,
                              json.dumps(runs(r.id for r in rows)),
                              batch_digest(_lines(rows))))
    return count


def _lines(rows: Iterable[JournalRecord]) -> list[str]:
    return batch_lines(r.to_json() for r in rows)


def _terminal_hex(terminal_id: bytes | None, rows: Sequence[JournalRecord]) -> str:
    return batch_terminal(terminal_id, (r.terminal_id for r in rows))
