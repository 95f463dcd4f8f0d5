"""Card images: round trips, file-backed cards, atomic writes under a lock,
a process killed while saving, broken images giving typed errors, masking."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardlib.errors import ConfigError, FormatError
from cardlib.iso import get_challenge, read_record_by_id, select_aid
from cardlib.pboc import purse as P
from cardlib.ssse import commands as C
from cardlib.ssse.files import SSSE_AID
from simulators.image import (
    FileBackedCard,
    card_from_json,
    card_to_json,
    load_card,
    mask_image,
    migrate_v2,
    release_card,
    save_image,
)
from simulators.issuer import CardProfile, issue_card
from simulators.psam import PsamCard, make_psam
from simulators.ssc import SocialSecurityCard

SCRIPT = [select_aid(SSSE_AID), get_challenge(8), read_record_by_id(0x09, sfi=6), C.pin_query(),
          select_aid(P.PURSE_AID), P.GetBalance().to_apdu(), get_challenge(4)]


def answers(card: Any) -> list[bytes]:
    return [card.process(c.encode()) for c in SCRIPT]


def test_round_trip_is_byte_identical_in_json_and_behaviour(tmp_path: Path) -> None:
    card = issue_card(CardProfile(name="沈明", algorithm="sm4"), seed=1)
    answers(card)  # move the rng and the purse's state off their start
    path = tmp_path / "card.json"
    save_image(card, path)
    text = path.read_text(encoding="utf-8")
    loaded = load_card(path, persist=False)
    assert card_to_json(loaded) == card_to_json(card)
    save_image(loaded, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == text
    assert answers(loaded) == answers(card)


def test_image_fields() -> None:
    obj = card_to_json(issue_card(seed=2))
    assert (obj["format"], obj["version"], obj["kind"]) == ("yikatong-card-image", 3, "card")  # 2: last_proof; 3: extra_dpk
    assert set(obj["keys"]) == {"dlk", "dpk", "dtk", "damk", "cak", "eak"}
    assert all(e["index"] == 1 and e["algorithm"] == "3des" and len(e["key"]) == 32 for e in obj["keys"].values())
    assert obj["balance"] == obj["purse"]["balance"] == 5000
    assert {(f["df"], f["sfi"]) for f in obj["files"]} >= {("3F00/DDF1", 5), ("3F00/1001", 0x15)}


def test_psam_round_trip(tmp_path: Path) -> None:
    sam = make_psam(terminal_id=bytes.fromhex("0000000000A1"), seed=3)
    save_image(sam, tmp_path / "psam.json")
    loaded = load_card(tmp_path / "psam.json")
    assert isinstance(loaded, PsamCard) and card_to_json(loaded) == card_to_json(sam)
    assert loaded.state.terminal_id == bytes.fromhex("0000000000A1")


def test_file_backed_card_saves_every_change(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(seed=4), path)
    card = load_card(path)
    assert isinstance(card, SocialSecurityCard)
    card.process(select_aid(SSSE_AID).encode())
    card.process(C.verify_pin("000000").encode())
    on_disk = load_card(path, persist=False)
    assert isinstance(on_disk, SocialSecurityCard) and on_disk.ssse.state.pin_tries == 2
    card.process(C.change_pin("123456", "654321").encode())
    assert json.loads(path.read_text())["ssse"]["pin"] == "654321"
    assert (tmp_path / "card.json.lock").exists()  # the side lock file
    assert not list(tmp_path.glob(".card.json.*.tmp"))
    other = issue_card(seed=5)
    backed = FileBackedCard(other, tmp_path / "other.json")
    backed.save()
    other.process(select_aid(SSSE_AID).encode())
    other.process(C.verify_pin("000000").encode())
    assert json.loads((tmp_path / "other.json").read_text())["ssse"]["pin_tries"] == 2


def test_a_failed_write_leaves_the_old_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "card.json"
    card = issue_card(seed=6)
    save_image(card, path)
    before = path.read_text()
    renamed: list[tuple[str, str]] = []

    def failing_replace(src: str, dst: str) -> None:
        renamed.append((str(src), str(dst)))
        assert Path(src).parent == tmp_path and Path(src).read_text() != before  # complete new text, beside it
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", failing_replace)
    card.purse.state.balance = 1
    with pytest.raises(FormatError, match="disk gone"):  # one line, the file named
        save_image(card, path)
    assert path.read_text() == before
    assert renamed and renamed[0][1] == str(path)
    assert not list(tmp_path.glob(".card.json.*.tmp"))  # the temporary file was removed


SAVER = """
import sys
from simulators.image import save_image
from simulators.issuer import issue_card
card = issue_card(seed=7)
print("ready", flush=True)
n = 0
while True:
    n += 1
    card.purse.state.balance = n
    save_image(card, sys.argv[1])
"""


def test_a_process_killed_while_saving_leaves_a_valid_image(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(seed=7), path)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE,
                                cwd=Path(__file__).resolve().parents[2])
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        while load_card(path, persist=False).balance < 20:  # type: ignore[union-attr]
            assert proc.poll() is None, "the saver died on its own"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert load_card(path, persist=False).balance >= 20  # type: ignore[union-attr]


BROKEN = [
    (lambda o: o.pop("keys"), "keys"),
    (lambda o: o.update(kind="disk"), "kind"),
    (lambda o: o.update(format="x"), "format"),
    (lambda o: o.update(version=4), "version"),  # 3 is this format now, 1 and 2 migrate
    (lambda o: o["purse"].update(last_proof={"type": 6, "seq": 1, "mac": "00", "tac": "00"}), "last_proof"),
    (lambda o: o["purse"].update(balance="many"), "balance"),
    (lambda o: o["purse"].update(online_seq=70000), "counters"),
    (lambda o: o.update(balance=1), "balance and purse.balance differ"),
    (lambda o: o["ssse"].update(pin="12"), "pin"),
    (lambda o: o["ssse"].update(pin_tries=9), "try counters"),
    (lambda o: o["files"].append({"df": "9", "fid": 1}), "file entry"),
    (lambda o: next(f for f in o["files"] if f["sfi"] == 0x18).update(records=["00"]), "file entry"),
    (lambda o: o["keys"]["dpk"].update(key="00"), "dpk"),
    (lambda o: o.update(rng=[1]), "rng"),
    (lambda o: o.update(atr="XY"), "atr"),
]


@pytest.mark.parametrize(("damage", "words"), BROKEN)
def test_broken_images_name_the_problem(tmp_path: Path, damage: Any, words: str) -> None:
    obj = card_to_json(issue_card(seed=8))
    damage(obj)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(FormatError, match=words) as info:
        load_card(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such card image"):
        load_card(tmp_path / "none.json")
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(FormatError, match="not JSON"):
        load_card(tmp_path / "text.json")
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FormatError, match="cannot read"):
        load_card(tmp_path / "bytes.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(FormatError, match="JSON object"):
        load_card(tmp_path / "list.json")


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=8),
                        st.lists(st.integers(0, 255), max_size=3), st.dictionaries(st.text(max_size=3), st.none()))
TEMPLATE = card_to_json(issue_card(seed=9))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list) and len(obj) < 50:
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(TEMPLATE)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), min_size=1, max_size=3))
def test_fuzzed_images_give_typed_errors_or_working_cards(changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    obj = copy.deepcopy(TEMPLATE)
    for path, value in changes:
        node = obj
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        card = card_from_json(obj)
    except (FormatError, ConfigError):
        return
    for raw in answers(card):
        assert len(raw) >= 2


def test_masking_hides_secrets_and_keeps_personal_data() -> None:
    card = issue_card(CardProfile(name="沈明", pin="246810"), seed=10)
    obj = card_to_json(card)
    shown = json.dumps(mask_image(obj), ensure_ascii=False)
    for key in obj["keys"].values():
        assert key["key"] not in shown
    assert "246810" not in shown
    assert mask_image(obj)["ssse"] == {**obj["ssse"], "pin": "********", "puk": "********"}
    assert mask_image(obj)["keys"]["dpk"] == {**obj["keys"]["dpk"], "key": "********"}
    assert mask_image(obj)["files"] == obj["files"]  # personal data stays: the user asked to see the card
    assert "沈明".encode("gbk").hex().upper() in json.dumps(obj["files"])
    psam = mask_image(card_to_json(make_psam()))
    assert all(v["key"] == "********" for v in psam["issuer"]["keys"].values())
    assert obj == card_to_json(card)  # masking copies, it never edits the image


# --- version 3: a purchase key per key index ----------------------------------------------------


def _interoperable(seed: int) -> SocialSecurityCard:
    return issue_card(CardProfile(interoperable=True), seed=seed)


def _init_sw(card: SocialSecurityCard, key_index: int) -> int:
    """The SW of INITIALIZE FOR PURCHASE under ``key_index`` (the purse selected first)."""
    card.process(select_aid(P.PURSE_AID).encode())
    return int.from_bytes(card.process(P.InitializeForPurchase(key_index, 1, bytes(6)).to_apdu().encode())[-2:], "big")


def test_an_interoperable_cards_purchase_keys_survive_its_image(tmp_path: Path) -> None:
    card = _interoperable(21)
    obj = card_to_json(card)
    assert obj["version"] == 3 and [e["index"] for e in obj["keys"]["extra_dpk"]] == [2]
    save_image(card, tmp_path / "card.json")
    again = load_card(tmp_path / "card.json", persist=False)
    assert isinstance(again, SocialSecurityCard) and again.keys == card.keys
    assert [_init_sw(again, index) for index in (1, 2, 3)] == [0x9000, 0x9000, 0x9403]
    assert "extra_dpk" not in card_to_json(issue_card(seed=21))["keys"]  # a card of one key: as before


def test_a_version_2_image_migrates_and_keeps_its_one_purchase_key(tmp_path: Path) -> None:
    card = issue_card(seed=22)
    obj = card_to_json(card)
    obj["version"] = 2  # what version 2 wrote: the same fields, no keys.extra_dpk
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    again = load_card(path)
    try:
        assert isinstance(again, SocialSecurityCard) and again.keys == card.keys and again.keys.extra_dpk == ()
        assert [_init_sw(again, index) for index in (1, 2)] == [0x9000, 0x9403]
    finally:
        release_card(again)
    assert migrate_v2(obj) == {**obj, "version": 3}
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 2  # not written: nothing changed yet


@pytest.mark.parametrize("extra, words", [
    ("x", "extra_dpk: expected a list"),
    ([{"key": "00" * 16, "index": 1}], "one purchase key per key index"),
    ([{"key": "00" * 15, "index": 2}], r"extra_dpk\[0\].key"),
])
def test_a_bad_extra_purchase_key_names_the_problem(tmp_path: Path, extra: Any, words: str) -> None:
    obj = card_to_json(issue_card(seed=23))
    obj["keys"]["extra_dpk"] = extra
    with pytest.raises(FormatError, match=words):
        card_from_json(obj)
