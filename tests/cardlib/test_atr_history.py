"""Historical bytes (ISO/IEC 7816-4 §8.1.1; PC/SC part 3 storage cards) and card names from
pcsc-tools' smartcard_list.txt, byte-exact on published ATRs.

Every ATR below is an entry of smartcard_list.txt (pcsc-tools 1.6.2, Debian's
/usr/share/pcsc/smartcard_list.txt, https://pcsc-tools.apdu.fr/smartcard_list.txt),
named by the description the list gives it; the PC/SC part 3 storage-card ATRs
follow the layout of the PC/SC specification part 3 supplement (3B 8F 80 01 80
4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00 TCK), as the list's "(as per PCSC std
part3)" entries show.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.atr import parse_atr
from cardlib.atr_history import decode_historical, life_cycle
from cardlib.smartcard_list import candidate_lists, find_list, match_atr, name_card


def atr(h: str) -> bytes:
    return bytes.fromhex(h.replace(" ", ""))


def rows(h: str) -> list[tuple[str, str]]:
    return parse_atr(atr(h)).history.rows()


def test_compact_tlv_country_service_data_and_capabilities() -> None:
    """"My Number Card (The Social Security and Tax Number System in JAPAN)": country 392 is Japan."""
    assert rows("3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B") == [
        ("category", "80 (compact-TLV)"),
        ("12 country code", "country 392 (ISO 3166-1 numeric), national data F"),
        ("31 card service data", "application selection by full DF name"),
        ("", "application selection by partial DF name"),
        ("", "EF.DIR and EF.ATR read by READ RECORD(S)"),
        ("", "card without MF"),
        ("73 card capabilities", "selection: full DF name, partial DF name, short EF identifier, record number"),
        ("", "data coding: write functions one-time write, 'FF' invalid as first tag byte, data unit 2 quartet(s)"),
        ("", "command chaining; extended Lc and Le fields; no logical channels; at most 1 logical channel(s)"),
    ]


def test_status_indicator_among_the_objects() -> None:
    """"German ID Card - Personalausweis": category 80 with a tag-8 status indicator (SW 9000)."""
    h = parse_atr(atr("3B 8A 80 01 80 31 B8 73 84 01 E0 82 90 00 06")).history
    assert [(o.tag, o.value) for o in h.objects] == [(3, b"\xb8"), (7, atr("84 01 E0")), (8, atr("90 00"))]
    assert h.rows()[1:6] == [
        ("31 card service data", "application selection by full DF name"), ("", "BER-TLV data objects in EF.DIR"),
        ("", "BER-TLV data objects in EF.ATR"), ("", "EF.DIR and EF.ATR read by READ BINARY"), ("", "card with MF")]
    assert h.rows()[-1] == ("82 status indicator", "SW 9000 (success)")
    assert h.rows()[-2][1] == ("command chaining; extended Lc and Le fields; extended length information in "
                               "EF.ATR/INFO (7816-4:2013); no logical channels; at most 1 logical channel(s)")


def test_category_00_ends_with_the_mandatory_status_indicator() -> None:
    """"Java NXP J2L040 JCOP3 (JavaCard)": 00, objects, then LCS SW1 SW2."""
    h = parse_atr(atr("3B 6A 00 00 00 31 C1 73 C8 40 00 00 90 00")).history
    assert (h.category, h.status, [o.tag for o in h.objects]) == (0x00, atr("00 90 00"), [3, 7])
    assert h.rows()[-4:] == [
        ("", "data coding: write functions write OR, 'FF' invalid as first tag byte, data unit 1 quartet(s)"),
        ("", "no logical channels; at most 1 logical channel(s)"),
        ("status indicator", "LCS 00 (no information given)"), ("", "SW 9000 (success)")]
    assert h.to_json()["status_indicator"] == {"value": "009000",
                                                "meaning": ["LCS 00 (no information given)", "SW 9000 (success)"]}


def test_dir_reference_proprietary_and_problems() -> None:
    assert rows("3B 02 10 50") == [("category", "10 (DIR data reference)"), ("DIR data reference", "50")]  # "Visa"
    # "Yikatong BMAC - Beijing Municipal Administration & Communication contactless card"
    assert rows("3B 82 80 01 48 58 13") == [("category", "48 (proprietary)"), ("proprietary data", '48 58 "HX"')]
    # "Rompetrol Romania Fill&Go Fuel Card": category 00 without its status indicator, reported, not raised
    assert rows("3B 81 01 00 80")[-1] == ("problem", "category 00 needs a 3-byte status indicator, 0 byte(s) follow")
    assert decode_historical(atr("80 75 01")).problems == ("compact-TLV object 75 announces 5 byte(s), 1 left",)
    assert decode_historical(atr("85")).kind == "RFU" and decode_historical(b"").rows() == []


@pytest.mark.parametrize(("h", "standard", "card"), [
    ("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A", "03 (ISO 14443 A, part 3)",
     "0001 (MIFARE Classic 1K)"),  # "NXP/Philips MIFARE Classic 1K (as per PCSC std part3)"
    ("3B 8F 80 01 80 4F 0C A0 00 00 03 06 11 00 3B 00 00 00 00 42", "11 (FeliCa)",
     "003B (FeliCa)"),  # "Suica public transit card (Japan IC system)"
    ("3B 8F 80 01 80 4F 0C A0 00 00 03 06 40 00 00 00 00 00 00 28", "40 (low frequency contactless (< 135 kHz))",
     "0000 (card name not given)"),  # "HID Proximity"
])
def test_pcsc_part3_storage_cards(h: str, standard: str, card: str) -> None:
    assert rows(h) == [("category", "80 (PC/SC part 3 contactless storage card)"),
                       ("RID", "A0 00 00 03 06 (PC/SC Workgroup)"), ("standard", standard), ("card name", card)]


def test_life_cycle_status_table() -> None:
    assert [life_cycle(b) for b in (0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x0D, 0x10)] == [
        "no information given", "creation state", "RFU", "initialisation state", "operational state (activated)",
        "operational state (deactivated)", "termination state", "proprietary"]


@given(st.binary(max_size=15))
def test_any_historical_bytes_decode_without_raising(data: bytes) -> None:
    h = decode_historical(data)
    assert isinstance(h.rows(), list) and isinstance(h.to_json(), dict)


LIST = """#
# a comment line: 3B 8F 80 01 ...
3B 8F 80 01 80 4F 0C A0 00 00 03 06 .. 00 01 00 00 00 00 ..
\tMIFARE Classic 1K (as per PCSC std part3)

3b 8f 80 01 80 4f 0c a0 00 00 03 06 03 00 01 00 00 00 00 6a
\tan exact entry, lower case
\thttps://example.invalid/card

3B 8F 80 01 80 4F 0C A0 00 00 03 06 0[12] .. .. 00 00 00 00 ..
\tnot ISO 14443 A part 3

3B 8F 80 01 .*
\tany PC/SC part 3 ATR
"""


def test_matching_follows_atr_analysis() -> None:
    """Every matching entry in file order, patterns as whole-string regular expressions, any case."""
    matches = match_atr(atr("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"), LIST)
    assert [m.descriptions for m in matches] == [
        ("MIFARE Classic 1K (as per PCSC std part3)",), ("an exact entry, lower case", "https://example.invalid/card"),
        ("any PC/SC part 3 ATR",)]
    assert match_atr(atr("3B 02 10 50"), LIST) == []
    assert [m.pattern for m in match_atr(atr("3B 8F 80 01 80 4F 0C A0 00 00 03 06 02 00 01 00 00 00 00 69"), LIST)][1:] \
        == ["3B 8F 80 01 80 4F 0C A0 00 00 03 06 0[12] .. .. 00 00 00 00 ..", "3B 8F 80 01 .*"]


def test_the_list_is_looked_for_where_atr_analysis_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert candidate_lists()[:2] == [tmp_path / "cache" / "smartcard_list.txt", tmp_path / ".smartcard_list.txt"]
    (tmp_path / ".smartcard_list.txt").write_text(LIST, encoding="utf-8")
    assert find_list() == tmp_path / ".smartcard_list.txt"
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "smartcard_list.txt").write_text("3B 02 10 50\n\tVisa\n", encoding="utf-8")
    found = name_card(atr("3B 02 10 50"))
    assert found is not None and found[0] == tmp_path / "cache" / "smartcard_list.txt"
    assert [m.descriptions for m in found[1]] == [("Visa",)]


INSTALLED = Path("/usr/share/pcsc/smartcard_list.txt")
SAMPLES = ["3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A",
           "3B 8F 80 01 80 4F 0C A0 00 00 03 06 11 00 3B 00 00 00 00 42",
           "3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B", "3B 82 80 01 48 58 13", "3B 02 10 50",
           "3B 6A 00 00 00 31 C1 73 C8 40 00 00 90 00", "3B 8A 80 01 80 31 B8 73 84 01 E0 82 90 00 06"]
# Only ATRs the list knows: for an unknown one ATR_analysis downloads a newer list (wget) into the cache.


def _atr_analysis_descriptions(text: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run(["ATR_analysis", text], capture_output=True, text=True, env=env, timeout=60).stdout
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    tail = out.split("Possibly identified card", 1)[1].splitlines()[1:]
    return [line.strip() for line in tail if line.startswith("\t") and line.strip() != "NONE"]


def test_names_agree_with_atr_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pcsc-tools' own ATR_analysis on the installed list gives the same descriptions, in the same order."""
    if shutil.which("ATR_analysis") is None or not INSTALLED.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but pcsc-tools (ATR_analysis, smartcard_list.txt) is missing: .ci/setup-system.sh")
        pytest.skip("pcsc-tools is not installed")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    monkeypatch.setenv("HOME", env["HOME"])
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    for text in SAMPLES:
        found = name_card(atr(text))
        assert found is not None and found[0] == INSTALLED
        ours = [line for m in found[1] for line in m.descriptions]
        assert ours and ours == _atr_analysis_descriptions(text, env), text
    found = name_card(atr("3B 88 80 01 59 4B 54 2D 53 53 43 33 12"))  # our simulated card: in no list
    assert found == (INSTALLED, [])
