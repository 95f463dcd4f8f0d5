"""Files and input that are not what they seem (issue 16): each test is one attempt of a
careless or hostile user, and what it must now get. docs/reliability.md, "Hostile and
careless use", lists them with the number of attempts each test makes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cardlib.channel import Channel, Exchange
from cardlib.clock import BEIJING, Clock
from cardlib.readers.pyhost import HostedReader
from cardlib.trace import TraceRecorder
from cli.main import cli
from simulators.image import load_card
from simulators.issuer import sample_card
from terminal import auth
from terminal.decision import Reason
from terminal.journal import SCHEMA_VERSION, Journal
from tests.cli.test_journal_cmd import make_journal
from tests.terminal.test_loop import flat_fare_validator

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
NOW = "2026-11-28T08:00:00+08:00"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_image(path: Path, balance: int = 100, seed: int = 1) -> Path:
    code, _, err = run("sim", "new", "--out", str(path), "--balance", str(balance), "--seed", str(seed))
    assert code == 0, err
    return path


def deny_list(path: Path) -> Path:
    src = path.with_suffix(".txt")
    src.write_text("33030000000000000009\n", encoding="utf-8")
    code, _, err = run("denylist", "build", str(src), "--out", str(path), "--list-version", "1")
    assert code == 0, err
    return path


def batch(tmp_path: Path) -> Path:
    db, out = tmp_path / "for-batch.db", tmp_path / "batch.jsonl"
    make_journal(db)
    code, _, err = run("journal", "export", "--journal", str(db), "--out", str(out))
    assert code == 0, err
    return out


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


# --- 1. outputs that destroy inputs -------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["absolute", "relative", "dotted", "link"])
def test_a_trace_onto_the_journal_is_refused_however_it_is_spelled(in_tmp: Path, spelling: str) -> None:
    db = in_tmp / "j.db"
    make_journal(db)
    (in_tmp / "sub").mkdir()
    (in_tmp / "link.jsonl").symlink_to(db)
    path = {"absolute": str(db), "relative": "j.db", "dotted": "sub/../j.db", "link": "link.jsonl"}[spelling]
    before = digest(db)
    code, _, err = run("purse", "balance", "--reader", "sim", "--trace", path)
    assert code == 2 and one_line(err) and "journal" in err, err
    assert digest(db) == before
    with Journal(db, readonly=True) as j:
        assert len(j.records()) == 5  # all five records are still there


@pytest.mark.parametrize("kind", ["card image", "deny list", "batch", "other file"])
def test_a_trace_onto_a_card_image_deny_list_batch_or_any_other_file_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "card image":
        target = card_image(tmp_path / "c.json")
    elif kind == "deny list":
        target = deny_list(tmp_path / "deny.bin")
    elif kind == "batch":
        target = batch(tmp_path)
    else:
        target = tmp_path / "notes.txt"
        target.write_text("the holder's notes\n", encoding="utf-8")
    before = digest(target)
    code, _, err = run("purse", "balance", "--reader", "sim", "--trace", str(target))
    assert code == 2 and one_line(err) and "not a trace" in err, err
    assert digest(target) == before


def test_a_trace_onto_an_earlier_trace_an_empty_file_or_dev_null_is_written(tmp_path: Path) -> None:
    earlier = tmp_path / "t.jsonl"
    assert run("purse", "balance", "--reader", "sim", "--trace", str(earlier))[0] == 0
    assert run("purse", "balance", "--reader", "sim", "--trace", str(earlier))[0] == 0
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    assert run("purse", "balance", "--reader", "sim", "--trace", str(empty))[0] == 0
    assert empty.stat().st_size > 0
    assert run("purse", "balance", "--reader", "sim", "--trace", os.devnull)[0] == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_sim_new_does_not_replace_a_card_without_force(tmp_path: Path) -> None:
    keep = card_image(tmp_path / "keep.json", balance=100)
    code, _, err = run("sim", "new", "--out", str(keep), "--balance", "9999")
    assert code == 2 and one_line(err) and "--force" in err, err
    assert load_card(keep, persist=False).balance == 100  # type: ignore[union-attr]
    code, _, err = run("sim", "new", "--out", str(keep), "--balance", "9999", "--force")
    assert code == 0, err
    assert load_card(keep, persist=False).balance == 9999  # type: ignore[union-attr]


def test_deny_lists_and_batches_are_replaced_only_with_force_and_a_journal_never(tmp_path: Path) -> None:
    deny = deny_list(tmp_path / "deny.bin")
    src = tmp_path / "new.txt"
    src.write_text("33030000000000000001\n", encoding="utf-8")
    before = digest(deny)
    code, _, err = run("denylist", "build", str(src), "--out", str(deny), "--list-version", "2")
    assert code == 2 and one_line(err) and "--force" in err and digest(deny) == before, err
    assert run("denylist", "build", str(src), "--out", str(deny), "--list-version", "2", "--force")[0] == 0
    old = batch(tmp_path)
    db = tmp_path / "j.db"
    make_journal(db)
    before = digest(old)
    code, _, err = run("journal", "export", "--journal", str(db), "--out", str(old))
    assert code == 2 and one_line(err) and digest(old) == before, err
    with Journal(db, readonly=True) as j:
        assert j.batches() == []  # refused before the batch was committed: nothing left unwritten
    before = digest(db)
    code, _, err = run("denylist", "build", str(src), "--out", str(db), "--list-version", "3", "--force")
    assert code == 2 and "never replaced" in err and digest(db) == before, err


# --- 2. temporary files and links -----------------------------------------------------------------


def test_a_link_at_the_old_temporary_name_does_not_redirect_export_or_denylist_build(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    db = tmp_path / "j.db"
    make_journal(db)
    out = tmp_path / "batch.jsonl"
    Path(f"{out}.tmp").symlink_to(victim)
    assert run("journal", "export", "--journal", str(db), "--out", str(out))[0] == 0
    deny = tmp_path / "deny.bin"
    Path(f"{deny}.tmp").symlink_to(victim)
    src = tmp_path / "s.txt"
    src.write_text("33030000000000000009\n", encoding="utf-8")
    assert run("denylist", "build", str(src), "--out", str(deny), "--list-version", "1")[0] == 0
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert out.read_text(encoding="utf-8").startswith('{"type": "header"')
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("command", ["denylist", "export", "sim"])
def test_nothing_is_renamed_over_a_fifo(tmp_path: Path, command: str) -> None:
    """A device node or FIFO at --out stays what it is (a FIFO stands in for /dev/null, which
    a test run as root must not risk)."""
    target = tmp_path / "out"
    os.mkfifo(target)
    if command == "denylist":
        src = tmp_path / "s.txt"
        src.write_text("33030000000000000009\n", encoding="utf-8")
        code, _, err = run("denylist", "build", str(src), "--out", str(target), "--list-version", "1")
    elif command == "export":
        make_journal(tmp_path / "j.db")
        code, _, err = run("journal", "export", "--journal", str(tmp_path / "j.db"), "--out", str(target))
    else:
        code, _, err = run("sim", "new", "--out", str(target))
    assert code == 2 and one_line(err) and "FIFO" in err, err
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


# --- 3. inputs that never end ------------------------------------------------------------------------


def _ykt(args: list[str], cwd: Path, timeout: float = 30, memory: int | None = None) -> subprocess.CompletedProcess[str]:
    """A separate process with a deadline: on old code these attempts hang or eat memory."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit, check=False)


FIFO_INPUTS = {
    "card image (sim show)": ["sim", "show", "FIFO"],
    "card image (reader)": ["purse", "balance", "--reader", "sim:FIFO"],
    "configuration": ["validator", "run", "--config", "FIFO", "--taps", "FIFO", "--journal", "j.db"],
    "script": ["script", "FIFO"],
    "trace (show)": ["trace", "show", "FIFO"],
    "trace (reader)": ["purse", "balance", "--reader", "trace:FIFO"],
    "deny list": ["denylist", "check", "FIFO", "33030000000000000009"],
    "serial list": ["denylist", "build", "FIFO", "--out", "d.bin", "--list-version", "1"],
    "batch": ["journal", "verify", "--batch", "FIFO"],
    "key file": ["sim", "new", "--out", "c.json", "--issuer-keys", "FIFO"],
    "journal": ["journal", "show", "--journal", "FIFO"],
}


def test_a_fifo_as_any_input_is_refused_at_once_with_one_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "FIFO")
    for what, args in FIFO_INPUTS.items():
        try:
            done = _ykt(args, tmp_path, timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{what}: a FIFO hung the command")
        assert done.returncode == 2 and one_line(done.stderr) and "FIFO" in done.stderr, (what, done.stderr)


@pytest.mark.parametrize("args", [["sim", "show", "/dev/zero"], ["purse", "balance", "--reader", "sim:/dev/zero"],
                                  ["sim", "new", "--out", "c.json", "--issuer-keys", "/dev/zero"],
                                  ["validator", "run", "--config", "/dev/zero", "--taps", "t", "--journal", "j.db"]])
def test_dev_zero_as_a_card_image_key_file_or_configuration_is_refused_without_reading(
        tmp_path: Path, args: list[str]) -> None:
    done = _ykt(args, tmp_path, memory=1 << 30)  # old code read until this limit stopped it
    assert done.returncode == 2 and one_line(done.stderr) and "character device" in done.stderr, done.stderr


def test_an_oversized_card_image_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(64 << 20)  # sparse: 64 MiB of nothing
    code, _, err = run("sim", "show", str(big))
    assert code == 2 and one_line(err) and "over the limit" in err, err


# --- 4. code in configuration ------------------------------------------------------------------------


def test_a_py_reader_in_a_configuration_or_on_the_command_line_runs_no_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YKT_ALLOW_PY", raising=False)
    mark = tmp_path / "MARK"
    card_image(tmp_path / "a.json")
    (tmp_path / "one.taps").write_text('{"card": "a.json"}\n', encoding="utf-8")
    config = tmp_path / "bus.toml"
    config.write_text('[terminal]\nrole = "bus_validator"\n[psam]\n'
                      f'reader = "py:subprocess:getoutput?cmd=touch {mark}"\n', encoding="utf-8")
    code, _, err = run("validator", "run", "--config", str(config), "--taps", str(tmp_path / "one.taps"),
                       "--journal", str(tmp_path / "j.db"), "--now", NOW)
    assert code == 3 and one_line(err) and "YKT_ALLOW_PY" in err, err
    code, _, err = run("purse", "balance", "--reader", f"py:os:system?command=touch {mark}")
    assert code == 3 and one_line(err) and "not allowed" in err, err
    assert not mark.exists()


def test_a_py_reader_runs_when_its_module_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YKT_ALLOW_PY", "tests.cards")
    assert run("apdu", "--reader", "py:tests.cards:EchoCard", "00B0000004")[0] == 0
    monkeypatch.setenv("YKT_ALLOW_PY", "tests.cardsx, no_such_module_here")
    code, _, err = run("apdu", "--reader", "py:tests.cards:EchoCard", "00B0000004")
    assert code == 3 and "not allowed" in err  # a name is a module or a package, not a prefix of text
    code, _, err = run("apdu", "--reader", "py:no_such_module_here:x", "00B0000004")
    assert code == 3 and "cannot import" in err


# --- 5. one clean line for every bad input -----------------------------------------------------------


def _bad_journal(path: Path, column: str, value: object) -> Path:
    make_journal(path)
    con = sqlite3.connect(path)
    con.execute(f"UPDATE records SET {column}=? WHERE id=1", (value,))  # the test's own names
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(("column", "value"), [("tx_time", "yesterday"), ("tx_time", "2026-11-28T08:00:00"),
                                               ("extra", "{not json"), ("extra", "[1]"), ("amount", "lots"),
                                               ("amount", 1.5), ("app_serial", "text")])
def test_a_journal_with_a_bad_stored_value_gives_one_line(tmp_path: Path, column: str, value: object) -> None:
    db = _bad_journal(tmp_path / "j.db", column, value)
    for args in (["journal", "show", "--journal", str(db)], ["journal", "show", "--journal", str(db), "--json"],
                 ["journal", "verify", "--journal", str(db)]):
        code, _, err = run(*args)
        assert code == 2 and one_line(err) and "journal record 1" in err, (args, err)


def _validator(tmp_path: Path, config: str, taps: str = '{"card": "a.json"}\n', *extra: str) -> tuple[int, str, str]:
    if not (tmp_path / "a.json").exists():
        card_image(tmp_path / "a.json", balance=5000)
    (tmp_path / "bus.toml").write_text('[terminal]\nrole = "bus_validator"\n' + config, encoding="utf-8")
    (tmp_path / "t.taps").write_text(taps, encoding="utf-8")
    return run("validator", "run", "--config", str(tmp_path / "bus.toml"), "--taps", str(tmp_path / "t.taps"),
               "--journal", str(tmp_path / "j.db"), *extra)


@pytest.mark.parametrize("config", [
    "[fares]\nflat = 4294967296\n",
    '[paths]\ndenylist = "."\n',
    "[fares]\nstations = { A = inf }\n",
    "[fares]\nstations = { A = nan }\n",
    "[fares]\nbands = [[inf, 300]]\n",
    "[windows]\nrecovery_seconds = inf\n",
    '[[concessions]]\ncard_type = "wizard"\npay_percent = 0\n',
    "[terminal.x]\n",
])
def test_a_bad_configuration_gives_one_line_and_exit_2(tmp_path: Path, config: str) -> None:
    code, out, err = _validator(tmp_path, config, '{"card": "a.json"}\n', "--now", NOW)
    assert code == 2 and one_line(err) and out == "", err


@pytest.mark.parametrize(("taps", "now"), [
    ('{"card": "a.json", "time": "9999-12-31T23:00:00+08:00"}\n{"card": "a.json", "advance": 7200}\n', NOW),
    ('{"card": "a.json", "time": "9999-12-31T23:59:59+00:00"}\n', NOW),
    ('{"card": "a.json"}\n', "0001-01-01T00:00:00+14:00"),
])
def test_times_beyond_the_calendar_give_one_line(tmp_path: Path, taps: str, now: str) -> None:
    code, _, err = _validator(tmp_path, "[fares]\nflat = 200\n", taps, "--now", now)
    assert code == 2 and one_line(err), err


@pytest.mark.parametrize("args", [
    ["journal", "prune", "--journal", "J", "--older-than", "99999999999999d"],
    ["bench", "--reader", "sim", "--count", str(10**23)],
    ["bench", "--reader", "sim", "--count", "1e23"],
    ["sim", "new", "--out", "."],
    ["sim", "new", "--out", "missing/folder/c.json"],
    ["sim", "psam", "--out", "missing/p.json"],
    ["purse", "balance", "--reader", "wizard:1"],
    ["purse", "balance", "--reader", "sim", "--trace", "/dev/full"],
    ["purse", "balance", "--reader", "sim", "--now", "0001-01-01T00:00:00+14:00"],
])
def test_each_bad_argument_gives_one_line(in_tmp: Path, args: list[str]) -> None:
    make_journal(in_tmp / "J")
    code, _, err = run(*args)
    reader = args[-1].startswith("wizard")
    assert code == (3 if reader else 2) and one_line(err) and "internal error" not in err, err


def test_prune_older_than_the_calendar_prunes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    assert run("journal", "export", "--journal", str(db))[0] == 0
    code, out, err = run("journal", "prune", "--journal", str(db), "--older-than", "999999d")
    assert (code, out.strip()) == (0, "0 record(s) pruned"), err


def test_a_tap_that_fails_inside_the_terminal_still_records_its_decision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, journal = flat_fare_validator(tmp_path, Clock.fixed(T0))

    def broken(*_: object, **__: object) -> object:
        raise OverflowError("int too big to convert")  # what a fare past 32 bits did mid-tap

    monkeypatch.setattr(app, "decide", broken)
    decision = app.tap(HostedReader([sample_card(seed=3)]))
    assert (decision.open, decision.reason) == (False, Reason.CARD_ERROR)
    assert "OverflowError" in decision.detail
    (event,) = journal.events()
    assert (event["decision"], event["reason"]) == ("closed", "card_error")
    journal.close()


# --- 6. read-only commands do not write ---------------------------------------------------------------


@pytest.mark.parametrize("content", ["other sqlite", "empty"])
def test_read_only_commands_leave_a_file_that_is_not_a_journal_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "other.db"
    if content == "empty":
        path.touch()
    else:
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE notes (text TEXT)")
        con.execute("INSERT INTO notes VALUES ('keep me')")
        con.commit()
        con.close()
    before = digest(path)
    for args in (["journal", "show", "--journal", str(path)], ["journal", "verify", "--journal", str(path)],
                 ["journal", "export", "--journal", str(path)], ["journal", "prune", "--journal", str(path),
                                                                 "--older-than", "1d"]):
        code, out, err = run(*args)
        assert code == 2 and one_line(err) and "not a journal" in err and out == "", (args, err)
        assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def _version_3(path: Path) -> None:
    make_journal(path)
    con = sqlite3.connect(path)
    con.executescript(
        "DROP TABLE events; CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,"
        " app_serial BLOB, terminal TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,"
        " amount INTEGER NOT NULL, journal_id INTEGER);"
        "ALTER TABLE records DROP COLUMN issuer_id; ALTER TABLE batches DROP COLUMN batch_seq;"  # schema 6's
        "PRAGMA user_version=3;")
    con.close()


def test_an_older_journal_is_not_migrated_by_reading_and_journal_migrate_does_it(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    _version_3(db)
    before = digest(db)
    for args in (["journal", "show", "--journal", str(db)], ["journal", "verify", "--journal", str(db)]):
        code, _, err = run(*args)
        assert code == 2 and one_line(err) and "ykt journal migrate" in err, err
    assert digest(db) == before
    code, out, err = run("journal", "migrate", "--journal", str(db), "--json")
    assert code == 0 and json.loads(out) == {"journal": str(db), "schema_before": 3, "schema": SCHEMA_VERSION}, err
    code, out, _ = run("journal", "show", "--journal", str(db))
    assert code == 0 and len(out.splitlines()) == 5
    assert run("journal", "migrate", "--journal", str(db))[1].strip().endswith("nothing to do")


def test_show_reads_a_journal_a_terminal_holds_open(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    make_journal(db)
    with Journal(db) as busy:  # the terminal is running: its WAL holds the newest commits
        busy.log_event(T0, None, "bus", False, "card_removed")
        code, out, _ = run("journal", "show", "--journal", str(db))
        assert code == 0 and len(out.splitlines()) == 5


def test_journals_are_created_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    old = os.umask(0o022)
    try:
        with Journal(db) as j:
            j.log_event(T0, None, "bus", False, "card_removed")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        os.umask(old)
    assert modes["new.db"] == 0o600 and modes["new.db-wal"] == 0o600, modes


# --- 7. masking and messages ----------------------------------------------------------------------------

SELECT_PURSE = bytes.fromhex("00A4040008A000000632010105")
SELECT_0016 = bytes.fromhex("00A40000020016")
READ_CURRENT = bytes.fromhex("00B0000037")
HOLDER = bytes.fromhex("0100CDF5B7BC") + bytes(49)


def _masked(exchanges: list[tuple[bytes, bytes]]) -> list[str]:
    out = io.StringIO()
    recorder = TraceRecorder(out, "r")
    for command, response in exchanges:
        recorder(Exchange(command, response, 0.0, 0.0, "r"))
    return [json.loads(line)["response"] for line in out.getvalue().splitlines()]


def test_the_holder_file_read_after_a_select_by_fid_is_masked() -> None:
    ok = b"\x90\x00"
    responses = _masked([(SELECT_PURSE, ok), (SELECT_0016, ok), (READ_CURRENT, HOLDER + ok),
                         (bytes.fromhex("00B0960037"), HOLDER + ok), (bytes.fromhex("00B0000037"), HOLDER + ok),
                         (bytes.fromhex("00B0950000"), bytes(30) + ok), (READ_CURRENT, bytes(30) + ok)])
    assert responses[2] == "**" * 55 + "9000"  # selected by FID, read as the current file
    assert responses[3] == "**" * 55 + "9000" and responses[4] == "**" * 55 + "9000"  # by SFI, then current
    assert responses[5] == "00" * 30 + "9000" and responses[6] == "00" * 30 + "9000"  # 0x15 became current


def test_a_refused_select_keeps_the_holder_file_current() -> None:
    responses = _masked([(SELECT_0016, b"\x90\x00"), (bytes.fromhex("00A40000020099"), b"\x6a\x82"),
                         (READ_CURRENT, HOLDER + b"\x90\x00")])
    assert responses[2] == "**" * 55 + "9000"


def test_no_holder_name_reaches_a_trace_of_a_select_by_fid(tmp_path: Path) -> None:
    card = tmp_path / "c.json"
    assert run("sim", "new", "--out", str(card), "--name", "王芳")[0] == 0
    trace = tmp_path / "t.jsonl"
    code, _, err = run("apdu", "--reader", f"sim:{card}", "--trace", str(trace), SELECT_PURSE.hex(),
                       SELECT_0016.hex(), READ_CURRENT.hex())
    assert code == 0, err
    text = trace.read_text(encoding="utf-8").upper()
    assert "王芳".encode("gbk").hex().upper() not in text and "CDF5B7BC" not in text


def test_a_wrong_puk_is_reported_as_a_puk(tmp_path: Path) -> None:
    card = tmp_path / "c.json"
    assert run("sim", "new", "--out", str(card))[0] == 0
    code, out, err = run("card", "pin", "unblock", "--reader", f"sim:{card}", "--puk", "000000", "--new", "111111",
                         "--json")
    assert code == 4 and one_line(err) and "wrong PUK" in err and "PIN," not in err, err
    assert json.loads(out) == {"pin": "unblock", "ok": False, "error": err[len("error: "):].strip(), "tries_left": 9}
    with pytest.raises(auth.PinError, match="wrong PIN, 2 tries left"):
        reader = HostedReader([load_card(card, persist=False)])
        reader.connect()
        auth.verify_pin(Channel(reader), "999999")


def test_card_pin_commands_answer_in_json(tmp_path: Path) -> None:
    card = tmp_path / "c.json"
    assert run("sim", "new", "--out", str(card), "--pin", "123456")[0] == 0
    for args, action in ((["verify", "--pin", "123456"], "verify"), (["change", "--old", "123456", "--new", "654321"],
                                                                      "change")):
        code, out, err = run("card", "pin", *args, "--reader", f"sim:{card}", "--json")
        assert code == 0 and json.loads(out) == {"pin": action, "ok": True}, err
    code, out, _ = run("card", "pin", "verify", "--pin", "123456", "--reader", f"sim:{card}", "--json")
    assert code == 4 and json.loads(out)["tries_left"] == 2
