"""`ykt atr` and `ykt tlv` through click: tables, trees, JSON fields, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli

CONTACTLESS = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"
FCI = "6F168408A000000632010105A50A9F0C0701020304050607"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_atr_table() -> None:
    code, out, err = run("atr", "3B 95 13 81 01 80 73 FF 01 00 0B")
    assert code == 0 and err == ""
    rows = {line.split("  ", 1)[0].strip(): line.split("  ", 1)[1].strip() for line in out.splitlines()}
    assert rows["ATR"] == "3B 95 13 81 01 80 73 FF 01 00 0B"
    assert rows["TA1"] == "13" and rows["protocols"] == "T=1"
    assert rows["historical bytes"] == "80 73 FF 01 00"
    assert rows["TCK"] == "0B (valid)"


def test_atr_split_arguments_and_colons() -> None:
    code, out, _ = run("atr", "3B:80", "80", "01", "01", "--json")
    assert code == 0 and json.loads(out)["atr"] == "3B80800101"


def test_atr_json_fields() -> None:
    code, out, _ = run("atr", CONTACTLESS, "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["atr"] == CONTACTLESS.replace(" ", "")
    assert obj["convention"] == "direct" and obj["t0"] == 0x8F
    assert obj["protocols"] == [0, 1] and obj["contactless"] is True
    assert obj["historical_bytes"] == "804F0CA00000030603000100000000"
    assert obj["tck"] == "6A" and obj["tck_present"] is True and obj["tck_valid"] is True
    assert obj["fi"] == 372 and obj["di"] == 1 and obj["f_max_mhz"] == 5.0 and obj["guard_time"] == 0
    assert obj["interface_bytes"] == [
        {"index": 1, "ta": None, "tb": None, "tc": None, "td": 0x80},
        {"index": 2, "ta": None, "tb": None, "tc": None, "td": 0x01},
        {"index": 3, "ta": None, "tb": None, "tc": None, "td": None},
    ]


def test_atr_t0_only_and_bad_tck() -> None:
    obj = json.loads(run("atr", "3B00", "--json")[1])
    assert obj["tck"] is None and obj["tck_present"] is False and obj["tck_valid"] is None
    assert obj["protocols"] == [0] and obj["contactless"] is False
    code, out, _ = run("atr", "3B80800102", "--json")
    assert code == 0 and json.loads(out)["tck_valid"] is False
    code, out, _ = run("atr", "3B80800102")
    assert code == 0 and "02 (INVALID)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("atr", "3BZZ"), "hex"),
        (("atr", "3B8"), "hex"),
        (("atr", "3B8F"), "TD1 announced but missing"),
        (("atr", "3B0F0102"), "15 historical bytes announced, 2 left"),
        (("atr", "3C00"), "bad TS 3C"),
        (("atr", "3B0000"), "trailing"),
        (("atr", "3B"), "too short"),
        (("tlv", "6F0584"), "length 5 beyond"),
        (("tlv", "00840101"), "padding byte 00 at offset 0"),
        (("tlv", "8480"), "indefinite length"),
        (("tlv", "GG"), "hex"),
    ],
)
def test_errors_are_one_line_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert "Traceback" not in err


def test_tlv_tree() -> None:
    code, out, _ = run("tlv", FCI)
    assert code == 0
    assert out.splitlines() == [
        "6F [22]  (file control information (FCI))",
        "  84 [8] A0 00 00 06 32 01 01 05  (DF name)",
        "  A5 [10]  (FCI proprietary template)",
        "    9F0C [7] 01 02 03 04 05 06 07  (issuer discretionary data (PBOC: file 0x15))",
    ]


def test_tlv_json_nested() -> None:
    code, out, _ = run("tlv", FCI, "8801" "15", "--json")
    assert code == 0
    fci, sfi = json.loads(out)
    assert fci["tag"] == "6F" and fci["length"] == 22 and "value" not in fci
    assert fci["children"][1]["tag"] == "A5" and fci["children"][1]["length"] == 10
    assert fci["children"][1]["children"][0]["value"] == "01020304050607"
    assert sfi == {"tag": "88", "length": 1, "value": "15", "name": "short file identifier (SFI)"}


def test_tlv_lenient_skips_padding() -> None:
    code, out, _ = run("tlv", "00 84 01 01 FF FF", "--lenient", "--json")
    assert code == 0 and json.loads(out) == [
        {"tag": "84", "length": 1, "value": "01", "name": "DF name"}]
