"""The ``sim`` reader scheme through the registry: sample cards, images saved
back, two cards in the field, PSAMs, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardlib.errors import FormatError, MultipleCardsError
from cardlib.iso import read_binary, select_aid
from cardlib.pboc import purse as P
from cardlib.readers.registry import open_reader
from cardlib.ssse import commands as C
from simulators.image import CardInUseError, card_to_json, save_image
from simulators.issuer import issue_card, sample_card
from simulators.psam import make_psam
from simulators.reader import SimReader
from simulators.ssc import DEFAULT_ATR

SELECT_PURSE = select_aid(P.PURSE_AID).encode()
BALANCE = P.GetBalance().to_apdu().encode()


def test_plain_sim_is_a_fresh_sample_card_and_seed_varies_it() -> None:
    reader = open_reader("sim")
    assert isinstance(reader, SimReader)
    assert reader.connect() == DEFAULT_ATR
    card = reader.cards[0]
    assert card_to_json(card) == card_to_json(sample_card(0))  # type: ignore[arg-type]
    seeded = open_reader("sim?seed=5")
    assert card_to_json(seeded.cards[0]) == card_to_json(sample_card(5))  # type: ignore[attr-defined]
    seeded.connect()
    read = seeded.transmit(read_binary(0, 30, sfi=0x15).encode())
    assert read[-2:] == b"\x6a\x82"  # the MF has no 0x15
    seeded.transmit(SELECT_PURSE)
    assert seeded.transmit(BALANCE) == (5000).to_bytes(4, "big") + b"\x90\x00"  # case 4 answered directly


def test_image_is_saved_back_after_every_change(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_image(issue_card(seed=1), path)
    reader = open_reader(f"sim:{path}")
    reader.connect()
    reader.transmit(C.select_ssse().encode())
    assert reader.transmit(C.verify_pin("000000").encode()) == bytes.fromhex("63C2")
    assert json.loads(path.read_text())["ssse"]["pin_tries"] == 2
    with pytest.raises(CardInUseError, match="already held in this process"):
        open_reader(f"sim:{path}")  # one holder per image, in this process too
    reader.close()  # the session ends: the image is free
    reopened = open_reader(f"sim:{path}")
    reopened.connect()
    reopened.transmit(C.select_ssse().encode())
    assert reopened.transmit(C.pin_query().encode()) == bytes.fromhex("63C2")


def test_two_cards_in_the_field(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_image(issue_card(seed=1), a)
    save_image(issue_card(seed=2), b)
    for uri in (f"sim:{a},{b}", f"sim:{a}?second={b}", f"sim?second={b}"):
        with open_reader(uri) as reader:
            assert len(reader.cards) == 2  # type: ignore[attr-defined]
            with pytest.raises(MultipleCardsError):
                reader.connect()
    reader = open_reader(f"sim?second={b}")
    reader.remove(reader.cards[0])  # type: ignore[attr-defined]
    reader.connect()
    reader.transmit(SELECT_PURSE)
    assert reader.transmit(BALANCE)[-2:] == b"\x90\x00"


def test_psam_uris(tmp_path: Path) -> None:
    psam = open_reader("sim?kind=psam")
    psam.connect()
    assert psam.transmit(bytes.fromhex("00B0960006")) == bytes.fromhex("0000000000019000")
    other = open_reader("sim?kind=psam&terminal=0000000000A1")
    other.connect()
    assert other.transmit(bytes.fromhex("00B0960006")) == bytes.fromhex("0000000000A19000")
    path = tmp_path / "psam.json"
    save_image(make_psam(terminal_id=bytes.fromhex("000000000042")), path)
    saved = open_reader(f"sim:{path}?kind=psam")
    saved.connect()
    assert saved.transmit(bytes.fromhex("00B0960006")) == bytes.fromhex("0000000000429000")


def test_t0_option_answers_61xx() -> None:
    reader = open_reader("sim?t0=1")
    reader.connect()
    first = reader.transmit(SELECT_PURSE)
    assert first[0] == 0x61
    assert reader.transmit(bytes((0x00, 0xC0, 0x00, 0x00, first[1])))[-2:] == b"\x90\x00"


def test_bad_uris_are_format_errors(tmp_path: Path) -> None:
    card, psam = tmp_path / "card.json", tmp_path / "psam.json"
    save_image(issue_card(seed=3), card)
    save_image(make_psam(), psam)
    cases = {
        "sim?colour=red": "unknown option",
        "sim?kind=disk": "kind must be",
        "sim?seed=x": "seed",
        "sim?kind=psam&terminal=00": "6 bytes",
        "sim?kind=psam&terminal=zz": "hex",
        f"sim:{card}?kind=psam": "not a psam",
        f"sim:{psam}": "not a card",
        f"sim:{tmp_path / 'missing.json'}": "no such card image",
    }
    for uri, words in cases.items():
        with pytest.raises(FormatError, match=words):
            open_reader(uri)
