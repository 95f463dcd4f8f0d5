"""`ykt shell` in a real pseudo-terminal (TERM=dumb, ANSI stripped) and on a pipe, and the
transcript replayed by `ykt script`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.explain import explain
from simulators.image import save_image
from simulators.issuer import sample_card
from tests.cli.pty_session import PtySession, ykt_command

ROOT = Path(__file__).resolve().parents[2]
PIN = "123456"  # the sample card's PIN (simulators.issuer.CardProfile)


@pytest.fixture
def card_image(tmp_path: Path) -> Path:
    path = tmp_path / "card.json"
    save_image(sample_card(7), path)
    return path


def ykt(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ykt_command() + list(args), input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)


@pytest.mark.pty
def test_a_session_on_a_terminal_decodes_completes_recalls_and_keeps_no_pin(
        tmp_path: Path, card_image: Path) -> None:
    pristine = tmp_path / "pristine.json"
    shutil.copy(card_image, pristine)
    transcript = tmp_path / "session.ykt"
    saved = tmp_path / "saved.ykt"
    state = tmp_path / "state"
    with PtySession(["shell", "--reader", f"sim:{card_image}", "--transcript", str(transcript)],
                    {"YKT_STATE_DIR": str(state)}, ROOT) as term:
        assert "ATR 3B" in term.expect("ykt> ")

        term.send("sel\t p\t\r")  # tab completion of the command name, then of its argument
        shown = term.expect("ykt:purse> ")
        assert "select purse" in shown
        assert "< 9000  success" in shown
        assert "9F0C [30]" in shown and "(issuer discretionary data" in shown  # the FCI as a TLV tree

        term.send("balance\r")
        assert "balance 5000 fen (¥50.00)" in term.expect("ykt:purse> ")
        term.send("\x1b[A\r")  # up-arrow recalls the last command
        assert "balance 5000 fen (¥50.00)" in term.expect("ykt:purse> ")

        term.send("read 0x15\r")
        shown = term.expect("ykt:purse> ")
        assert "purse public data (0x15)" in shown and "valid_until  2034-12-31" in shown

        term.send("00 B0 97 00 3C\r")  # an APDU typed in hex, decoded as the file it reads
        assert "purse management data (0x17)" in term.expect("ykt:purse> ")

        term.send("6A\r")
        assert "error: command APDU too short" in term.expect("ykt:purse> ")  # one line, the session goes on

        term.send("verify-pin\r")
        term.expect("PIN: ")
        term.send(PIN + "\r")
        shown = term.expect("ykt:ssse> ")
        assert "> 00 20 00 00 03 ** ** **" in shown and "< 9000  success" in shown

        term.send("history\r")
        shown = term.expect("ykt:ssse> ")
        assert re.search(r"1\s+select purse", shown) and re.search(r"3\s+balance", shown)
        assert "verify-pin" in shown

        term.send("select half-typ\x03")  # Ctrl-C drops the line: a fresh prompt, the session goes on
        assert term.expect("ykt:ssse> ").endswith("^C\nykt:ssse> ")

        term.send(f"save {saved}\r")
        assert "transcript saved to" in term.expect("ykt:ssse> ")
        term.send("exit\r")
        assert term.wait() == 0

    assert PIN not in term.text  # no echo
    history = (state / "shell_history").read_text()  # in $YKT_STATE_DIR, beside the PSAMs' state
    assert "balance" in history and PIN not in history
    written = transcript.read_text()
    assert written == saved.read_text() + "# ykt> exit\n"
    assert PIN not in written and "# 0020000003****** => 9000" in written

    # the transcript replays: the same status words, APDU for APDU
    sws = re.findall(r"^[0-9A-F]+ => ([0-9A-F]{4})$", written, re.M)
    assert len(sws) == 6  # select, balance twice, 0x15, 0x17, select ssse (VERIFY is a comment)
    replay = ykt("script", str(transcript), "--reader", f"sim:{pristine}", "--json")
    assert replay.returncode == 0, replay.stderr
    assert [r["sw"] for r in json.loads(replay.stdout)] == sws


def test_the_history_lives_in_the_one_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$YKT_STATE_DIR first (as the simulated PSAMs' state), else $XDG_STATE_HOME/yikatong."""
    from cli.shell_cmd import history_path
    from simulators.reader import state_dir

    monkeypatch.setenv("YKT_STATE_DIR", str(tmp_path / "ykt"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert history_path() == tmp_path / "ykt" / "shell_history"
    assert history_path().parent == state_dir()
    monkeypatch.delenv("YKT_STATE_DIR")
    assert history_path() == tmp_path / "xdg" / "yikatong" / "shell_history"
    assert history_path().parent == state_dir()


def test_piped_commands_run_without_prompt_and_stop_at_the_first_error(card_image: Path) -> None:
    done = ykt("shell", "--reader", f"sim:{card_image}", stdin="# a comment\nhelp\nbalance\nread 0x18\n")
    assert done.returncode == 0, done.stderr
    assert re.search(r"verify-pin\s+VERIFY the PIN", done.stdout)  # help lists the commands
    assert "ykt>" not in done.stdout
    assert "balance 5000 fen (¥50.00)" in done.stdout
    assert "< 6A83  record not found" in done.stdout  # a fresh card has no transaction yet

    failed = ykt("shell", "--reader", f"sim:{card_image}", stdin="select purse\nselect nowhere\nbalance\n")
    assert failed.returncode == 2
    assert failed.stderr == "error: select 'nowhere': not purse, ssse, mf, a FID (3F00) or an AID in hex\n"
    assert "balance" not in failed.stdout  # stopped before

    unknown = ykt("shell", "--reader", f"sim:{card_image}", stdin="bogus\n")
    assert (unknown.returncode, unknown.stderr) == (
        2, "error: unknown command 'bogus' (help lists the commands; an APDU is hex)\n")

    no_pin = ykt("shell", "--reader", f"sim:{card_image}", stdin="verify-pin\n")
    assert no_pin.returncode == 2
    assert no_pin.stderr == "error: verify-pin needs a terminal: the PIN is read without echo\n"


def test_read_of_ssse_records_decodes_the_whole_file(card_image: Path) -> None:
    done = ykt("shell", "--reader", f"sim:{card_image}", stdin="select ssse\nread 05\n")
    assert done.returncode == 0, done.stderr
    assert "SSSE issuer data (EF05) record 1" in done.stdout
    assert re.search(r"expiry_date\s+2034-12-31", done.stdout)


def test_explain_decodes_a_transaction_record_with_the_cardlib_layout() -> None:
    from datetime import datetime

    from cardlib.clock import BEIJING
    from cardlib.pboc.files import TransactionRecord

    record = TransactionRecord(3, 250, 0x06, bytes.fromhex("000000000001"),
                               datetime(2026, 5, 1, 8, 30, tzinfo=BEIJING))
    lines = explain(bytes.fromhex("00B201C417"), record.encode(), 0x9000)
    assert lines[0] == "  transaction log (0x18) record 1"
    assert any(re.search(r"amount\s+250 fen \(¥2\.50\)", line) for line in lines)
    assert explain(bytes.fromhex("00B201C417"), b"", 0x6A83) == []


@settings(max_examples=300, deadline=None)
@given(ins=st.sampled_from([0xB0, 0xB2, 0xA4, 0x5C, 0x84]), p1=st.integers(0, 255), p2=st.integers(0, 255),
       cla=st.sampled_from([0x00, 0x80]), data=st.binary(max_size=80))
def test_explain_never_fails_on_what_a_card_may_answer(ins: int, p1: int, p2: int, cla: int, data: bytes) -> None:
    """Whatever a card answers, the shell shows it: explain gives lines, never an exception."""
    lines = explain(bytes((cla, ins, p1, p2, 0)), data, 0x9000)
    assert all(isinstance(line, str) and line.startswith("  ") for line in lines)


def test_a_transcript_never_replaces_a_card_image_or_a_journal(card_image: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    save_image(sample_card(8), other)
    before = other.read_bytes()
    onto_card = ykt("shell", "--reader", f"sim:{card_image}", "--transcript", str(other), stdin="balance\n")
    assert onto_card.returncode == 2 and onto_card.stderr.count("\n") == 1
    assert "it is a card image" in onto_card.stderr and other.read_bytes() == before
    saved = ykt("shell", "--reader", f"sim:{card_image}", stdin=f"balance\nsave {other}\n")
    assert saved.returncode == 2 and "it is a card image" in saved.stderr and other.read_bytes() == before
    fine = tmp_path / "session.txt"
    done = ykt("shell", "--reader", f"sim:{card_image}", stdin=f"balance\nsave {fine}\n")
    assert done.returncode == 0, done.stderr
    assert "805C000204" in fine.read_text().replace(" ", "")
