"""Options that mean what they say (issue 20 item 2, DESIGN.md "CLI conventions"): each command
offers only the common options it uses and refuses the others as a usage error; the group's
-q/-v; a group without a subcommand prints its help; prompts without a terminal; progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.common import COMMON_NAMES
from cli.main import cli
from tests.cli.pty_session import PtySession
from tests.cli.terminal import on_a_terminal
from tests.cli.test_cli_doc import _leaves

ROOT = Path(__file__).resolve().parents[2]
CARD = ("reader", "json", "trace")
TERMINAL = ("reader", "psam", "json", "trace", "now")

#: What each command uses of the common options (--debug, the traceback of an error, everywhere).
#: A command that opens a card takes --reader (and --trace, which records what crosses its reader);
#: --psam only where a PSAM takes part; --now only where the clock is read.
USES: dict[str, tuple[str, ...]] = {
    "ykt apdu": CARD, "ykt script": CARD, "ykt bench": CARD, "ykt shell": ("reader", "trace", "now"),
    "ykt card info": CARD, "ykt card history": CARD,
    "ykt card pin verify": CARD, "ykt card pin change": CARD, "ykt card pin unblock": CARD,
    "ykt purse balance": CARD, "ykt purse load": TERMINAL, "ykt purse purchase": TERMINAL,
    "ykt gate run": TERMINAL, "ykt validator run": TERMINAL,
    "ykt watch": ("reader", "json"),
    "ykt atr": ("json",), "ykt tlv": ("json",), "ykt readers": ("json",), "ykt trace show": ("json",),
    "ykt sim new": ("json",), "ykt sim psam": ("json",), "ykt sim show": ("json",), "ykt sim serve": ("json",),
    "ykt sim day": ("json",), "ykt clear": ("json",),
    "ykt journal show": ("json",), "ykt journal export": ("json", "now"), "ykt journal verify": ("json",),
    "ykt journal prune": ("json", "now"), "ykt journal migrate": ("json",), "ykt journal check": ("json",),
    "ykt denylist build": ("json",), "ykt denylist check": ("json",), "ykt denylist show": ("json",),
    "ykt demo": ("json", "now"),
    "ykt station run": ("json", "now"),
}
VALUE = {"reader": "sim", "psam": "sim?kind=psam", "trace": "t.jsonl", "now": "2026-11-28T08:00:00"}


def _offered(command: click.Command) -> set[str]:
    names = {name for param in command.params for name in getattr(param, "opts", ())}
    return {name for name in COMMON_NAMES if f"--{name}" in names}


def run(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner(env=env or None).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("path,command", _leaves(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_command_offers_the_common_options_it_uses(path: str, command: click.Command) -> None:
    assert path in USES, f"{path}: say in USES which common options it uses"
    assert _offered(command) == {*USES[path], "debug"}


@pytest.mark.parametrize("path,command", _leaves(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_common_option_a_command_does_not_use_is_a_usage_error(path: str, command: click.Command) -> None:
    for name in sorted(set(COMMON_NAMES) - _offered(command)):
        flag = [f"--{name}"] if name == "json" else [f"--{name}", VALUE[name]]
        code, out, err = run(*path.split()[1:], *flag)
        assert code == 2 and out == "", (path, name, err)
        assert f"No such option '--{name}'" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["demo", "--trace", "t.jsonl"], ["demo", "--reader", "pn532:/dev/ttyUSB0"],
    ["atr", "3B00", "--reader", "pcsc:0", "--now", "garbage"], ["purse", "balance", "--reader", "sim", "--psam", "bogus:zz"],
], ids=" ".join)
def test_the_issues_ignored_options_are_refused(args: list[str]) -> None:
    """Each of these exited 0 and ignored an option."""
    code, out, err = run(*args)
    assert code == 2 and out == "" and "No such option" in err


def _needs_a_reader(tmp_path: Path) -> dict[str, list[str]]:
    script = tmp_path / "s.apdu"
    script.write_text("00A4040000\n", encoding="utf-8")
    config = tmp_path / "bus.toml"
    config.write_text('[terminal]\nrole = "bus_validator"\n[fares]\nflat = 200\n', encoding="utf-8")
    gate = tmp_path / "gate.toml"
    gate.write_text('[terminal]\nrole = "metro_gate"\nstation = "S01"\n[fares]\nbands = [[6, 300]]\n'
                    '[fares.stations]\nS01 = 0.0\n', encoding="utf-8")
    journal = ["--journal", str(tmp_path / "j.db")]
    return {"ykt apdu": ["00A4040000"], "ykt script": [str(script)], "ykt bench": ["--count", "1"], "ykt shell": [],
            "ykt card info": [], "ykt card history": [], "ykt card pin verify": ["--pin", "123456"],
            "ykt card pin change": ["--old", "123456", "--new", "654321"],
            "ykt card pin unblock": ["--puk", "123456", "--new", "654321"], "ykt purse balance": [],
            "ykt purse load": ["--amount", "1", *journal], "ykt purse purchase": ["--amount", "1", *journal],
            "ykt gate run": ["--config", str(gate), "--max-taps", "1", *journal],
            "ykt validator run": ["--config", str(config), "--max-taps", "1", *journal],
            "ykt watch": ["--count", "1"]}


@pytest.mark.parametrize("option", ["reader", "psam"])
def test_every_reader_and_psam_offered_is_opened(option: str, tmp_path: Path) -> None:
    """A bogus URI fails with exit 3 wherever --reader or --psam is offered: the option is used."""
    calls = _needs_a_reader(tmp_path)
    paths = [path for path, uses in USES.items() if option in uses]
    assert paths and set(paths) <= set(calls)
    for path in paths:
        extra = ["--reader", "sim"] if option == "psam" else []
        code, _, err = run(*path.split()[1:], *calls[path], *extra, f"--{option}", "bogus:zz")
        assert code == 3 and "unknown reader scheme 'bogus'" in err, (path, err)


@pytest.mark.parametrize("path", ["ykt", "ykt card", "ykt card pin", "ykt purse", "ykt journal", "ykt sim",
                                  "ykt denylist", "ykt trace", "ykt gate", "ykt validator",
                                  "ykt station"])
def test_a_group_without_a_subcommand_prints_its_help(path: str) -> None:
    out = subprocess.run([sys.executable, "-m", "cli.main", *path.split()[1:]], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == ""
    shown = path.replace("ykt", "python -m cli.main", 1)
    assert out.stdout.startswith(f"Usage: {shown} [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in out.stdout


def test_quiet_silences_the_notes_and_keeps_the_errors(tmp_path: Path) -> None:
    code, out, err = run("purse", "purchase", "--reader", "sim", "--amount", "100")
    assert code == 0 and "journal: none kept" in err
    code, out2, err = run("-q", "purse", "purchase", "--reader", "sim", "--amount", "100")
    assert code == 0 and err == "" and out2.startswith("purchase: 100 fen")
    code, _, err = run("-q", "purse", "purchase", "--reader", "bogus:zz", "--amount", "100")
    assert code == 3 and err.startswith("error: unknown reader scheme")
    code, _, err = run("-q", "-v", "atr", "3B00")
    assert code == 2 and "do not go together" in err


def test_verbose_shows_each_exchange_masked(tmp_path: Path) -> None:
    code, out, err = run("-v", "card", "info", "--reader", "sim?seed=4", "--json")
    assert code == 0
    shown = err.splitlines()
    assert shown[0].startswith("> 00A4") and shown[1].startswith("< ") and shown[1].endswith(", sim:sample)")
    holder = json.loads(out)["name"].encode("gbk").hex().upper()
    assert holder not in err  # personal data masked as a trace masks it
    code, _, err = run("-v", "card", "pin", "verify", "--reader", "sim", "--pin", "123456")
    assert code == 0 and "0020" in err and "123456" not in err
    assert run("card", "info", "--reader", "sim")[2] == ""  # without -v: nothing on stderr


def test_journal_export_to_stdout_still_gives_its_summary(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    assert run("purse", "purchase", "--reader", "sim", "--amount", "120", "--journal", str(db))[0] == 0
    code, out, err = run("journal", "export", "--journal", str(db))
    assert code == 0 and json.loads(out.splitlines()[0])["type"] == "header"
    assert err.startswith("batch ") and "1 record(s), 120 fen (¥1.20) → stdout" in err
    code, out, err = run("journal", "export", "--journal", str(db), "--all", "--json")
    summary = json.loads(err)
    assert summary["count"] == 1 and summary["file"] is None and summary["total_amount"] == 120
    assert json.loads(out.splitlines()[0])["batch_id"] == summary["batch_id"]


def test_denylist_build_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    source = tmp_path / "serials.txt"
    source.write_text("".join(f"{i:020d}\n" for i in range(2000)), encoding="utf-8")
    code, seen, out = on_a_terminal(["denylist", "build", str(source), "--out", str(tmp_path / "a.bin"),
                                     "--list-version", "1"])
    assert code == 0 and b"reading serials" in seen and b"2000 serial(s)" in out
    code, out_text, err = run("denylist", "build", str(source), "--out", str(tmp_path / "b.bin"), "--list-version", "1")
    assert code == 0 and err == "" and "2000 serial(s)" in out_text
    code, seen, _ = on_a_terminal(["-q", "denylist", "build", str(source), "--out", str(tmp_path / "c.bin"),
                                   "--list-version", "1"])
    assert code == 0 and b"reading serials" not in seen


@pytest.mark.parametrize("args", [["card", "pin", "verify"], ["card", "pin", "change", "--old", "123456"],
                                  ["card", "pin", "unblock", "--new", "123456"]], ids=" ".join)
def test_a_pin_prompt_without_a_terminal_fails_in_one_line(args: list[str], tmp_path: Path) -> None:
    """No controlling terminal (a new session), stdin a pipe: getpass would warn and read stdin."""
    out = subprocess.run([sys.executable, "-W", "default", "-m", "cli.main", *args, "--reader", "sim"], cwd=ROOT,
                         input="123456\n", capture_output=True, text=True, timeout=60, start_new_session=True,
                         env={**os.environ, "YKT_STATE_DIR": str(tmp_path)})
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and "GetPassWarning" not in out.stderr
    assert out.stderr.startswith("error: no terminal to ask for the ") and ": give it with --" in out.stderr


def test_pin_change_asks_for_the_new_pin_twice(tmp_path: Path) -> None:
    """On a real terminal: a mistyped repeat is asked again, the PIN changes once both agree."""
    card = tmp_path / "card.json"
    assert run("sim", "new", "--out", str(card), "--seed", "1")[0] == 0
    args = ["card", "pin", "change", "--reader", f"sim:{card}", "--old", "123456"]
    with PtySession(args, {"YKT_STATE_DIR": str(tmp_path / "state")}, ROOT) as session:
        for prompt, typed in (("new PIN: ", "111111"), ("new PIN again: ", "222222"),
                              ("new PIN: ", "111111"), ("new PIN again: ", "111111")):
            session.expect(prompt)
            time.sleep(0.05)  # getpass turns echo off as it writes the prompt's last space
            session.send(typed + "\n")
        session.expect("PIN changed")
        assert session.wait() == 0
    assert "111111" not in session.text and "222222" not in session.text  # never echoed
    assert run("card", "pin", "verify", "--reader", f"sim:{card}", "--pin", "111111")[0] == 0


def test_every_trace_offered_records_the_exchanges(tmp_path: Path) -> None:
    """--trace FILE wherever it is offered: the file holds the card's exchanges afterwards."""
    from cardlib.trace import read_trace

    calls = _needs_a_reader(tmp_path)
    paths = [path for path, uses in USES.items() if "trace" in uses]
    for i, path in enumerate(paths):
        trace = tmp_path / f"t{i}.jsonl"
        result = CliRunner().invoke(cli, [*path.split()[1:], *calls[path], "--reader", "sim", "--trace", str(trace)],
                                    input="select purse\nexit\n")
        assert result.exit_code in (0, 4), (path, result.stderr)  # 4: the sample card's PUK is not 123456
        assert read_trace(trace).entries, path


def test_now_fixes_the_clock_where_it_is_offered(tmp_path: Path) -> None:
    now, journal = "2026-11-28T08:00:00+08:00", str(tmp_path / "j.db")
    for command in (["purse", "load", "--amount", "300"], ["purse", "purchase", "--amount", "100"]):
        code, out, _ = run(*command, "--reader", "sim", "--journal", journal, "--now", now, "--json")
        assert code == 0 and json.loads(out)["time"] == now
    code, _, err = run("journal", "export", "--journal", journal, "--now", now, "--json")
    assert code == 0 and json.loads(err)["count"] == 2
    code, out, _ = run("journal", "export", "--journal", journal, "--all", "--now", now)
    assert json.loads(out.splitlines()[0])["created"].startswith("2026-11-28T08:00:00")


def test_a_tap_script_brings_its_cards_so_reader_is_refused(tmp_path: Path) -> None:
    taps = tmp_path / "one.taps"
    taps.write_text('{"card": "a.json"}\n', encoding="utf-8")
    code, out, err = run("validator", "run", "--config", str(ROOT / "examples" / "bus-validator.toml"),
                         "--taps", str(taps), "--reader", "sim")
    assert code == 2 and out == "" and "--reader does not go with --taps" in err
