"""`ykt script`: our format (expectations, wildcards, reset, echo) and scriptor files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cardlib.errors import FormatError
from cardlib.script import Expectation, parse_script
from cli.main import cli

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)

T0 = "py:tests.cards:t0_card"
ECHO = "py:tests.cards:echo_card"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def script(tmp_path: Path, text: str, name: str = "s.ykt") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_parse_steps() -> None:
    steps = parse_script(
        "# comment\n"
        "00 A4 04 00 08 A0 00 00 06 32 01 01 05 => 6F12 * 9000   # trailing comment\n"
        "echo  hello world\n"
        "\n"
        "00B0000000\n"
        "<= 0102030405060708 9000\n"
        "0084000008\n"
        "> 61XX\n"
        "RESET\n"
        "00CA000000 => 6F12...90??\n"
        "00CA000000\n"
    )
    assert [(s.kind, s.line) for s in steps] == [
        ("apdu", 2), ("echo", 3), ("apdu", 5), ("apdu", 7), ("reset", 9), ("apdu", 10), ("apdu", 11)]
    assert steps[0].command is not None and steps[0].command.hex() == "00A4040008A000000632010105"
    assert steps[0].expect == Expectation("6F12*9000", 2)
    assert steps[1].text == "hello world"
    assert steps[2].expect == Expectation("01020304050607089000", 6)
    assert steps[3].expect == Expectation("61XX", 8)
    assert steps[5].expect == Expectation("6F12*90??", 10)
    assert steps[6].expect is None


@pytest.mark.parametrize(
    ("pattern", "response", "ok"),
    [
        ("9000", "9000", True),
        ("9000", "01029000", True),  # a status word alone ignores the data
        ("61XX", "6116", True),
        ("61??", "6C08", False),
        ("6X8?", "6A82", True),
        ("01029000", "01039000", False),
        ("0102XX00", "0102FF00", True),
        ("0102", "01029000", False),  # a whole response must be whole
        ("6F*9000", "6F12AB9000", True),
        ("6F*9000", "6F9000", True),
        ("6F*9000", "6F12AB6A82", False),
        ("*6A82", "6A82", True),
        ("010203*", "01029000", False),
    ],
)
def test_expectations(pattern: str, response: str, ok: bool) -> None:
    assert Expectation(pattern, 1).matches(bytes.fromhex(response)) is ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("00A4\n", "line 1: command APDU too short"),
        ("00A4040G\n", "line 1: APDU: .G. is not a hex digit"),
        ("00B0000000\n\n# x\n00A404000201\n", "line 4: .*Lc mismatch"),
        ("00B0000000 => 90ZZ\n", "line 1: bad expectation"),
        ("00B0000000\n<= 900\n", "line 2: bad expectation"),
        ("00B0000000 => 90*00*\n", "line 1: bad expectation"),
        ("<= 9000\n", "line 1: expectation without an APDU"),
        ("00B0000000 => 9000\n<= 9000\n", "line 2: expectation without an APDU"),
        ("reset\n> 9000\n", "line 2: expectation without an APDU"),
        ("00B0000000 =>\n", "line 1: bad expectation"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_script(text)


def test_runs_with_t0_handling_reset_and_echo(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        "# select the purse\n"
        "00 A4 04 00 08 A0 00 00 06 32 01 01 05 => 6F12 * 9000\n"
        "echo reading the file\n"
        "00B0000000\n"
        "<= 0102030405060708 9000\n"
        "reset\n"
        "00CA000000 => 90XX\n"
        "00FF0000\n",  # no expectation: any answer goes
    )
    code, out, err = run("script", path, "--reader", T0)
    assert code == 0, err
    assert "reading the file" in out and "reset: ATR 3B 00" in out
    assert "> 00 B0 00 00 00" in out and "< 01 02 03 04 05 06 07 08 90 00" in out


def test_json_results(tmp_path: Path) -> None:
    path = script(tmp_path, "00B0000000 => 9000\necho not in json\n00FF0000\n")
    code, out, _ = run("script", path, "--reader", T0, "--json")
    assert code == 0
    first, second = json.loads(out)
    assert first == {"line": 1, "command": "00B0000000", "response": "01020304050607089000",
                     "sw": "9000", "meaning": first["meaning"], "ok": True}
    assert second["line"] == 3 and second["sw"] == "6D00" and second["ok"] is True


def test_mismatch_stops_with_exit_1_naming_the_line(tmp_path: Path) -> None:
    path = script(tmp_path, "# header\n00B0000000 => 0102030405060709 9000\n00CA000000\n")
    code, out, err = run("script", path, "--reader", T0)
    assert code == 1
    assert err.startswith("error: line 2: expected 01020304050607099000, card answered 01020304050607089000")
    assert "00 CA" not in out  # stopped at the mismatch
    path = script(tmp_path, "00B0000000\n> 6CXX\n", "next.ykt")
    code, out, err = run("script", path, "--reader", T0, "--json")
    assert code == 1 and "line 1 (expectation on line 2)" in err
    assert json.loads(out)[0]["ok"] is False


def test_raw_option_keeps_61xx(tmp_path: Path) -> None:
    path = script(tmp_path, "00A4040008A000000632010105 => 6116\n")
    assert run("script", path, "--reader", T0, "--raw")[0] == 0
    assert run("script", path, "--reader", T0)[0] == 1


def test_bad_script_exit_2(tmp_path: Path) -> None:
    path = script(tmp_path, "00B0000000\n<= 90ZZ\n")
    code, _, err = run("script", path, "--reader", T0)
    assert code == 2 and "line 2" in err
    code, _, err = run("script", str(tmp_path / "missing.ykt"), "--reader", T0)
    assert code == 2 and "cannot read script" in err


def test_scriptor_file_runs(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        "#!/usr/bin/env scriptor\n"
        "# a pcsc-tools scriptor file\n"
        "reset\n"
        "00 A4 04 00 08 A0 00 00 06 32 01 01 05\n"
        "00 84 00 00 08\n"
        "exit\n"
        "00 FF FF FF\n",
        "scriptor.txt",
    )
    code, out, _ = run("script", path, "--reader", ECHO, "--json")
    assert code == 0
    assert [r["command"] for r in json.loads(out)] == ["00A4040008A000000632010105", "0084000008"]
    assert json.loads(out)[1]["response"] == "01020304050607089000"


def test_reset_really_resets_the_card(tmp_path: Path) -> None:
    # the T=0 card forgets a pending GET RESPONSE on reset: the raw channel sees 6985 after it
    path = script(tmp_path, "00A4040008A000000632010105 => 6116\nreset\n00C0000016 => 6985\n")
    code, _, err = run("script", path, "--reader", T0, "--raw")
    assert code == 0, err


def test_script_traced_and_replayed(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    path = script(tmp_path, "00B0000000 => 9000\nreset\n00CA000000 => 9000\n")
    assert run("script", path, "--reader", T0, "--trace", str(trace))[0] == 0
    assert trace.read_text().count('"atr"') == 2  # one header per connect
    code, _, err = run("script", path, "--reader", f"trace:{trace}")
    assert code == 0, err


def test_dash_reads_the_script_from_stdin() -> None:
    """`ykt script -` as scriptor reads stdin: a real pipe into a real process."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    piped = "00B0000000 => 9000\n# a comment\nreset\n00CA000000\n"
    done = subprocess.run([sys.executable, "-m", "cli.main", "script", "-", "--reader", T0, "--json"],
                          input=piped, capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [(r["line"], r["command"]) for r in json.loads(done.stdout)] == [
        (1, "00B0000000"), (4, "00CA000000")]
    bad = subprocess.run([sys.executable, "-m", "cli.main", "script", "-", "--reader", T0],
                         input="00B0000000\n<= 90ZZ\n", capture_output=True, text=True, cwd=root, timeout=60)
    assert (bad.returncode, bad.stderr) == (2, "error: line 2: bad expectation '90ZZ' (hex digits, X/? wildcards, one *)\n")
