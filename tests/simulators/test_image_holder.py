"""One holder per card image (the lock covers the session, not each write), the PIN
counter written before the PIN is compared, and images that cannot lie about money
(issue 15, items 1, 2 and 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cardlib.errors import EXIT_TRANSPORT, FormatError, SharingViolationError
from cardlib.iso import select_aid
from cardlib.pboc import purse as P
from cardlib.readers.registry import open_reader
from cardlib.ssse import commands as C
from simulators.image import (
    CardInUseError,
    ImageLock,
    card_to_json,
    load_card,
    release_card,
    save_image,
)
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import SocialSecurityCard
from tests.simulators.helpers import purchase, tx

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys
from cardlib.ssse import commands as C
from simulators.image import load_card
card = load_card(sys.argv[1])
card.process(C.select_ssse().encode())
card.process(C.verify_pin("000000").encode())  # one change of state, written by this holder
print("holding", flush=True)
sys.stdin.readline()
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.close()
    proc.wait(30)
    proc.stdout.close()


def _pin_tries(path: Path) -> int:
    tries: int = json.loads(path.read_text())["ssse"]["pin_tries"]
    return tries


# --- item 1: one holder per image ------------------------------------------------------------


def test_a_second_holder_in_another_process_waits_then_gets_card_in_use(tmp_path: Path) -> None:
    """Fails on the old code: the lock covered each write, so a second session opened at once
    from the image as it was, and the two sessions' writes interleaved."""
    path = tmp_path / "card.json"
    save_image(issue_card(seed=1), path)
    proc = _holder(path)
    try:
        started = time.monotonic()
        with pytest.raises(CardInUseError, match="card in use") as info:
            load_card(path, wait=0.3)
        assert time.monotonic() - started >= 0.3  # it waited before giving up
        assert isinstance(info.value, SharingViolationError) and info.value.exit_code == EXIT_TRANSPORT
        with pytest.raises(CardInUseError):
            save_image(issue_card(seed=2), path, wait=0)  # not overwritten under the holder either
        snapshot = load_card(path, persist=False)  # a read-only snapshot takes no lock
        assert isinstance(snapshot, SocialSecurityCard) and snapshot.ssse.state.pin_tries == 2
    finally:
        _end(proc)
    card = load_card(path, wait=0)  # free once the holder's session ended
    assert isinstance(card, SocialSecurityCard) and card.ssse.state.pin_tries == 2
    release_card(card)


def test_a_waiting_holder_reads_the_image_after_the_first_session_wrote_it(tmp_path: Path) -> None:
    """The lock is taken before the image is read: the second session starts from the first's
    last word, not from a copy read before it waited."""
    path = tmp_path / "card.json"
    save_image(issue_card(seed=3), path)
    proc = _holder(path)
    try:
        reader = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "card", "pin", "verify", "--pin", "000000",
             "--reader", f"sim:{path}?wait=30"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert reader.poll() is None, reader.communicate()  # still waiting for the holder
    finally:
        _end(proc)
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 4 and "1" in err  # the second wrong PIN: one try left
    assert _pin_tries(path) == 1


def test_card_in_use_is_exit_3_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(seed=4), path)
    proc = _holder(path)
    try:
        r = subprocess.run([sys.executable, "-m", "cli.main", "purse", "balance", "--reader", f"sim:{path}?wait=0.2"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        _end(proc)
    assert r.returncode == 3, r.stderr
    assert r.stderr.count("\n") == 1 and "card in use" in r.stderr


def test_a_second_holder_in_the_same_process_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(seed=5), path)
    first = load_card(path)
    started = time.monotonic()
    with pytest.raises(CardInUseError, match="already held in this process"):
        load_card(path, wait=10)
    with pytest.raises(CardInUseError, match="already held in this process"):
        open_reader(f"sim:{path}")
    assert time.monotonic() - started < 5  # refused, not waited for
    release_card(first)
    with open_reader(f"sim:{path}"):  # the reader holds it until it is closed
        with pytest.raises(CardInUseError):
            load_card(path)
    second = load_card(path)
    release_card(second)


def test_a_released_card_is_no_longer_saved(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(seed=6), path)
    card = load_card(path)
    release_card(card)
    card.process(C.select_ssse().encode())
    card.process(C.verify_pin("000000").encode())
    assert _pin_tries(path) == 3


def test_a_reader_that_cannot_hold_every_image_holds_none(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_image(issue_card(seed=1), a)
    save_image(issue_card(seed=2), b)
    held = load_card(b)
    with pytest.raises(CardInUseError):
        open_reader(f"sim:{a},{b}")
    release_card(load_card(a))  # a was let go when b could not be held
    release_card(held)


def test_the_lock_file_is_not_followed_through_a_link(tmp_path: Path) -> None:
    """Fails on the old code: open(lock, "a") followed the link and created its target."""
    path = tmp_path / "card.json"
    save_image(issue_card(seed=7), path)
    os.unlink(tmp_path / "card.json.lock")
    target = tmp_path / "elsewhere"
    (tmp_path / "card.json.lock").symlink_to(target)
    with pytest.raises(FormatError, match="symbolic link"):
        load_card(path)
    with pytest.raises(FormatError, match="symbolic link"):
        save_image(issue_card(seed=7), path)
    assert not target.exists()
    os.unlink(tmp_path / "card.json.lock")
    os.mkfifo(tmp_path / "card.json.lock")
    with pytest.raises(FormatError, match="not a regular file"):
        ImageLock(path)


# --- item 2: the PIN counter written before the compare ------------------------------------------


def _make_unwritable(path: Path) -> None:
    """The image cannot be written any more: a folder stands where the file was (root ignores modes)."""
    os.replace(path, path.with_suffix(".moved"))
    path.mkdir()


def test_verify_is_refused_when_the_counter_cannot_be_written(tmp_path: Path) -> None:
    """Fails on the old code: a wrong PIN answered 6F00 with the counter on disk unchanged, and
    the right PIN answered 9000 — unlimited guesses while the image could not be written."""
    path = tmp_path / "card.json"
    save_image(issue_card(CardProfile(pin="246810"), seed=8), path)
    card = load_card(path)
    assert isinstance(card, SocialSecurityCard)
    card.process(C.select_ssse().encode())
    _make_unwritable(path)
    for pin in ("000000", "246810", "111111"):
        assert card.process(C.verify_pin(pin).encode()) == bytes.fromhex("6581")  # memory failure, nothing compared
    assert not card.fs.security.pin_verified and card.ssse.state.pin_tries == 3
    assert card.process(C.change_pin("246810", "135790").encode()) == bytes.fromhex("6581")
    assert card.process(C.unblock_pin(card.ssse.state.puk, "135790").encode()) == bytes.fromhex("6581")
    assert card.ssse.state.pin == "246810" and card.ssse.state.puk_tries == 10
    release_card(card)
    path.rmdir()
    os.replace(path.with_suffix(".moved"), path)
    assert _pin_tries(path) == 3


def test_the_right_pin_is_refused_when_its_counter_cannot_be_given_back(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(CardProfile(pin="246810"), seed=9), path)
    card = load_card(path)
    assert isinstance(card, SocialSecurityCard)
    card.process(C.select_ssse().encode())
    writes: list[int] = []

    def second_write_fails() -> None:  # the spent try is written, giving it back is not
        writes.append(card.ssse.state.pin_tries)
        if len(writes) == 2:
            raise OSError("disk full")

    card.listeners.insert(0, second_write_fails)
    assert card.process(C.verify_pin("246810").encode()) == bytes.fromhex("6581")
    assert writes == [2, 3] and not card.fs.security.pin_verified
    assert card.ssse.state.pin_tries == 2 == _pin_tries(path)  # memory and image agree: the try stays spent
    release_card(card)


@pytest.mark.parametrize("data", ["0020000003" + "12345A", "0020000003" + "A23456", "0020000003" + "FFFFFF",
                                  "0024000006" + "123456" + "12345F", "002C000006" + "12345B" + "123456"])
def test_a_pin_that_is_not_bcd_is_6a80_and_costs_no_try(tmp_path: Path, data: str) -> None:
    """Fails on the old code: CHANGE took 12345F as the new PIN and the image could not be loaded again."""
    path = tmp_path / "card.json"
    save_image(issue_card(CardProfile(pin="123456"), seed=10), path)
    card = load_card(path)
    card.process(C.select_ssse().encode())
    assert card.process(bytes.fromhex(data)) == bytes.fromhex("6A80")
    release_card(card)
    again = load_card(path, persist=False)  # still loads
    assert isinstance(again, SocialSecurityCard)
    assert (again.ssse.state.pin, again.ssse.state.pin_tries, again.ssse.state.puk_tries) == ("123456", 3, 10)


# --- item 5: images that cannot lie about money ---------------------------------------------------


def _with(damage: Any) -> dict[str, Any]:
    obj = card_to_json(issue_card(seed=12))
    damage(obj)
    obj["balance"] = obj["purse"]["balance"]
    return obj


def _proof(**kw: Any) -> dict[str, Any]:
    return {"type": 6, "seq": 1, "mac": "00112233", "tac": "44556677", **kw}


LIES = [
    (lambda o: o["purse"].update(overdraft_limit=-1), "overdraft_limit"),
    (lambda o: o["purse"].update(overdraft_limit=0x1000000), "overdraft_limit"),
    (lambda o: o["purse"].update(overdraft_limit=1000, balance=-1001), "balance"),
    (lambda o: o["purse"].update(max_balance=2**40), "max_balance"),
    (lambda o: o["purse"].update(max_balance=0x80000000, balance=0), "max_balance"),
    (lambda o: o["purse"].update(max_balance=1000, balance=1001), "balance"),
    (lambda o: o["purse"].update(offline_seq=0x10000), "counters"),
    (lambda o: o["purse"].update(online_seq=-1), "counters"),
    # version 2 images keep one last_proof (its seq the counter after the transaction) in place
    # of the ten proofs these cases checked before
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(mac="0011")), "mac"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(tac="XYZXYZXY")), "tac"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(type=5)), "type"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(seq=2)), "counter"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(seq=0)), "counter"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(seq="1")), "seq"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof={"type": 6, "seq": 1}), "last_proof"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=["00"]), "last_proof"),
    (lambda o: o["purse"].update(offline_seq=1, last_proof=_proof(proofs=[])), "exactly"),
    (lambda o: o["state"].update(terminal_seq=2**32), "terminal_seq"),
]


@pytest.mark.parametrize(("damage", "words"), LIES)
def test_images_that_would_lie_about_money_are_refused(tmp_path: Path, damage: Any, words: str) -> None:
    """Fails on the old code for each: overdraft and maximum were not bounded, proofs not checked."""
    if "terminal_seq" in words:
        from simulators.psam import make_psam

        obj = card_to_json(make_psam())
        damage(obj)
    else:
        obj = _with(damage)
    path = tmp_path / "lie.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(FormatError, match=words) as info:
        load_card(path, persist=False)
    assert str(path) in str(info.value)


def test_a_balance_in_overdraft_loads_and_answers(tmp_path: Path) -> None:
    """Fails on the old code: a purchase into the overdraft wrote −500 and the image never loaded again."""
    from simulators.psam import make_psam

    path = tmp_path / "card.json"
    save_image(issue_card(CardProfile(balance=500, overdraft_limit=1000), seed=13), path)
    card = load_card(path)
    purchase(card, make_psam(), 1000)
    release_card(card)
    again = load_card(path)
    assert again.balance == -500  # type: ignore[union-attr]
    again.process(select_aid(P.PURSE_AID).encode())
    assert again.process(P.GetBalance().to_apdu().encode()) == (-500 & 0xFFFFFFFF).to_bytes(4, "big") + b"\x90\x00"
    release_card(again)


def test_a_load_past_the_maximum_is_refused() -> None:
    """Fails on the old code: a max_balance of 2**40 let a load wrap the 4-byte balance."""
    card = issue_card(CardProfile(balance=0x7FFFFFFF - 100), seed=14)
    card.purse.state.max_balance = 2**40  # what an image can no longer say, but a model could be given
    tx(card, select_aid(P.PURSE_AID)).check()
    tid = bytes.fromhex("000000000001")
    assert tx(card, P.InitializeForLoad(1, 101, tid).to_apdu()).sw == 0x6985
    assert tx(card, P.InitializeForLoad(1, 100, tid).to_apdu()).ok  # up to the 4-byte field's maximum


def test_slots_that_cannot_open_the_psam_let_the_card_go(tmp_path: Path) -> None:
    from terminal.session import open_slots

    path = tmp_path / "card.json"
    save_image(issue_card(seed=15), path)
    psam = open_reader("sim?kind=psam&wait=0")  # the default PSAM held elsewhere
    with pytest.raises(CardInUseError):
        open_slots(f"sim:{path}", "sim?kind=psam&wait=0")
    psam.close()
    slots = open_slots(f"sim:{path}")  # both free again
    slots.close()


def test_the_default_psam_keeps_its_counter_in_the_state_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails on the old code: sim?kind=psam was a fresh PSAM at terminal sequence 0 every time."""
    from simulators.psam import PsamCard
    from simulators.reader import state_dir

    monkeypatch.delenv("YKT_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "yikatong"
    assert (tmp_path / "xdg" / "yikatong").stat().st_mode & 0o777 == 0o700
    for expected in range(3):
        with open_reader("sim?kind=psam") as reader:
            sam = reader.cards[0]  # type: ignore[attr-defined]
            assert isinstance(sam, PsamCard) and sam.state.terminal_seq == expected
            purchase(issue_card(seed=16), sam, 1)
    image = json.loads((tmp_path / "xdg" / "yikatong" / "psam-000000000001.json").read_text())
    assert image["state"]["terminal_seq"] == 3
