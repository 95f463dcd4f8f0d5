"""The journal: states, write-ahead, export batches, verify, prune, and a SIGKILL mid-stream."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cardlib.clock import BEIJING, Clock
from cardlib.errors import FormatError
from cardlib.keys import default_issuer, derive_card_keys
from cardlib.pboc import macs
from terminal.journal import Journal, JournalError, read_batch, verify_records

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
SERIAL = bytes.fromhex("33030000000000000009")
TID = bytes.fromhex("000000000001")


def begin(j: Journal, amount: int = 200, seq: int = 0) -> int:
    return j.begin(kind="purchase", tx_type=6, app_serial=SERIAL, card_seq=seq, amount=amount, balance_before=1000,
                   terminal_id=TID, tx_time=T0, terminal_seq=seq).id


def real_tac(amount: int, seq: int) -> bytes:
    keys = derive_card_keys(default_issuer(), SERIAL, bytes(16))
    d, t = macs.bcd_datetime(T0)
    return macs.purchase_tac(keys.dtk.key, amount, 6, TID, seq, d, t, keys.algorithm)


def test_states_and_no_double_completion(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", Clock.fixed(T0))
    rid = begin(j)
    assert j.pending()[0].id == rid
    j.complete(rid, tac=real_tac(200, 0), mac2=b"1234", balance_after=800, mac2_verified=True)
    with pytest.raises(JournalError, match="already completed"):
        j.complete(rid, tac=b"0000", mac2=None, balance_after=0)
    with pytest.raises(JournalError, match="already completed"):
        j.fail(rid, "x")
    with pytest.raises(JournalError, match="no record 99"):
        j.fail(99, "x")
    assert j.check_integrity() == []


def test_export_verify_and_prune(tmp_path: Path) -> None:
    clock = Clock.fixed(T0)
    j = Journal(tmp_path / "j.db", clock)
    for seq in range(3):
        rid = begin(j, 100 + seq, seq)
        j.complete(rid, tac=real_tac(100 + seq, seq), mac2=b"abcd", balance_after=900)
    begin(j, 50, 9)  # pending: never exported
    out = io.StringIO()
    header = j.export_batch(out)
    assert (header.count, header.total_amount) == (3, 303)
    path = tmp_path / "batch.jsonl"
    path.write_text(out.getvalue())
    h2, records = read_batch(path)
    assert h2.sha256 == header.sha256 and records[0]["type"] == "06" and records[0]["time"].endswith("+08:00")
    assert verify_records(records, default_issuer()).ok
    assert verify_records(records * 2000, default_issuer(), workers=2, chunk=1000).checked == 6000
    records[1]["amount"] += 1
    assert verify_records(records, default_issuer()).failed == (records[1]["id"],)
    again = io.StringIO()
    assert j.export_batch(again).count == 0  # nothing exported twice
    tampered = path.read_text().replace('"amount": 101', '"amount": 999')
    path.write_text(tampered)
    with pytest.raises(FormatError, match="SHA-256"):
        read_batch(path)
    clock.advance(timedelta(days=40))
    assert j.prune(timedelta(days=30)) == 3
    assert len(j.pending()) == 1


WRITER = """
import sys
from datetime import datetime
from cardlib.clock import BEIJING
from terminal.journal import Journal
j = Journal(sys.argv[1])
t = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
i = 0
while True:
    r = j.begin(kind="purchase", tx_type=6, app_serial=bytes(10), card_seq=i % 65536, amount=1, balance_before=0,
                terminal_id=bytes(6), tx_time=t)
    j.complete(r.id, tac=b"\\x00" * 4, mac2=None, balance_after=0)
    print(r.id, flush=True)
    i += 1
"""


def test_sigkill_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[2])
        assert proc.stdout is not None
        seen = 0
        deadline = time.monotonic() + 20
        last = 0
        while seen < 30 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
            seen += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        j = Journal(db)
        assert j.check_integrity() == []
        ids = {r.id for r in j.records()}
        assert last in ids and j.get(last).state == "completed"  # acknowledged = durable
        j.close()
