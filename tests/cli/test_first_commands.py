"""ykt atr / tlv / apdu / script / trace / readers through click, as a technician runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)

T0 = "py:tests.cards:t0_card"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("ykt ")


def test_atr_json() -> None:
    code, out, _ = run("atr", "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A", "--json")
    obj = json.loads(out)
    assert code == 0
    assert obj["protocols"] == [0, 1] and obj["contactless"] is True
    assert obj["tck_present"] is True and obj["tck_valid"] is True
    assert obj["historical_bytes"] == "804F0CA00000030603000100000000"
    _, out, _ = run("atr", "3B00", "--json")
    assert json.loads(out)["tck_valid"] is None


def test_atr_errors_are_one_line_exit_2() -> None:
    for bad in ("3BZZ", "3B8F", "3C00"):
        code, out, err = run("atr", bad)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert err.startswith("error: ")


def test_tlv_tree_and_json() -> None:
    code, out, _ = run("tlv", "6F108408A000000632010105A5049F0C0101")
    assert code == 0 and "  84 [8] A0 00 00 06 32 01 01 05" in out
    code, out, _ = run("tlv", "6F108408A000000632010105A5049F0C0101", "--json")
    top = json.loads(out)[0]
    assert top["tag"] == "6F" and top["children"][1]["children"][0] == {
        "tag": "9F0C", "length": 1, "value": "01", "name": "issuer discretionary data (PBOC: file 0x15)"}
    code, _, err = run("tlv", "00840101")
    assert code == 2 and "padding" in err
    assert run("tlv", "00840101", "--lenient")[0] == 0


def test_apdu_handles_61xx_and_6cxx() -> None:
    code, out, _ = run("apdu", "--reader", T0, "00A4040008A000000632010105", "00B0000000", "--json")
    assert code == 0
    select, read = json.loads(out)
    assert select["sw"] == "9000" and select["data"].startswith("6F12")
    assert [e["command"] for e in select["exchanges"]] == ["00A4040008A000000632010105", "00C0000016"]
    assert read["data"] == "0102030405060708" and read["exchanges"][1]["command"] == "00B0000008"
    assert {"command", "data", "sw", "meaning", "duration_ms"} <= set(select)


def test_apdu_raw_shows_raw_answers() -> None:
    code, out, _ = run("apdu", "--reader", T0, "--raw", "00A4040008A000000632010105", "00B0000000", "--json")
    assert code == 0
    assert [r["sw"] for r in json.loads(out)] == ["6116", "6C08"]
    code, out, _ = run("apdu", "--reader", T0, "00FF0000")
    assert code == 0 and "6D00" in out  # the SW is data


def test_apdu_bad_input_and_missing_card() -> None:
    assert run("apdu", "--reader", T0, "00A4")[0] == 2
    code, _, err = run("apdu", "--reader", "py:tests.cards:two_cards", "0084000008")
    assert code == 1 and "2 cards" in err
    code, _, err = run("apdu", "--reader", "nfc:x", "0084000008")
    assert code == 3 and "unknown reader scheme" in err


def test_trace_recorded_and_replayed(tmp_path: Path) -> None:
    trace = tmp_path / "session.jsonl"
    code, out, _ = run("apdu", "--reader", T0, "--trace", str(trace), "00A4040008A000000632010105", "--json")
    assert code == 0
    recorded = json.loads(out)
    code, out, _ = run("apdu", "--reader", f"trace:{trace}", "00A4040008A000000632010105", "--json")
    assert code == 0 and json.loads(out)[0]["data"] == recorded[0]["data"]
    code, _, err = run("apdu", "--reader", f"trace:{trace}", "0084000008")
    assert code == 1 and "differs" in err
    code, out, _ = run("trace", "show", str(trace), "--json")
    shown = json.loads(out)
    assert shown["atr"] == "3B00" and shown["exchanges"][1]["command"] == "00C0000016"
    code, out, _ = run("trace", "show", str(trace))
    assert code == 0 and "success" in out


def test_script_ours_and_mismatch(tmp_path: Path) -> None:
    ok = tmp_path / "ok.ykt"
    ok.write_text(
        "# select the purse\n"
        "00 A4 04 00 08 A0 00 00 06 32 01 01 05 => 6F12 * 9000\n"
        "echo reading\n"
        "00B0000000\n"
        "<= 0102030405060708 9000\n"
        "reset\n"
        "00CA000000 => 90XX\n"
    )
    code, out, err = run("script", str(ok), "--reader", T0)
    assert code == 0, err
    assert "reading" in out and "reset: ATR 3B 00" in out
    bad = tmp_path / "bad.ykt"
    bad.write_text("00B0000000 => 0102030405060709 9000\n00CA000000\n")
    code, _, err = run("script", str(bad), "--reader", T0)
    assert code == 1 and "line 1" in err
    broken = tmp_path / "broken.ykt"
    broken.write_text("00B0000000\n<= 90ZZ\n")
    code, _, err = run("script", str(broken), "--reader", T0)
    assert code == 2 and "line 2" in err


def test_scriptor_file(tmp_path: Path) -> None:
    path = tmp_path / "scriptor.txt"
    path.write_text("#!/usr/bin/env scriptor\nreset\n00 A4 04 00 08 A0 00 00 06 32 01 01 05\n00 84 00 00 08\nexit\n00 FF FF FF\n")
    code, out, _ = run("script", str(path), "--reader", "py:tests.cards:echo_card", "--json")
    assert code == 0
    assert [r["command"] for r in json.loads(out)] == ["00A4040008A000000632010105", "0084000008"]


def test_readers_lists_schemes() -> None:
    code, out, _ = run("readers", "--json")
    assert code == 0 and "sim" in json.loads(out)["schemes"]


def test_usage_errors_are_one_line_exit_2() -> None:
    for args, words in ((["nosuch"], "No such command 'nosuch'"), (["atr"], "Missing argument 'HEX'"),
                        (["demo", "--seed", "x"], "'x' is not a valid integer"),
                        (["bench", "--count", "0"], "0 is not in the range 1<=x<=10000000"),
                        (["atr", "3B00", "--colour"], "No such option '--colour'")):
        code, out, err = run(*args)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and words in err, err
    code, out, _ = run("atr", "--help")
    assert code == 0 and out.startswith("Usage: ") and "atr [OPTIONS] HEX" in out
