"""The journal (docs/journal.md): states, write-ahead, migration, settlement batches,
TAC verification on several cores, prune, and a SIGKILL mid-stream on a real file."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.batch import read_batch
from cardlib.clock import BEIJING, Clock
from cardlib.crypto import Algorithm
from cardlib.errors import FormatError
from cardlib.keys import default_issuer, derive_dtk
from cardlib.pboc import macs
from cardlib.settlement import verify_records
from terminal.journal import SCHEMA_VERSION, Journal, JournalError

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
SERIAL = bytes.fromhex("33030000000000000009")
TID = bytes.fromhex("000000000001")
ROOT = Path(__file__).resolve().parents[2]
UNDO_6 = "ALTER TABLE records DROP COLUMN issuer_id; ALTER TABLE batches DROP COLUMN batch_seq;"  # schema 5 again


def purchase(j: Journal, amount: int = 200, seq: int = 0, when: datetime = T0, **kw: object) -> int:
    return j.begin(kind="purchase", tx_type=macs.TX_EP_PURCHASE, app_serial=SERIAL, card_seq=seq, amount=amount,
                   balance_before=1000, terminal_id=TID, tx_time=when, terminal_seq=seq, **kw).id  # type: ignore[arg-type]


def purchase_tac(amount: int, seq: int, when: datetime = T0, alg: Algorithm = Algorithm.TDES) -> bytes:
    d, t = macs.bcd_datetime(when)
    return macs.purchase_tac(derive_dtk(default_issuer(), SERIAL, alg), amount, macs.TX_EP_PURCHASE, TID, seq, d, t, alg)


def settled(j: Journal, amount: int, seq: int, when: datetime = T0) -> int:
    rid = purchase(j, amount, seq, when)
    j.complete(rid, tac=purchase_tac(amount, seq, when), mac2=b"\x12\x34\x56\x78", balance_after=1000 - amount,
               mac2_verified=True)
    return rid


def test_write_ahead_record_is_on_disk_before_begin_returns(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.db", Clock.fixed(T0))
    rid = purchase(j, station="S01", line="K101", extra={"fare": "flat"})
    # a second connection (another process would see the same) reads the pending record
    other = sqlite3.connect(tmp_path / "j.db")
    assert other.execute("SELECT state, station, line FROM records WHERE id=?", (rid,)).fetchone() == (
        "pending", "S01", "K101")
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    other.close()
    rec = j.get(rid)
    assert (rec.state, rec.kind, rec.tx_time, rec.balance_after, rec.tac) == ("pending", "purchase", T0, None, None)
    assert rec.to_json()["extra"] == {"fare": "flat"} and rec.to_json()["station"] == "S01"


def test_states_and_no_double_completion(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = purchase(j)
    assert [r.id for r in j.pending()] == [rid] and j.pending(bytes(10)) == []
    done = j.complete(rid, tac=purchase_tac(200, 0), mac2=b"1234", balance_after=800, terminal_seq=7,
                      mac2_verified=True)
    assert (done.state, done.balance_after, done.terminal_seq, done.mac2_verified) == ("completed", 800, 7, True)
    for change in (lambda: j.complete(rid, tac=b"0000", mac2=None, balance_after=0),
                   lambda: j.recover(rid, tac=b"0000", mac2=None, balance_after=0),
                   lambda: j.fail(rid, "x")):
        with pytest.raises(JournalError, match="already completed"):
            change()
    assert j.get(rid).tac == purchase_tac(200, 0)  # unchanged by the refused changes
    torn = purchase(j, seq=1)
    assert j.recover(torn, tac=b"\x01\x02\x03\x04", mac2=None, balance_after=800).state == "recovered"
    gone = purchase(j, seq=2)
    failed = j.fail(gone, "not_debited")
    assert (failed.state, failed.failure_reason) == ("failed", "not_debited")
    with pytest.raises(JournalError, match="already failed"):
        j.recover(gone, tac=b"0000", mac2=None, balance_after=0)
    with pytest.raises(JournalError, match="no record 99"):
        j.fail(99, "x")
    assert j.last_for_card(SERIAL) == j.get(gone) and j.last_for_card(bytes(10)) is None
    assert [r.id for r in j.records("recovered")] == [torn]
    assert j.check_integrity() == []


def test_begin_refuses_bad_records(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    with pytest.raises(JournalError, match="kind 'refund'"):
        j.begin(kind="refund", tx_type=6, app_serial=SERIAL, card_seq=0, amount=1, balance_before=0,
                terminal_id=TID, tx_time=T0)
    with pytest.raises(JournalError, match="time-zone aware"):
        purchase(j, when=T0.replace(tzinfo=None))
    with pytest.raises(JournalError, match="negative"):
        purchase(j, amount=-1)
    with pytest.raises(JournalError, match="state 'done'"):
        j.records("done")
    assert j.records() == []


def test_records_since_compares_instants_across_zones(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    ids = [purchase(j, seq=i, when=T0 + timedelta(minutes=10 * i)) for i in range(4)]
    since = (T0 + timedelta(minutes=15)).astimezone(UTC)  # the same instant, written in UTC
    assert [r.id for r in j.records(since=since)] == ids[2:]
    assert [r.id for r in j.records("pending", SERIAL, since=T0 + timedelta(minutes=30))] == ids[3:]


def test_migrates_a_version_2_journal_to_the_batch_index_without_state(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    Journal(db, Clock.fixed(T0)).close()
    con = sqlite3.connect(db)
    con.executescript("DROP INDEX records_batch; CREATE INDEX records_batch ON records (batch_id, state);"
                      + UNDO_6 +
                      "PRAGMA user_version=2;")
    con.close()
    j = Journal(db, Clock.fixed(T0))
    settled(j, 200, 1)
    rows = j._db.execute("SELECT sql FROM sqlite_master WHERE name='records_batch'").fetchall()
    assert rows == [("CREATE INDEX records_batch ON records (batch_id)",)]
    assert j._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)  # every later step applied too
    header = j.export_batch(io.StringIO())
    assert header.count == 1 and j.check_integrity() == []
    j.close()


def test_migrates_a_version_3_journal_to_events_without_autoincrement(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    Journal(db, Clock.fixed(T0)).close()
    con = sqlite3.connect(db)
    con.executescript(
        "DROP TABLE events; CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,"
        " app_serial BLOB, terminal TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,"
        " amount INTEGER NOT NULL, journal_id INTEGER); CREATE INDEX events_card ON events (app_serial, time);"
        + UNDO_6 +
        "PRAGMA user_version=3;")
    for n, reason in enumerate(("paid", "deny-listed", "paid")):
        con.execute("INSERT INTO events (time, app_serial, terminal, decision, reason, amount, journal_id)"
                    " VALUES (?, ?, 'bus', ?, ?, 200, NULL)",
                    ((T0 + timedelta(minutes=n)).isoformat(), SERIAL, "closed" if n == 1 else "open", reason))
    con.commit()
    con.close()
    j = Journal(db, Clock.fixed(T0))
    sql = j._db.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()[0]
    assert "AUTOINCREMENT" not in sql and j._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert [e["reason"] for e in j.events(SERIAL)] == ["paid", "deny-listed", "paid"]  # kept, in order
    j.log_event(T0 + timedelta(minutes=5), SERIAL, "bus", True, "paid", 200)
    assert [r[0] for r in j._db.execute("SELECT id FROM events ORDER BY id")] == [1, 2, 3, 4]
    assert j._db.execute("SELECT name FROM sqlite_master WHERE name='events_card'").fetchone() == ("events_card",)
    assert j.check_integrity() == []
    j.close()


def test_migrates_a_version_4_journal_to_the_state_grey(tmp_path: Path) -> None:
    """Schema 4 (made before this change: tests/terminal/fixtures/v1-journal.db, two pending
    records) rebuilt with the state grey: rows, their ids, the id counter (a deleted last id is
    not handed out again) and the card index kept; the CHECK still refuses unknown states."""
    db = tmp_path / "v4.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "v1-journal.db", db)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone() == (4,)
    con.execute("DELETE FROM records WHERE id=2")
    con.commit()
    con.close()
    j = Journal(db, Clock.fixed(T0))
    assert j._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    (old,) = j.records()
    assert (old.id, old.state, old.kind, old.amount) == (1, "pending", "purchase", 150)
    grey = j.grey(old.id, balance_after=old.balance_before - old.amount)
    assert grey.state == "grey" and grey.tac is None and j.get(1).state == "grey"
    with pytest.raises(JournalError):
        j.recover(1, tac=bytes(4), mac2=None, balance_after=0)  # final
    assert purchase(j) == 3  # the counter kept: id 2 is not reused
    assert j._db.execute("SELECT name FROM sqlite_master WHERE name='records_card'").fetchone() == ("records_card",)
    with pytest.raises(sqlite3.IntegrityError):
        j._db.execute("UPDATE records SET state='lost' WHERE id=1")
    assert j.check_integrity() == ["record 1: grey (150 fen moved on the card without a TAC): for the back office"]
    assert j.export_batch(io.StringIO()).count == 0
    j.close()


def test_migrates_a_version_5_journal_to_issuer_ids_and_batch_numbers(tmp_path: Path) -> None:
    """Records and batches made before schema 6 keep no issuer id and no batch_seq: an old
    batch is written again byte for byte; new ones carry both."""
    db = tmp_path / "v4.db"
    with Journal(db, Clock.fixed(T0)) as j:
        settled(j, 200, 1)
        first = io.StringIO()
        old = j.export_batch(first)
    con = sqlite3.connect(db)
    con.executescript(UNDO_6 + "PRAGMA user_version=5;")
    con.close()
    j = Journal(db, Clock.fixed(T0))
    assert j._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (6,)
    again = io.StringIO()
    assert j.export_batch(again, batch_id=old.batch_id).batch_seq is None
    assert "batch_seq" not in again.getvalue() and "issuer_id" not in again.getvalue()
    rid = j.begin(kind="purchase", tx_type=macs.TX_EP_PURCHASE, app_serial=SERIAL, card_seq=2, amount=100,
                  balance_before=800, terminal_id=TID, tx_time=T0, terminal_seq=2,
                  issuer_id=default_issuer().issuer_id).id
    j.complete(rid, tac=purchase_tac(100, 2), mac2=None, balance_after=700)
    out = io.StringIO()
    header = j.export_batch(out)
    assert header.batch_seq == 2  # the journal's second batch, the old one counted
    head, line = (json.loads(x) for x in out.getvalue().splitlines())
    assert head["batch_seq"] == 2 and line["issuer_id"] == "99990000FFFFFFFF"
    assert j.get(rid).issuer_id == default_issuer().issuer_id and j.check_integrity() == []
    j.close()


def test_a_journal_numbers_its_batches_and_records_its_cards_issuer(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db", Clock.fixed(T0)) as j:
        seqs = []
        for n in range(3):
            settled(j, 10, n)
            seqs.append(j.export_batch(io.StringIO()).batch_seq)
        assert seqs == [1, 2, 3] and [b.batch_seq for b in j.batches()] == [1, 2, 3]
        with pytest.raises(JournalError, match="issuer_id 8"):
            j.begin(kind="load", tx_type=2, app_serial=SERIAL, card_seq=0, amount=1, balance_before=0,
                    terminal_id=TID, tx_time=T0, issuer_id=b"\x99")


def test_a_transaction_writes_few_pages(tmp_path: Path) -> None:
    """Every page a commit changes is written to the WAL (and later to the file): a validator's
    flash wears by them. A write-ahead record changes the table, the card and batch indexes and
    AUTOINCREMENT's counter; its completion only the table and the card index; an event its
    table and index."""
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    j._db.execute("PRAGMA wal_autocheckpoint=0")  # the WAL only grows: its size counts the frames

    def frames() -> int:
        return os.path.getsize(j.path + "-wal") // (24 + 4096)

    for seq in range(100):  # a journal with some history: pages split, the card index spread
        settled(j, 1, seq, T0 + timedelta(seconds=seq))
    before = frames()
    for seq in range(100, 200):
        settled(j, 1, seq, T0 + timedelta(seconds=seq))
    assert frames() - before <= 100 * 6 + 20  # 4 + 2 per transaction, a few more where a page splits
    before = frames()
    for seq in range(100):  # a decision: the events table and its card index, no counter page
        j.log_event(T0 + timedelta(seconds=seq), SERIAL, "bus", True, "paid", 1)
    assert frames() - before <= 100 * 2 + 10
    j.close()


def test_migrates_a_version_1_journal(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Journal(db, Clock.fixed(T0)).close()
    con = sqlite3.connect(db)  # make it look like a version 1 journal that holds a record
    con.executescript("ALTER TABLE records DROP COLUMN station; ALTER TABLE records DROP COLUMN line;"
                      + UNDO_6 +
                      "PRAGMA user_version=1;")
    con.execute("INSERT INTO records (state, kind, tx_type, app_serial, card_seq, amount, balance_before,"
                " terminal_id, tx_time, algorithm, key_version, key_index, test, created_at, updated_at)"
                " VALUES ('pending','purchase',6,?,0,5,10,?,?,'3des',1,1,0,?,?)",
                (SERIAL, TID, T0.isoformat(), T0.isoformat(), T0.isoformat()))
    con.commit()
    con.close()
    j = Journal(db)
    (rec,) = j.pending()
    assert (rec.amount, rec.station, rec.line) == (5, "", "")
    assert j.check_integrity() == []
    j.close()
    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}").connection.close()
    with pytest.raises(FormatError, match="newer than this yikatong"):
        Journal(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FormatError, match="not a usable journal"):
        Journal(junk)


def test_export_batch_format_and_once_only(tmp_path: Path) -> None:
    clock = Clock.fixed(T0)
    j = Journal(tmp_path / "j.db", clock)
    ids = [settled(j, 100 + seq, seq) for seq in range(3)]
    purchase(j, 50, 9)  # pending: never exported
    j.fail(purchase(j, 70, 10), "not_debited")  # failed: no money moved, not settled
    out = io.StringIO()
    header = j.export_batch(out, TID)
    lines = out.getvalue().splitlines(keepends=True)
    head = json.loads(lines[0])
    assert head == {"type": "header", "batch_id": header.batch_id, "terminal": "000000000001", "count": 3,
                    "total_amount": 303, "sha256": hashlib.sha256("".join(lines[1:]).encode()).hexdigest().upper(),
                    "created": header.created, "batch_seq": 1}
    first = json.loads(lines[1])
    assert first["type"] == "06" and first["time"] == "2026-11-28T08:00:00+08:00"
    assert first["app_serial"] == "33030000000000000009" and first["tac"] == purchase_tac(100, 0).hex().upper()
    assert first["mac2"] == "12345678" and first["amount"] == 100 and first["state"] == "completed"
    assert all(j.get(i).batch_id == header.batch_id for i in ids)
    assert j.export_batch(io.StringIO()).count == 0  # nothing exported twice
    later = settled(j, 5, 11)
    second = io.StringIO()
    assert j.export_batch(second).count == 1 and json.loads(second.getvalue().splitlines()[1])["id"] == later
    again = io.StringIO()
    everything = j.export_batch(again, all=True)
    assert (everything.count, everything.total_amount) == (4, 308)
    assert j.get(ids[0]).batch_id == header.batch_id  # stays in its first batch
    # a batch whose file was lost is written again, byte for byte
    rewritten = io.StringIO()
    assert j.export_batch(rewritten, batch_id=header.batch_id) == header
    assert rewritten.getvalue() == out.getvalue()
    with pytest.raises(JournalError, match="no batch"):
        j.export_batch(io.StringIO(), batch_id="NOPE")
    assert [b.batch_id for b in j.batches()][0] == header.batch_id
    assert j.check_integrity() == []


def test_export_commits_before_writing(tmp_path: Path) -> None:
    """A failing writer leaves the records in their batch, to be written again by id."""
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = settled(j, 100, 0)

    class Full(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        j.export_batch(Full())
    (batch,) = j.batches()
    assert j.get(rid).batch_id == batch.batch_id and j.export_batch(io.StringIO()).count == 0
    out = io.StringIO()
    assert j.export_batch(out, batch_id=batch.batch_id).count == 1


def write_batch(tmp_path: Path, j: Journal) -> Path:
    path = tmp_path / "batch.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        j.export_batch(fh)
    return path


def test_read_batch_validates_header(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    for seq in range(3):
        settled(j, 100 + seq, seq)
    path = write_batch(tmp_path, j)
    header, records = read_batch(path)
    assert (header.count, header.total_amount, len(records)) == (3, 303, 3)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    cases = {
        "count is 3, 2 record": lines[0] + "".join(lines[1:3]),
        "total_amount is 303 fen, the records sum to 1201": text.replace('"amount": 101', '"amount": 999'),
        "SHA-256": text.replace('"card_seq": 1', '"card_seq": 2'),
        "line 1: bad header": "{}\n" + "".join(lines[1:]),
        "line 3: not JSON": lines[0] + lines[1] + "{oops\n" + lines[3],
        "truncated": text[:-1],
        "empty": "",
    }
    for message, content in cases.items():
        path.write_text(content)
        with pytest.raises(FormatError, match=message):
            read_batch(path)
    with pytest.raises(FormatError, match="cannot read batch"):
        read_batch(tmp_path / "missing.jsonl")


def test_verify_purchases_and_loads(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = settled(j, 150, 3)
    d, t = macs.bcd_datetime(T0)
    for alg in (Algorithm.TDES, Algorithm.SM4):
        load = j.begin(kind="load", tx_type=macs.TX_EP_LOAD, app_serial=SERIAL, card_seq=12, amount=5000,
                       balance_before=850, terminal_id=TID, tx_time=T0, algorithm=alg)
        tac = macs.load_tac(derive_dtk(default_issuer(), SERIAL, alg), 5850, 12, 5000, macs.TX_EP_LOAD, TID, d, t, alg)
        j.complete(load.id, tac=tac, mac2=None, balance_after=5850)
    records = j.records("completed")
    assert verify_records(records, default_issuer()).ok  # JournalRecord objects
    _, lines = read_batch(write_batch(tmp_path, j))
    assert verify_records(lines, default_issuer()).checked == 3
    for field, value in (("amount", 151), ("terminal_seq", 4), ("card_seq", 13), ("balance_after", 5851),
                         ("time", "2026-11-28T08:00:01+08:00"), ("algorithm", "sm4"), ("tac", None),
                         ("app_serial", "3303")):
        for index in range(3):
            bad = [dict(x) for x in lines]
            bad[index][field] = value
            if bad[index] == lines[index]:
                continue
            report = verify_records(bad, default_issuer())
            # a field outside a record's layout (e.g. terminal_seq of a load) does not change its TAC
            covered = not (field in ("terminal_seq",) and index > 0) and not (field in ("card_seq", "balance_after")
                                                                                and index == 0)
            assert report.failed == ((lines[index]["id"],) if covered else ()), (field, index)
    assert rid == lines[0]["id"]


def test_verify_runs_in_one_process_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ykt journal verify` checks in its own process (using many cores is the clearing job's):
    nothing forks, every chunk is reported to the progress bar, a bad TAC among 2,000 is named."""
    import multiprocessing

    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    for seq in range(4):
        settled(j, 10 + seq, seq)
    items = [r.to_json() for r in j.records()] * 500
    items[1234] = {**items[1234], "id": 999999, "amount": 1}

    def no_fork(method: str | None = None) -> None:
        raise AssertionError(f"forked ({method})")

    monkeypatch.setattr(multiprocessing, "get_context", no_fork)
    seen: list[int] = []
    report = verify_records(items, default_issuer(), chunk=300, progress=seen.append)
    assert (report.checked, report.failed) == (2000, (999999,)) and seen == [300] * 6 + [200]
    assert verify_records(items, default_issuer()).failed == (999999,)


def test_prune_keeps_pending_unexported_and_recent(tmp_path: Path) -> None:
    clock = Clock.fixed(T0)
    j = Journal(tmp_path / "j.db", clock)
    old = [settled(j, 100, seq) for seq in range(3)]
    j.export_batch(io.StringIO())
    pending = purchase(j, seq=4)
    failed = j.fail(purchase(j, seq=5), "not_debited").id
    recent = settled(j, 100, 6, T0 + timedelta(days=20))
    j.export_batch(io.StringIO())
    unexported = settled(j, 100, 3)
    later = Clock.fixed(T0 + timedelta(days=40))
    assert j.prune(timedelta(days=30)) == 0  # the journal's own clock still says T0
    assert j.prune(timedelta(days=30), later) == 3
    assert {r.id for r in j.records()} == {unexported, pending, failed, recent}
    assert all(j.find(i) is None for i in old)
    with pytest.raises(JournalError, match="negative"):
        j.prune(timedelta(days=-1))
    assert j.check_integrity() == []


def test_check_integrity_reports_broken_invariants(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = purchase(j)
    con = sqlite3.connect(tmp_path / "j.db")
    con.execute("UPDATE records SET state='completed', batch_id=NULL WHERE id=?", (rid,))
    con.commit()
    con.close()
    assert j.check_integrity() == [f"record {rid}: settled without TAC or balance"]


WRITER = """
import sys
from datetime import datetime
from cardlib.clock import BEIJING
from terminal.journal import Journal
j = Journal(sys.argv[1], sync=sys.argv[2])
t = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
i = len(j.records())  # the card's counter goes on from the last round's (a repeat is an integrity error)
while True:
    r = j.begin(kind="purchase", tx_type=6, app_serial=bytes(10), card_seq=i % 65536, amount=1, balance_before=0,
                terminal_id=bytes(6), tx_time=t)
    print("begun", r.id, flush=True)
    j.complete(r.id, tac=b"\\x00" * 4, mac2=None, balance_after=0)
    print("done", r.id, flush=True)
    i += 1
"""


@pytest.mark.parametrize("sync", ["full", "write_ahead"])
def test_sigkill_loses_nothing_committed(tmp_path: Path, sync: str) -> None:
    """Killing the process loses no commit in either sync mode (write_ahead defers only the disk sync)."""
    db = tmp_path / "j.db"
    acknowledged: dict[int, str] = {}
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), sync], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT)
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        lines = 0
        while lines < 40 + 7 * round_ and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            what, rid = line.split()
            acknowledged[int(rid)] = "completed" if what == "done" else "pending"
            lines += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert lines >= 40 + 7 * round_, "the writer did not get going"
        j = Journal(db)
        assert j.check_integrity() == []
        for rid, state in acknowledged.items():
            rec = j.find(rid)
            assert rec is not None, f"record {rid} was acknowledged and is gone"
            assert state == "pending" or rec.state == "completed"
        j.close()


def _main_file_state(tmp_path: Path, rid: int) -> str | None:
    """The record's state in the database file alone, without the WAL (what a checkpoint has made durable)."""
    copy = tmp_path / "main-only.db"
    copy.write_bytes((tmp_path / "j.db").read_bytes())
    con = sqlite3.connect(copy)
    try:
        row = con.execute("SELECT state FROM records WHERE id=?", (rid,)).fetchone()
    except sqlite3.OperationalError:  # the schema itself is still only in the WAL
        row = None
    con.close()
    copy.unlink()
    return row[0] if row else None


class DiskAtSync:
    """What a power cut would leave: the journal's files as they were when the WAL was last
    synced (the main file changes only in checkpoints, which sync it themselves)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        import terminal.journal

        self.path = path
        self.synced: list[tuple[bytes, bytes]] = []
        real = terminal.journal._fdatasync

        def record(fd: int) -> None:
            real(fd)
            assert os.fstat(fd).st_ino == os.stat(f"{path}-wal").st_ino  # the WAL itself was synced
            self.synced.append((path.read_bytes(), Path(f"{path}-wal").read_bytes()))

        monkeypatch.setattr(terminal.journal, "_fdatasync", record)

    def state(self, rid: int, column: str = "state") -> object:
        """The record's ``column`` after a power cut now (None: the record is not there)."""
        if not self.synced:
            return None
        main, wal = self.synced[-1]
        cut = self.path.parent / f"cut-{len(self.synced)}"
        cut.mkdir(exist_ok=True)
        (cut / "j.db").write_bytes(main)
        (cut / "j.db-wal").write_bytes(wal)
        con = sqlite3.connect(cut / "j.db")
        try:
            row = con.execute(f"SELECT {column} FROM records WHERE id=?", (rid,)).fetchone()
        finally:
            con.close()
        return row[0] if row else None


def test_write_ahead_mode_syncs_the_record_before_begin_returns_and_completions_on_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = DiskAtSync(monkeypatch, tmp_path / "j.db")
    j = Journal(tmp_path / "j.db", Clock.fixed(T0), sync="write_ahead")
    assert j._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL: the journal syncs the WAL itself
    rid = purchase(j, amount=200, seq=1)
    assert disk.state(rid) == "pending"  # a power cut right after begin keeps the write-ahead record
    j.complete(rid, tac=purchase_tac(200, 1), mac2=b"\x12\x34\x56\x78", balance_after=800, mac2_verified=True)
    assert j.get(rid).state == "completed"  # committed: any reader sees it
    assert disk.state(rid) == "pending"  # not synced yet: a power cut now leaves it for the next tap
    j.flush()
    assert disk.state(rid) == "completed"
    rid2 = purchase(j, amount=100, seq=2)  # the next write-ahead record's sync carries everything before it
    j.complete(rid2, tac=purchase_tac(100, 2), mac2=None, balance_after=700)
    j.log_event(T0, SERIAL, "bus", True, "paid", 100, rid2)
    assert disk.state(rid2) == "pending"
    j.close()  # close flushes too
    assert disk.state(rid2) == "completed"


def test_an_export_is_on_disk_before_its_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = DiskAtSync(monkeypatch, tmp_path / "j.db")
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = settled(j, 200, 1)

    class Unwritable(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        j.export_batch(Unwritable())
    (batch,) = j.batches()
    assert disk.state(rid, "batch_id") == batch.batch_id  # a power cut now cannot export the record twice
    j.close()


def test_full_mode_leaves_the_syncs_to_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = DiskAtSync(monkeypatch, tmp_path / "j.db")
    j = Journal(tmp_path / "j.db", Clock.fixed(T0), sync="full")
    assert j._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: every commit synced by SQLite
    settled(j, 200, 1)
    j.close()
    assert disk.synced == []
    memory = Journal(":memory:", Clock.fixed(T0))  # no WAL possible: SQLite syncs (FULL), nothing to sync by hand
    rid = settled(memory, 200, 1)
    memory.flush()
    assert memory.get(rid).state == "completed" and disk.synced == []
    memory.close()


def test_flush_copies_the_wal_back_now_and_then(tmp_path: Path) -> None:
    from terminal.journal import CHECKPOINT_AFTER

    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = settled(j, 1, 0)
    j.flush()
    assert _main_file_state(tmp_path, rid) is None  # in the WAL only: synced, not yet copied back
    for seq in range(1, CHECKPOINT_AFTER // 2):
        settled(j, 1, seq)
    j.flush()
    assert _main_file_state(tmp_path, rid) == "completed"  # copied back while no rider waits
    j.close()


def test_sync_mode_is_checked(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="sync mode 'sometimes'"):
        Journal(tmp_path / "j.db", sync="sometimes")


def test_the_terminal_loop_flushes_a_deferred_completion_before_the_card_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cardlib.channel import Channel
    from cardlib.readers.pyhost import HostedReader
    from simulators.issuer import sample_card
    from simulators.psam import make_psam
    from terminal.config import parse_config
    from terminal.loop import run_loop
    from terminal.psam import PsamClient
    from terminal.roles import make_app

    clock = Clock.fixed(T0)
    sam = HostedReader([make_psam()])
    sam.connect()
    disk = DiskAtSync(monkeypatch, tmp_path / "j.db")
    j = Journal(tmp_path / "j.db", clock, sync="write_ahead")
    app = make_app(parse_config({"terminal": {"role": "bus_validator"}, "fares": {"flat": 200}}),
                   PsamClient(Channel(sam), test=True), j, clock)
    decisions: list[object] = []
    assert run_loop(app, HostedReader([sample_card(seed=9)]), decisions.append, max_taps=1) == 1
    (rec,) = j.records()
    assert rec.state == "completed" and disk.state(rec.id) == "completed"
    j.close()


@given(tz_hours=st.integers(-12, 14), micro=st.integers(0, 999_999), extra=st.sampled_from([None, {"fare": "flat"}]),
       verified=st.sampled_from([None, True, False]), finish=st.sampled_from(["complete", "fail", "recover"]),
       sync=st.sampled_from(["full", "write_ahead"]))
def test_records_handed_back_are_the_records_read_back(
        tmp_path_factory: pytest.TempPathFactory, tz_hours: int, micro: int, extra: dict[str, str] | None,
        verified: bool | None, finish: str, sync: str) -> None:
    """begin and complete/fail/recover build the record without reading it; it must equal a read,
    also when another journal object finishes it (then it is read back)."""
    path = tmp_path_factory.mktemp("j") / "j.db"
    when = datetime(2026, 11, 28, 8, 0, 0, micro, tzinfo=timezone(timedelta(hours=tz_hours)))
    clock = Clock.fixed(T0.replace(microsecond=micro))
    with Journal(path, clock, sync=sync) as j, Journal(path, clock) as other:
        for finisher in (j, other):
            rec = j.begin(kind="purchase", tx_type=6, app_serial=SERIAL, card_seq=3, amount=200, balance_before=1000,
                          terminal_id=TID, tx_time=when, terminal_seq=7, station="S01", line="K1", extra=extra)
            assert rec == j.get(rec.id) and rec.to_json() == j.get(rec.id).to_json()
            clock.advance(1.5)
            if finish == "complete":
                done = finisher.complete(rec.id, tac=b"\x01\x02\x03\x04", mac2=b"\x05\x06\x07\x08", balance_after=800,
                                         mac2_verified=verified)
            elif finish == "recover":
                done = finisher.recover(rec.id, tac=b"\x01\x02\x03\x04", mac2=None, balance_after=800,
                                        mac2_verified=verified)
            else:
                done = finisher.fail(rec.id, "card answered 6988")
            assert done == j.get(rec.id) and done.to_json() == j.get(rec.id).to_json()
            with pytest.raises(JournalError, match="already"):
                j.fail(rec.id, "twice")


def test_a_counter_used_twice_is_an_integrity_error(tmp_path: Path) -> None:
    """Fails on the old code: check_integrity did not look at counters, so two settled purchases
    on one card counter (money taken twice on one DEBIT's word) or one terminal sequence passed."""
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    settled(j, 200, 0)
    refused = purchase(j, seq=1)
    j.fail(refused, "not_debited")  # the card refused it: its counter did not move
    settled(j, 200, 1)  # so the next purchase shares it
    load = j.begin(kind="load", tx_type=macs.TX_EP_LOAD, app_serial=SERIAL, card_seq=1, amount=500,
                   balance_before=600, terminal_id=TID, tx_time=T0)
    j.complete(load.id, tac=b"\x00" * 4, mac2=None, balance_after=1100)  # online counter 1: another counter
    assert j.check_integrity() == [] and j.integrity_warnings() == []
    again = settled(j, 300, 1)
    assert j.check_integrity() == [
        f"records 3, {again}: card {SERIAL.hex().upper()} offline counter 1 used twice",
        f"records 3, {again}: terminal 000000000001 sequence 1 used twice",
    ]
    assert j.integrity_warnings() == []
    j.close()


def test_repeats_written_before_the_check_are_warnings(tmp_path: Path) -> None:
    """A journal written before counters were checked may hold repeats (a per-command PSAM
    restarting at 0): reported as warnings, not errors; a repeat a new record makes is an error."""
    db = tmp_path / "old.db"
    j = Journal(db, Clock.fixed(T0))
    settled(j, 200, 0)
    settled(j, 300, 0)
    j.close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE meta")  # as the journal was before the check: no marker
    con.commit()
    con.close()
    j = Journal(db, Clock.fixed(T0))
    assert j.check_integrity() == []
    assert j.integrity_warnings() == [f"records 1, 2: card {SERIAL.hex().upper()} offline counter 0 used twice",
                                      "records 1, 2: terminal 000000000001 sequence 0 used twice"]
    settled(j, 100, 1)
    assert j.check_integrity() == []
    settled(j, 100, 1)
    assert j.check_integrity() == [f"records 3, 4: card {SERIAL.hex().upper()} offline counter 1 used twice",
                                   "records 3, 4: terminal 000000000001 sequence 1 used twice"]
    assert len(j.integrity_warnings()) == 2
    j.close()
