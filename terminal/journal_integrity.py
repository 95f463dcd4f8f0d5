"""What a journal's own tables say about its integrity (docs/journal.md, "Checking a journal").

SQLite's check, the journal's invariants, counters used twice, record ids gone that no
recorded prune removed, and the grey records for the back office. Queries over one
connection; the journal holds its lock around them, ``terminal.journal_check`` adds the
TAC checks.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cardlib.pboc import macs
from terminal.journal_record import JournalError
from terminal.journal_schema import IDS_ACCOUNTED_FROM, UNIQUE_FROM

COUNTER_KIND = f"CASE WHEN tx_type IN ({', '.join(str(t) for t in sorted(macs.LOAD_TYPES))}) THEN 'online' ELSE 'offline' END"


def notes(db: sqlite3.Connection) -> list[str]:
    """Grey records: money that moved without a TAC, for the back office (not a fault of the journal)."""
    return [f"record {rid}: grey ({amount} fen moved on the card without a TAC): for the back office"
            for rid, amount in db.execute("SELECT id, amount FROM records WHERE state='grey' ORDER BY id")]


def errors(db: sqlite3.Connection) -> list[str]:
    """SQLite's own check, the journal's invariants and repeated counters."""
    problems = [r[0] for r in db.execute("PRAGMA integrity_check")]
    if problems == ["ok"]:
        problems = []
    for (rid,) in db.execute("SELECT id FROM records WHERE state IN ('completed','recovered')"
                             " AND (tac IS NULL OR balance_after IS NULL)"):
        problems.append(f"record {rid}: settled without TAC or balance")
    for (rid,) in db.execute("SELECT id FROM records WHERE batch_id IS NOT NULL"
                             " AND state NOT IN ('completed','recovered')"):
        problems.append(f"record {rid}: exported but not settled")
    problems.extend(text for text, older in counter_repeats(db) if not older)
    return problems


def counter_repeats(db: sqlite3.Connection) -> list[tuple[str, bool]]:
    """Settled records sharing (card, online or offline counter, value) or (terminal,
    terminal sequence): money taken or credited twice on one counter. A failed record
    may share its counter with the next (the card refused it, its counter did not move).
    Each with whether every record of it predates the check."""
    settled = "state IN ('completed','recovered','grey')"  # grey moved money on its counter too
    row = db.execute("SELECT value FROM meta WHERE key=?", (UNIQUE_FROM,)).fetchone()
    first = int(row[0]) if row else None  # no marker: written by a version before the check
    cards = list(db.execute(
        f"SELECT app_serial, {COUNTER_KIND}, card_seq, GROUP_CONCAT(id), MAX(id) FROM records"
        f" WHERE {settled} GROUP BY 1, 2, 3 HAVING COUNT(*) > 1 ORDER BY MIN(id)"))
    terminals = list(db.execute(
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


def prunes(db: sqlite3.Connection) -> list[Prune]:
    """Every recorded prune, oldest first (none in a journal never opened read-write by a version
    that records them)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='prunes'").fetchone():
        return []
    rows = list(db.execute("SELECT id, time, cutoff, count, ranges, sha256 FROM prunes ORDER BY id"))
    out = []
    for pid, time, cutoff, count, ranges, digest in rows:
        try:
            runs = tuple((int(a), int(b)) for a, b in json.loads(ranges))
        except (ValueError, TypeError, RecursionError):
            raise JournalError(f"journal prune {pid}: its ranges {str(ranges)[:60]!r} are not [[first, last], ...]") from None
        out.append(Prune(pid, time, cutoff, count, runs, digest))
    return out


def id_gaps(db: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """Record ids the journal gave out that are gone and that no recorded prune removed, as
    (errors, warnings): a record deleted by hand. Ids come from AUTOINCREMENT, never reused, so
    every id up to the highest given out is a record or was pruned; a missing id below the
    ``ids_accounted_from`` marker is only a warning (pruned before prunes were recorded)."""
    recorded = prunes(db)
    covered = sorted(run for p in recorded for run in p.ranges)
    errors: list[str] = []
    gaps = list(db.execute(
        "SELECT prev + 1, id - 1 FROM (SELECT id, LAG(id, 1, 0) OVER (ORDER BY id) AS prev FROM records)"
        " WHERE id > prev + 1"))
    top, highest = db.execute("SELECT (SELECT seq FROM sqlite_sequence WHERE name='records'),"
                              " (SELECT MAX(id) FROM records)").fetchone()
    mark = db.execute("SELECT value FROM meta WHERE key=?", (IDS_ACCOUNTED_FROM,)).fetchone()
    for p in recorded:
        if p.count != sum(last - first + 1 for first, last in p.ranges):
            errors.append(f"prune {p.id}: its count {p.count} is not the number of ids in its ranges")
        if any(db.execute("SELECT 1 FROM records WHERE id BETWEEN ? AND ?", run).fetchone()
               for run in p.ranges):
            errors.append(f"prune {p.id}: lists records that are still in the journal")
    if top is not None and top > (highest or 0):
        gaps.append(((highest or 0) + 1, top))
    first = int(mark[0]) if mark else None
    warnings: list[str] = []
    for a, b in gaps:
        for x, y in uncovered(a, b, covered):
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


def runs(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def uncovered(a: int, b: int, covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
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


def _ids(text: str) -> str:
    return ", ".join(str(i) for i in sorted(int(i) for i in text.split(",")))

