"""`ykt trace show`: a readable listing with SW meanings, JSON, masked bytes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


TRACE = (
    '{"atr": "3B00", "reader": "card"}\n'
    '{"t": "2026-11-28T08:15:00+08:00", "reader": "card", "command": "0020000003******", '
    '"response": "63C2", "duration_ms": 1.25}\n'
    '{"t": "2026-11-28T08:15:01+08:00", "reader": "psam", "command": "00B0960006", '
    '"response": "0000000000019000", "duration_ms": 0.5}\n'
)


def test_listing_with_meanings(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(TRACE)
    code, out, _ = run("trace", "show", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "ATR 3B 00"
    assert lines[1] == "   1 > 00 20 00 00 03 ** ** ** [card]"
    assert lines[2].startswith("     < 63 C2  ") and "2 tries left" in lines[2] and "(1.250 ms)" in lines[2]
    assert lines[4].startswith("     < 00 00 00 00 00 01 90 00  ") and "success" in lines[4]


def test_json(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(TRACE)
    code, out, _ = run("trace", "show", str(path), "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["atr"] == "3B00"
    pin, read = shown["exchanges"]
    assert pin == {"command": "0020000003******", "response": "63C2", "sw": "63C2", "meaning": pin["meaning"],
                   "duration_ms": 1.25, "t": "2026-11-28T08:15:00+08:00", "reader": "card"}
    assert "2 tries left" in pin["meaning"]
    assert read["sw"] == "9000" and read["reader"] == "psam"


def test_recorded_trace_shown(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    assert run("apdu", "--reader", "py:tests.cards:t0_card", "--trace", str(trace), "00B0000000")[0] == 0
    code, out, _ = run("trace", "show", str(trace), "--json")
    assert code == 0
    assert [e["command"] for e in json.loads(out)["exchanges"]] == ["00B0000000", "00B0000008"]
    assert json.loads(out)["exchanges"][0]["sw"] == "6C08"


def test_broken_trace_exit_2_with_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"atr": "3B00"}\n{"command": "00B0"}\n')
    code, out, err = run("trace", "show", str(path))
    assert code == 2 and out == "" and err.strip() == "error: trace line 2: missing 'response'"
    code, _, err = run("trace", "show", str(tmp_path / "none.jsonl"))
    assert code == 2 and "cannot read trace" in err
