"""Journals that show an edit (issue 17 item 1, docs/journal.md "Checking a journal").

Each tampering below is done with plain SQL on a journal of real TACs; on the code before the
check each passed `ykt journal verify` (exit 0) and `ykt journal export` (a batch written and the
records marked exported). Now `ykt journal check` names it (exit 1) and verify and export refuse.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import Clock
from terminal.journal import Journal
from terminal.journal_check import check_journal
from terminal.journal_integrity import uncovered as _uncovered
from tests.cli.test_journal_cmd import T0, make_journal, run

COLUMNS = ("state, kind, tx_type, app_serial, card_seq, amount, balance_before, balance_after, terminal_id,"
           " terminal_seq, tx_time, tac, mac2, mac2_verified, algorithm, key_version, key_index, test, station,"
           " line, extra, created_at, updated_at, batch_id, failure_reason")
LATER = "2027-01-28T08:00:00+08:00"


def sql(db: Path, statement: str, *args: object) -> None:
    with sqlite3.connect(db) as con:
        con.execute(statement, args)
    con.close()


def refused(db: Path, tmp_path: Path, *expected: str) -> None:
    """check exits 1 naming each expected text; verify and export refuse, and export commits no batch."""
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 1, out
    for text in expected:
        assert text in out
    code, out, _ = run("journal", "check", "--journal", str(db), "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and all(any(t in e for e in report["errors"]) for t in expected)
    code, _, err = run("journal", "verify", "--journal", str(db))
    assert code == 1 and "journal check found" in err and expected[0] in err
    with Journal(db) as j:
        before = [(r.id, r.batch_id) for r in j.records()], j.batches()
    batch = tmp_path / "refused.jsonl"
    code, _, err = run("journal", "export", "--journal", str(db), "--out", str(batch))
    assert code == 1 and "export refused" in err and not batch.exists()
    with Journal(db) as j:  # no batch committed, no record marked exported
        assert ([(r.id, r.batch_id) for r in j.records()], j.batches()) == before


def test_an_untouched_journal_passes(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 0 and out.strip() == "5 record(s), 0 prune(s) recorded: 0 error(s), 0 warning(s), 0 note(s)"
    code, out, _ = run("journal", "check", "--journal", str(db), "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "records": 5, "prunes": 0, "errors": [], "warnings": [],
                                             "notes": []}


# (what was done with SQL to a journal of records 1-3 settled, 4 pending, 5 failed; what check reports)
TAMPERINGS = {
    "a record deleted": ("DELETE FROM records WHERE id=2", ("record 2: missing, and no recorded prune removed it",)),
    # no gap among the ids left: the ids the journal gave out (SQLite's sequence) tell
    "the newest records deleted": ("DELETE FROM records WHERE id >= 4",
                                   ("records 4-5: missing (2), and no recorded prune removed it",)),
    "a copy inserted": (f"INSERT INTO records ({COLUMNS}) SELECT {COLUMNS} FROM records WHERE id=1",
                        ("records 1, 6: card 33030000000000000009 offline counter 0 used twice",
                         "records 1, 6: terminal 000000000001 sequence 0 used twice")),
    "a test record flipped to real": ("UPDATE records SET test=0 WHERE id=3", (
        "record 3: NOT MARKED TEST, YET ITS TAC VERIFIES UNDER A TEST ONLY ISSUER'S KEYS",)),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_journal_edited_with_sql_shows(tmp_path: Path, tampering: str) -> None:
    db = tmp_path / "j.db"
    assert make_journal(db) == [1, 2, 3]
    statement, expected = TAMPERINGS[tampering]
    sql(db, statement)
    refused(db, tmp_path, *expected)


def test_prunes_are_recorded_and_only_other_gaps_reported(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    ids = make_journal(db)
    code, _, _ = run("journal", "export", "--journal", str(db), "--out", str(tmp_path / "b.jsonl"))
    assert code == 0
    later = make_journal(db, n=2, when=T0.replace(month=12, day=27))  # newer: not pruned (card counters 0, 1 again:
    sql(db, "UPDATE records SET app_serial=X'33030000000000000010' WHERE id >= ?", later[0])  # another card)
    code, out, _ = run("journal", "prune", "--journal", str(db), "--older-than", "30d", "--now", LATER)
    assert code == 0 and out.strip() == "3 record(s) pruned"
    with Journal(db) as j:
        (prune,) = j.prunes()
        assert (prune.count, prune.ranges, prune.cutoff) == (3, ((ids[0], ids[-1]),), "2026-12-29T08:00:00.000000+08:00")
        header_digest = j.batches()[0].sha256  # the batch held exactly the pruned records
        assert prune.sha256 == header_digest
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 0 and "1 prune(s) recorded: 0 error(s)" in out
    sql(db, "DELETE FROM records WHERE id=?", later[1])
    refused(db, tmp_path, f"record {later[1]}: missing, and no recorded prune removed it")
    sql(db, "UPDATE prunes SET count=4")  # a prune made to cover more than it did
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 1 and "prune 1: its count 4 is not the number of ids in its ranges" in out


def test_gaps_from_before_prunes_were_recorded_are_warnings(tmp_path: Path) -> None:
    """A journal pruned by a version that did not record prunes: its gaps are warnings from the first
    read-write open on; a record deleted after that is an error."""
    db = tmp_path / "j.db"
    ids = make_journal(db)
    sql(db, "DROP TABLE prunes")
    sql(db, "DELETE FROM meta WHERE key='ids_accounted_from'")
    sql(db, "DELETE FROM records WHERE id=?", ids[0])  # as the old prune did
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 0 and f"warning: record {ids[0]}: missing (before prunes were recorded)" in out
    Journal(db, Clock.fixed(T0)).close()  # the first read-write open by this version sets the marker
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 0 and f"warning: record {ids[0]}: missing (before prunes were recorded)" in out
    sql(db, "DELETE FROM records WHERE id=?", ids[1])  # also below the marker: still a warning
    with Journal(db, Clock.fixed(T0)) as j:
        newer = j.begin(kind="purchase", tx_type=6, app_serial=bytes(10), card_seq=0, amount=1, balance_before=9,
                        terminal_id=bytes(6), tx_time=T0, test=True).id
    sql(db, "DELETE FROM records WHERE id=?", newer)
    with Journal(db, Clock.fixed(T0)) as j:
        report = check_journal(j)
    assert report.errors == (f"record {newer}: missing, and no recorded prune removed it: deleted by hand?",)
    assert report.warnings == (f"records {ids[0]}-{ids[1]}: missing (2) (before prunes were recorded)",)


def test_grey_records_are_notes_not_errors(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    with Journal(db, Clock.fixed(T0)) as j:
        j.grey(4, balance_after=4893)
    code, out, _ = run("journal", "check", "--journal", str(db))
    assert code == 0 and "note: record 4: grey (7 fen moved on the card without a TAC)" in out


@given(st.integers(1, 30), st.integers(1, 30), st.lists(st.tuples(st.integers(1, 40), st.integers(0, 5)), max_size=6))
def test_uncovered_is_the_gap_minus_the_prunes(a: int, length: int, runs: list[tuple[int, int]]) -> None:
    b = a + length - 1
    covered = sorted((first, first + n) for first, n in runs)
    pruned = {i for first, last in covered for i in range(first, last + 1)}
    parts = _uncovered(a, b, covered)
    assert [i for x, y in parts for i in range(x, y + 1)] == [i for i in range(a, b + 1) if i not in pruned]
    assert all(y + 1 < x2 for (_, y), (x2, _) in zip(parts, parts[1:], strict=False))  # maximal runs
