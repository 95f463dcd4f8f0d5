"""ykt journal show | export | verify | prune on a real journal file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from cardlib.batch import read_batch
from cardlib.clock import BEIJING, Clock
from cardlib.crypto import Algorithm
from cardlib.keys import default_issuer, derive_dtk
from cardlib.pboc import macs
from cli.main import cli
from terminal.journal import Journal
from tests.cli.terminal import on_a_terminal

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
SERIAL = bytes.fromhex("33030000000000000009")
TID = bytes.fromhex("000000000001")
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def make_journal(path: Path, n: int = 3, bad: int | None = None, when: datetime = T0) -> list[int]:
    """n settled purchases with real TACs under the TEST ONLY issuer's keys, so marked test (record
    ``bad`` gets a wrong TAC), one pending, one failed."""
    ids = []
    with Journal(path, Clock.fixed(T0)) as j:
        d, t = macs.bcd_datetime(when)
        dtk = derive_dtk(default_issuer(), SERIAL, Algorithm.TDES)
        for seq in range(n):
            rec = j.begin(kind="purchase", tx_type=6, app_serial=SERIAL, card_seq=seq, amount=100 + seq,
                          balance_before=5000, terminal_id=TID, tx_time=when, terminal_seq=seq, line="K101", test=True)
            tac = macs.purchase_tac(dtk, 100 + seq, 6, TID, seq, d, t, Algorithm.TDES)
            if seq == bad:
                tac = bytes(4)
            j.complete(rec.id, tac=tac, mac2=b"\x01\x02\x03\x04", balance_after=4900 - seq)
            ids.append(rec.id)
        j.begin(kind="purchase", tx_type=6, app_serial=SERIAL, card_seq=n, amount=7, balance_before=5000,
                terminal_id=TID, tx_time=when, test=True)
        failed = j.begin(kind="load", tx_type=2, app_serial=SERIAL, card_seq=1, amount=5000, balance_before=0,
                         terminal_id=TID, tx_time=when, test=True)
        j.fail(failed.id, "card answered 9302")
    return ids


def test_show_table_json_and_state(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    ids = make_journal(db)
    code, out, err = run("journal", "show", "--journal", str(db))
    assert code == 0 and len(out.splitlines()) == 5 and err.strip() == "5 record(s)"
    assert "completed" in out and "33030000000000000009" in out and "K101" in out and "(card answered 9302)" in out
    code, out, _ = run("journal", "show", "--journal", str(db), "--json", "--state", "completed")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == ids
    assert rows[0]["type"] == "06" and rows[0]["time"] == "2026-11-28T08:00:00+08:00" and rows[0]["mac2"] == "01020304"
    code, _, err = run("journal", "show", "--journal", str(tmp_path / "none.db"))
    assert code == 2 and not (tmp_path / "none.db").exists()  # a typo does not create a journal
    code, _, err = run("journal", "show", "--journal", str(db), "--state", "done")
    assert code == 2


def test_export_to_file_and_stdout(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    out = tmp_path / "batch.jsonl"
    code, stdout, err = run("journal", "export", "--journal", str(db), "--out", str(out), "--json")
    summary = json.loads(stdout)
    header, records = read_batch(out)
    assert code == 0 and summary["count"] == 3 == header.count and summary["batch_id"] == header.batch_id
    assert header.total_amount == 303 and header.terminal == "000000000001" and len(records) == 3
    assert not Path(f"{out}.tmp").exists()
    code, stdout, _ = run("journal", "export", "--journal", str(db))  # nothing new
    assert code == 0 and json.loads(stdout.splitlines()[0])["count"] == 0 and len(stdout.splitlines()) == 1
    code, stdout, _ = run("journal", "export", "--journal", str(db), "--all")
    assert json.loads(stdout.splitlines()[0])["count"] == 3
    again = tmp_path / "again.jsonl"
    code, _, _ = run("journal", "export", "--journal", str(db), "--out", str(again), "--batch-id", header.batch_id)
    assert code == 0 and again.read_bytes() == out.read_bytes()
    code, _, err = run("journal", "export", "--journal", str(db), "--out", str(tmp_path / "no" / "b.jsonl"))
    assert code == 2 and err.startswith("error: cannot write batch")


def test_verify_journal_and_batch(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.db", tmp_path / "bad.db"
    make_journal(good)
    ids = make_journal(bad, bad=1)
    code, out, _ = run("journal", "verify", "--journal", str(good))
    assert code == 0 and "3 TAC(s) checked, 0 failed" in out
    code, out, err = run("journal", "verify", "--journal", str(bad))
    assert code == 4 and f"record {ids[1]}: TAC does not verify" in out
    assert err.strip() == f"error: TAC verification failed for 1 record(s): {ids[1]}"
    batch = tmp_path / "b.jsonl"
    run("journal", "export", "--journal", str(bad), "--out", str(batch))
    code, out, _ = run("journal", "verify", "--batch", str(batch), "--json")
    assert code == 4 and json.loads(out) == {"checked": 3, "failed": [ids[1]], "ok": False}
    batch.write_text(batch.read_text().replace('"amount": 100', '"amount": 1'))
    code, _, err = run("journal", "verify", "--batch", str(batch))
    assert code == 2 and "total_amount" in err
    code, _, err = run("journal", "verify")
    assert code == 2 and "exactly one of --journal or --batch" in err
    code, _, err = run("journal", "verify", "--journal", str(good), "--issuer-keys", str(tmp_path / "none.json"))
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    code, shown, out = on_a_terminal(["journal", "verify", "--journal", str(db)])
    assert code == 0 and b"3 TAC(s) checked" in out
    assert b"verifying TACs" in shown
    code, _, err = run("journal", "verify", "--journal", str(db))
    assert code == 0 and "verifying TACs" not in err  # not a terminal: no bar


def test_prune(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    code, out, _ = run("journal", "prune", "--journal", str(db), "--older-than", "30d", "--now",
                       "2027-01-28T08:00:00+08:00", "--json")
    assert code == 0 and json.loads(out) == {"pruned": 0}  # nothing exported yet
    run("journal", "export", "--journal", str(db), "--out", str(tmp_path / "b.jsonl"))
    code, out, _ = run("journal", "prune", "--journal", str(db), "--older-than", "2w", "--now", "2026-12-05T08:00:00")
    assert code == 0 and out.strip() == "0 record(s) pruned"  # one week old
    code, out, _ = run("journal", "prune", "--journal", str(db), "--older-than", "30d", "--now",
                       "2027-01-28T08:00:00+08:00")
    assert code == 0 and out.strip() == "3 record(s) pruned"
    with Journal(db) as j:
        assert sorted(r.state for r in j.records()) == ["failed", "pending"]
    code, _, err = run("journal", "prune", "--journal", str(db), "--older-than", "a month")
    assert code == 2 and "--older-than 'a month'" in err
