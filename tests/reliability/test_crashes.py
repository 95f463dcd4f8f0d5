"""A terminal process killed with SIGKILL at random moments, end to end.

The terminal (tests/reliability/crash_worker.py, the venv's python) streams
purchases, composite purchases and loads on a card that lives outside it —
a card image saved after every command (``sim:card.json``), or a card behind
pcscd + vpcd served from this process (``pcsc:NAME``) — and is killed after a
random delay, again and again; each restart first resolves what the last run
left pending on the card. After the last kill one more run only recovers.
Then, from the card and the journal alone:

- nothing is pending;
- the card's balance is its initial balance plus the settled loads minus the
  settled debits (no money lost);
- each counter value the card used (online for loads, offline for purchases)
  has exactly one settled record (nothing twice, nothing missing);
- every settled TAC verifies with the issuer's keys;
- the load host's ledger says completed for every settled load;
- the journal passes SQLite's integrity_check and its own checks.

Default: 30 kills on an image, 20 behind vpcd; ``YKT_FULL=1``: 300 and 200.
The vpcd variant needs pcscd with the vpcd driver (tests/pcsc_support.py:
skipped with a reason without it, failed under CI=true).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cardlib.clock import BEIJING
from cardlib.keys import default_issuer
from cardlib.settlement import verify_records
from simulators.image import load_card, save_image
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from simulators.ssc import SocialSecurityCard
from terminal.journal import SETTLED, Journal
from tests.pcsc_support import pcscd, vpcd_card  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("YKT_FULL") == "1"
IMAGE_KILLS = 300 if FULL else 30
VPCD_KILLS = 200 if FULL else 20
INITIAL = 5000
START = datetime(2026, 11, 28, 6, 0, tzinfo=BEIJING)


@dataclass
class Terminal:
    """The files a terminal process keeps, and what its runs said."""

    folder: Path
    card_uri: str
    runs: int = 0
    said: Counter[str] = field(default_factory=Counter)
    _next: subprocess.Popen[str] | None = None

    @property
    def journal(self) -> Path:
        return self.folder / "journal.db"

    @property
    def ledger(self) -> Path:
        return self.folder / "host.db"

    @property
    def psam(self) -> Path:
        return self.folder / "psam.json"

    def _spawn(self) -> subprocess.Popen[str]:
        """A worker for the next run, its imports done while the current run works."""
        run = self.runs + 1
        when = START + timedelta(hours=run)  # each run on its own hour: no two runs share a time
        sync = "write_ahead" if run % 2 else "full"
        with open(self.folder / f"worker{run}.err", "w") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.crash_worker", self.card_uri, str(self.psam),
                 str(self.journal), str(self.ledger), when.isoformat(), str(run), sync],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)

    def start(self, order: str = "go") -> subprocess.Popen[str]:
        """The next run (told ``go``, or ``recover`` to stop after recovery), once it said
        ``ready``: what the last run left pending on the card is resolved by then."""
        proc = self._next or self._spawn()
        self.runs += 1
        self._next = self._spawn() if order == "go" else None
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(order + "\n")
        proc.stdin.close()
        for line in proc.stdout:
            self.said[line.split()[0] + (" " + line.split()[2] if line.startswith("recovery") else "")] += 1
            if line == "ready\n":
                return proc
        proc.wait()
        raise AssertionError(f"run {self.runs} died before it was ready: {self.errors()}")

    def errors(self) -> str:
        return (self.folder / f"worker{self.runs}.err").read_text()

    def kill_after(self, proc: subprocess.Popen[str], delay: float) -> None:
        time.sleep(delay)
        alive = proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.stdout is not None
        for line in proc.stdout:
            self.said[line.split()[0]] += 1
        proc.wait()
        proc.stdout.close()
        assert alive, f"run {self.runs} ended on its own: {self.errors()}"

    def killed_again_and_again(self, kills: int, rng: random.Random) -> None:
        try:
            for _ in range(kills):
                self.kill_after(self.start(), rng.uniform(0.0, 0.25))
            final = self.start("recover")
            assert final.wait(30) == 0, self.errors()
            assert final.stdout is not None
            final.stdout.close()
        finally:
            if self._next is not None:  # a test that failed: the waiting run is told to go home
                self._next.communicate("stop\n", timeout=30)


class Witness:
    """The card as served through vpcd, noting which terminals open a transaction on it.
    The vpcd port is machine-wide: another PC/SC test running at the same time would
    reach this card (or hand its own to this terminal), and the sums could not agree."""

    def __init__(self, card: SocialSecurityCard) -> None:
        self.card = card
        self.terminals: set[bytes] = set()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def reset(self) -> bytes:
        return self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        if apdu[:2] == b"\x80\x50" and len(apdu) >= 16:  # INITIALIZE: keyIdx, amount, terminal
            self.terminals.add(apdu[10:16])
        return self.card.process(apdu)


def assert_nothing_lost(term: Terminal, card: SocialSecurityCard) -> None:
    with Journal(term.journal) as journal:
        records = journal.records()
        assert {r.app_serial for r in records} <= {card.app_serial}, "the terminal reached another card"
        assert [r.id for r in records if r.state == "pending"] == [], "records left pending"
        settled = [r for r in records if r.state in SETTLED]
        loads = [r for r in settled if r.kind == "load"]
        debits = [r for r in settled if r.kind != "load"]
        assert card.balance == INITIAL + sum(r.amount for r in loads) - sum(r.amount for r in debits)
        state = card.purse.state
        assert sorted(r.card_seq for r in loads) == list(range(state.online_seq)), "loads: each counter value once"
        assert sorted(r.card_seq for r in debits) == list(range(state.offline_seq)), "debits: each counter value once"
        report = verify_records(settled, default_issuer())
        assert report.ok, f"TACs fail for records {report.failed}"
        assert journal.check_integrity() == []
    con = sqlite3.connect(term.journal)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    con = sqlite3.connect(term.ledger)
    try:
        host: dict[int, Any] = {seq: st for seq, st in con.execute("SELECT online_seq, state FROM ledger")}
    finally:
        con.close()
    assert {r.card_seq: "completed" for r in loads} == {s: st for s, st in host.items() if s in {r.card_seq for r in loads}}
    # pending at the host: at most the counter value a run was killed on between authorisation and CREDIT
    assert [s for s, st in host.items() if st == "pending" and s != state.online_seq] == []
    assert len(debits) >= 10 and term.said["done"] >= 10, "the terminal hardly transacted"
    assert term.said["recovery recovered"] + term.said["recovery failed"] >= 1, "no kill landed mid-transaction"


@pytest.mark.timeout(1800 if FULL else 300)
def test_killed_terminal_with_card_images(tmp_path: Path) -> None:
    card = issue_card(CardProfile(balance=INITIAL), seed=9100)
    image = tmp_path / "card.json"
    save_image(card, image)
    save_image(make_psam(terminal_id=bytes.fromhex("000000000071")), tmp_path / "psam.json")
    term = Terminal(tmp_path, f"sim:{image}")
    term.killed_again_and_again(IMAGE_KILLS, random.Random(9100))
    after = load_card(image, persist=False)
    assert isinstance(after, SocialSecurityCard)
    assert_nothing_lost(term, after)
    print(f"\n{IMAGE_KILLS} kills on an image: {dict(term.said)}")


@pytest.mark.timeout(1800 if FULL else 300)
def test_killed_terminal_with_a_card_behind_vpcd(tmp_path: Path, vpcd_card: Any) -> None:  # noqa: F811
    card = issue_card(CardProfile(balance=INITIAL), seed=9200)
    witness = Witness(card)
    bridge = vpcd_card(witness)
    terminal_id = bytes.fromhex("000000000072")
    save_image(make_psam(terminal_id=terminal_id), tmp_path / "psam.json")
    term = Terminal(tmp_path, f"pcsc:{bridge.reader_name}")
    term.killed_again_and_again(VPCD_KILLS, random.Random(9200))
    foreign = sorted(t.hex().upper() for t in witness.terminals - {terminal_id})
    assert not foreign, f"terminals {foreign} transacted on this card: another PC/SC test used {bridge.reader_name}"
    assert_nothing_lost(term, card)
    print(f"\n{VPCD_KILLS} kills behind vpcd: {dict(term.said)}")

