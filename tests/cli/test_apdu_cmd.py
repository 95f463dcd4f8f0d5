"""`ykt apdu`: T=0 handling folded in, --raw, JSON shape, exit codes, --trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)

T0 = "py:tests.cards:t0_card"
SELECT = "00A4040008A000000632010105"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_folds_get_response_and_6cxx() -> None:
    code, out, err = run("apdu", "--reader", T0, SELECT, "00B0000000", "00CA000000", "--json")
    assert code == 0, err
    select, read, long = json.loads(out)
    assert set(select) == {"command", "data", "sw", "meaning", "duration_ms", "exchanges"}
    assert select["command"] == SELECT and select["sw"] == "9000" and "success" in select["meaning"]
    assert select["data"] == "6F128408A000000632010105A50688010B5F2D027A68"
    assert [(e["command"], e["response"][-4:]) for e in select["exchanges"]] == [(SELECT, "6116"), ("00C0000016", "9000")]
    assert [e["command"] for e in read["exchanges"]] == ["00B0000000", "00B0000008"]
    assert read["exchanges"][0]["response"] == "6C08" and read["data"] == "0102030405060708"
    assert len(bytes.fromhex(long["data"])) == 300 and len(long["exchanges"]) == 3
    assert all(isinstance(r["duration_ms"], float) for r in (select, read, long))


def test_raw_shows_what_the_card_sent() -> None:
    code, out, _ = run("apdu", "--reader", T0, "--raw", SELECT, "00B0000000", "--json")
    assert code == 0
    select, read = json.loads(out)
    assert (select["sw"], select["data"], len(select["exchanges"])) == ("6116", "", 1)
    assert (read["sw"], len(read["exchanges"])) == ("6C08", 1)


def test_human_listing() -> None:
    code, out, _ = run("apdu", "--reader", T0, "00 A4 04 00 08 A0 00 00 06 32 01 01 05")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "> 00 A4 04 00 08 A0 00 00 06 32 01 01 05"
    assert lines[1] == "  (then 00 C0 00 00 16)"
    assert lines[2].startswith("< 6F 12 84 08") and lines[3].startswith("< 9000  ")
    code, out, _ = run("apdu", "--reader", T0, "--raw", "00B0000000")
    assert code == 0 and out.splitlines()[-1].startswith("< 6C08")


def test_any_sw_exits_0() -> None:
    code, out, _ = run("apdu", "--reader", T0, "00FF0000", "--json")
    assert code == 0 and json.loads(out)[0]["sw"] == "6D00"


def test_errors_one_line_with_exit_codes() -> None:
    for args, exit_code, words in [
        (("00A4",), 2, "too short"),
        (("00A40400080102",), 2, "Lc mismatch"),
        (("00ZZ0000",), 2, "not a hex digit"),
        (("--reader", "py:tests.cards:two_cards", "0084000008"), 1, "2 cards"),
        (("--reader", "nfc:x", "0084000008"), 3, "unknown reader scheme"),
        (("--reader", "py:tests.cards:nothing", "0084000008"), 3, "no 'nothing'"),
    ]:
        reader = () if "--reader" in args else ("--reader", T0)
        code, out, err = run("apdu", *reader, *args)
        assert code == exit_code and words in err, (args, err)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and out == ""


def test_trace_recorded_then_replayed(tmp_path: Path) -> None:
    trace = tmp_path / "session.jsonl"
    code, out, _ = run("apdu", "--reader", T0, "--trace", str(trace), SELECT, "00B0000000", "--json")
    assert code == 0
    live = json.loads(out)
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert lines[0] == {"atr": "3B00", "reader": "py:tests.cards:t0_card"}
    assert [x["command"] for x in lines[1:]] == [SELECT, "00C0000016", "00B0000000", "00B0000008"]
    code, out, _ = run("apdu", "--reader", f"trace:{trace}", SELECT, "00B0000000", "--json")
    assert code == 0
    assert [(r["data"], r["sw"]) for r in json.loads(out)] == [(r["data"], r["sw"]) for r in live]


def test_replay_mismatch_exits_1(tmp_path: Path) -> None:
    trace = tmp_path / "session.jsonl"
    assert run("apdu", "--reader", T0, "--trace", str(trace), SELECT)[0] == 0
    code, out, err = run("apdu", "--reader", f"trace:{trace}", "0084000008")
    assert code == 1 and out == ""
    assert "trace entry 1 (line 2) differs: expected 00A4040008A000000632010105, got 0084000008" in err


def test_trace_masks_pin_and_holder_data(tmp_path: Path) -> None:
    from tests.cards import HOLDER_NAME

    trace = tmp_path / "t.jsonl"
    code, _, _ = run("apdu", "--reader", "py:tests.cards:holder_card?t0=1", "--trace", str(trace),
                     "00A4020002EF06", "00B2090000", "0020000003123456")
    assert code == 0
    text = trace.read_text()
    assert HOLDER_NAME.hex().upper() not in text and "123456" not in text
    assert '"0020000003******"' in text
    # the masked trace still replays: masked bytes match any PIN
    code, out, _ = run("apdu", "--reader", f"trace:{trace}", "00A4020002EF06", "00B2090000", "0020000003999999", "--json")
    assert code == 0 and [r["sw"] for r in json.loads(out)] == ["9000", "9000", "9000"]
