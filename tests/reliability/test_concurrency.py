"""Money under concurrency, with real processes (issue 15): many terminals at once on one
card image and one journal. Two kinds of process: whole `ykt` runs (their own interpreter,
as a careless user starts them from several shells), and forked workers that wait at a
barrier and open the card at the same instant — the start of a CLI run takes long enough
to keep its sessions apart by luck, the barrier takes the luck away.

After every round the journal's account equals the card's to the fen and no counter
repeats; a process either did its work or was told "card in use" (exit 3).
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from cardlib.channel import Channel
from cardlib.clock import Clock
from cardlib.errors import YktError
from cardlib.readers.registry import open_reader
from cardlib.ssse import commands as C
from simulators.image import load_card, save_image
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import SocialSecurityCard
from terminal.journal import SETTLED, Journal
from terminal.session import open_slots
from terminal.wallet import Wallet

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 4
PROCESSES = 6
FORK = multiprocessing.get_context("fork")


def _purchase_worker(image: str, db: str, amount: int, wait: str, barrier: Barrier, out: Any) -> None:
    """One terminal's purchase, the way `ykt purse purchase` makes it."""
    barrier.wait()
    try:
        slots = open_slots(f"sim:{image}?wait={wait}")
        try:
            channel = Channel(slots.card_reader)
            slots.card_reader.connect()
            with Journal(db, Clock.system(), "full") as journal:
                Wallet(channel, slots.psam, journal, Clock.system()).purchase(amount)
        finally:
            slots.close()
    except YktError as exc:
        out.put((exc.exit_code, str(exc)))
        return
    except Exception as exc:  # reported to the test, which fails on it
        out.put((-1, repr(exc)))
        return
    out.put((0, ""))


def _pin_worker(image: str, pin: str, barrier: Barrier, out: Any) -> None:
    barrier.wait()
    try:
        with open_reader(f"sim:{image}?wait=120") as reader:  # every attempt gets its turn
            reader.connect()
            reader.transmit(C.select_ssse().encode())
            out.put(reader.transmit(C.verify_pin(pin).encode()).hex().upper())
    except Exception as exc:  # reported to the test, which fails on it
        out.put(f"error: {exc!r}")


def _run_together(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    barrier, out = FORK.Barrier(len(args)), FORK.Queue()
    procs = [FORK.Process(target=target, args=(*a, barrier, out)) for a in args]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    return results


def _check_account(image: Path, db: Path, start: int) -> int:
    """The journal against the card: same money to the fen, no counter twice; the settled count."""
    with Journal(db) as journal:
        records = journal.records()
        assert journal.check_integrity() == [] and journal.integrity_warnings() == []
    assert not [r for r in records if r.state == "pending"]
    settled = [r for r in records if r.state in SETTLED]
    card = _card(image)
    assert start - sum(r.amount for r in settled) == card.balance
    assert card.purse.state.offline_seq == len(settled)
    assert sorted(r.card_seq for r in settled) == list(range(len(settled)))
    terminal_seqs = [r.terminal_seq for r in settled]
    assert len(set(terminal_seqs)) == len(terminal_seqs)
    return len(settled)


def test_purchases_at_the_same_instant_settle_what_the_card_paid(tmp_path: Path) -> None:
    """Fails on the old code: every process read the image before the others wrote it, so the
    journal settled every purchase while the card paid for a few, on repeated counters."""
    image, db = tmp_path / "card.json", tmp_path / "journal.db"
    start = 100_000
    save_image(issue_card(CardProfile(balance=start), seed=20), image)
    done = busy = 0
    for round_ in range(ROUNDS):
        amounts = [100 + 10 * round_ + i for i in range(PROCESSES)]  # distinct: a mix-up shows in the sum
        # half of them do not wait for the card: "card in use" is likely in every round
        results = _run_together(_purchase_worker, [(str(image), str(db), a, "0" if i % 2 else "30")
                                                   for i, a in enumerate(amounts)])
        for code, message in results:
            assert code == 0 or (code == 3 and "card in use" in message), message
        done += sum(code == 0 for code, _ in results)
        busy += sum(code == 3 for code, _ in results)
        assert _check_account(image, db, start) == done, f"round {round_}"
    assert done + busy == ROUNDS * PROCESSES and done >= ROUNDS * PROCESSES // 2, (done, busy)  # the waiting ones paid


def _ykt(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        out.append((proc.returncode, stdout, stderr))
    return out


def _card(path: Path) -> SocialSecurityCard:
    card = load_card(path, persist=False)
    assert isinstance(card, SocialSecurityCard)
    return card


def test_ykt_purchases_in_parallel_settle_what_the_card_paid(tmp_path: Path) -> None:
    """The same with whole `ykt purse purchase` runs (and the default PSAM, whose terminal
    sequence each run takes up where the last left it)."""
    image, db = tmp_path / "card.json", tmp_path / "journal.db"
    start = 100_000
    save_image(issue_card(CardProfile(balance=start), seed=21), image)
    done = 0
    for round_ in range(2):
        amounts = [100 + 10 * round_ + i for i in range(PROCESSES)]
        results = _finish([_ykt("purse", "purchase", "--reader", f"sim:{image}", "--amount", str(a),
                                "--journal", str(db), "--json") for a in amounts])
        for code, stdout, stderr in results:
            assert code in (0, 3), stderr
            if code == 3:
                assert "card in use" in stderr and stderr.count("\n") == 1, stderr
            else:
                assert json.loads(stdout)["amount"] in amounts
        done += sum(code == 0 for code, _, _ in results)
        assert _check_account(image, db, start) == done, f"round {round_}"


def test_wrong_pins_at_the_same_instant_spend_the_counter_once_each(tmp_path: Path) -> None:
    """Fails on the old code: ten wrong PINs at once were all compared against a counter read
    before the others wrote theirs; it ended at 2 and the right PIN still worked."""
    image = tmp_path / "card.json"
    save_image(issue_card(CardProfile(pin="246810"), seed=22), image)
    answers = _run_together(_pin_worker, [(str(image), f"{i:06d}") for i in range(10)])
    assert sorted(answers) == sorted(["63C2", "63C1"] + ["6983"] * 8), answers  # one try each, in turn
    assert _card(image).ssse.state.pin_tries == 0
    (code, _, stderr), = _finish([_ykt("card", "pin", "verify", "--pin", "246810", "--reader", f"sim:{image}")])
    assert code == 4 and "blocked" in stderr.lower(), stderr


def test_two_commands_one_after_the_other_never_repeat_the_terminal_sequence(tmp_path: Path) -> None:
    """Fails on the old code: the default simulated PSAM started at terminal sequence 0 in every
    command, so two purchases in one second had the same TAC input but for the card's counter."""
    image = tmp_path / "card.json"
    save_image(issue_card(seed=23), image)
    seqs = []
    for _ in range(2):
        (code, stdout, stderr), = _finish([_ykt("purse", "purchase", "--reader", f"sim:{image}", "--amount", "100",
                                                "--journal", str(tmp_path / "j.db"), "--json",
                                                "--now", "2026-11-28T08:00:00")])
        assert code == 0, stderr
        seqs.append(json.loads(stdout)["terminal_seq"])
    assert seqs[1] == seqs[0] + 1
