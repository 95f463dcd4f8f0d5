"""Over a PN532, `ykt readers --probe-serial`, `ykt watch` and `ykt card info` show the card's
UID, ATQA, SAK and ATS as libnfc's nfc-list prints them: nfc-list itself runs against the same
emulated chip and card, and its target block must appear line for line in each of ours."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from cli.target_info import target_lines
from simulators.issuer import sample_card
from simulators.pn532 import Pn532Emulator
from tests.cli.pty_session import ykt_command

pytestmark = pytest.mark.pty


@pytest.fixture
def emulator() -> Iterator[Pn532Emulator]:
    if not hasattr(os, "openpty"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no pseudo-terminals")
        pytest.skip("no pseudo-terminals here")
    e = Pn532Emulator([sample_card(seed=2)])
    e.start()
    yield e
    e.stop()


def nfc_list_block(e: Pn532Emulator) -> list[str]:
    """What nfc-list prints for the one target in the field (the header and its lines)."""
    if shutil.which("nfc-list") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but nfc-list (libnfc-bin) is not installed")
        pytest.skip("nfc-list (libnfc-bin) is not installed")
    env = dict(os.environ, LIBNFC_DEVICE=f"pn532_uart:{e.path}")
    done = subprocess.run(["nfc-list"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("ISO/IEC 14443A (106 kbps) target:")
    block = lines[start : start + 5]
    assert [line.strip().split(":")[0] for line in block[1:]] == [
        "ATQA (SENS_RES)", "UID (NFCID1)", "SAK (SEL_RES)", "ATS"]
    return block


def ykt(*args: str) -> str:
    done = subprocess.run(ykt_command() + list(args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def contains_block(out: str, block: list[str]) -> bool:
    lines = out.splitlines()
    return any(lines[i : i + len(block)] == block for i in range(len(lines)))


def test_readers_watch_and_card_info_print_what_nfc_list_prints(emulator: Pn532Emulator) -> None:
    block = nfc_list_block(emulator)
    uri = f"pn532:{emulator.path}"

    assert contains_block(ykt("readers", "--probe-serial", emulator.path), block)
    assert contains_block(ykt("watch", "--reader", uri, "--count", "1"), block)
    info = ykt("card", "info", "--reader", uri)
    assert contains_block(info, block)
    assert "card_type          adult (01)" in info  # and the rest of the card, names for codes

    # JSON: the same four values in hex, and they print back into nfc-list's lines
    probe = json.loads(ykt("readers", "--probe-serial", emulator.path, "--json"))["serial"][0]
    event = json.loads(ykt("watch", "--reader", uri, "--count", "1", "--json"))
    card = json.loads(ykt("card", "info", "--reader", uri, "--json"))
    assert probe["target"] == event["target"] == card["target"]
    assert target_lines(card["target"]) == block
    uid = bytes.fromhex(card["target"]["uid"])
    assert len(uid) == 7 and card["target"]["atqa"] == "0044" and card["target"]["sak"] == "20"
    assert bytes.fromhex(card["target"]["ats"])[4:7] == b"YKT"  # the historical bytes, after T0 TA TB TC


def test_no_card_in_the_field(emulator: Pn532Emulator) -> None:
    emulator.remove()
    out = ykt("readers", "--probe-serial", emulator.path)
    assert any(line.startswith(f"pn532:{emulator.path}  PN532 firmware") and line.endswith("(no card)")
               for line in out.splitlines())
    assert "ATQA" not in out
    probe = json.loads(ykt("readers", "--probe-serial", emulator.path, "--json"))["serial"][0]
    assert probe["target"] is None


def test_two_cards_in_the_field_are_said_not_listed(emulator: Pn532Emulator) -> None:
    emulator.insert(sample_card(seed=3))
    probe = json.loads(ykt("readers", "--probe-serial", emulator.path, "--json"))["serial"][0]
    assert probe["target"] is None and probe["card_error"] == "2 cards in the field: present one card only"
    assert "ATQA" not in ykt("readers", "--probe-serial", emulator.path)


def test_a_random_uid_is_an_nfcid3_as_libnfc_names_it() -> None:
    info = {"uid": "08A1B2C3", "atqa": "0004", "sak": "20", "ats": ""}
    assert target_lines(info) == ["ISO/IEC 14443A (106 kbps) target:",
                                  "    ATQA (SENS_RES): 00  04  ",
                                  "       UID (NFCID3): 08  a1  b2  c3  ",
                                  "      SAK (SEL_RES): 20  "]  # no ATS line without an ATS
