"""`ykt validator run --taps`: a tap script replayed on card images, the decisions as
JSON, the journal filled with where the terminal stands, and every tap in the trace."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cardlib.trace import read_trace
from cli.main import cli
from terminal.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


def test_validator_run_on_a_tap_script_with_journal_and_trace(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("adult", "student"):
        args = ["sim", "new", "--out", str(tmp_path / f"{name}.json"), "--seed", str(len(name))]
        if name == "student":
            args += ["--card-type", "student", "--birth-date", "2009-09-01"]
        assert runner.invoke(cli, args).exit_code == 0
    (tmp_path / "morning.taps").write_text(
        '{"card": "adult.json", "time": "2026-11-28T07:45:00+08:00"}\n'
        '{"card": "student.json", "advance": 5, "tear": {"ins": "54", "when": "after"}}\n'
        '{"card": "student.json", "advance": 10}\n', encoding="utf-8")
    journal, trace = tmp_path / "bus.db", tmp_path / "bus.trace.jsonl"
    r = runner.invoke(cli, ["validator", "run", "--config", str(ROOT / "examples" / "bus-validator.toml"),
                            "--taps", str(tmp_path / "morning.taps"), "--journal", str(journal),
                            "--trace", str(trace), "--json"])
    assert r.exit_code == 0, r.stderr
    decisions = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["reason"], d["amount"]) for d in decisions] == [("ok", 200), ("torn_retry", 100), ("recovered", 100)]
    with Journal(journal) as j:
        records = j.records()
    assert [(rec.state, rec.line, rec.amount) for rec in records] == [("completed", "K101", 200),
                                                                      ("recovered", "K101", 100)]
    text = trace.read_text(encoding="utf-8")
    headers = [json.loads(line) for line in text.splitlines() if '"atr"' in line]
    assert len(headers) == 3  # one connect per tap
    entries = read_trace(trace)
    assert any(e.command.startswith("805401") for e in entries)  # the DEBIT is in it


def test_psam_option_wins_over_the_configuration_even_with_the_default_uri(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["sim", "new", "--out", str(tmp_path / "a.json")]).exit_code == 0
    (tmp_path / "one.taps").write_text('{"card": "a.json"}\n', encoding="utf-8")
    config = tmp_path / "bus.toml"
    config.write_text('[terminal]\nrole = "bus_validator"\n[fares]\nflat = 200\n[psam]\nreader = "pcsc:SAM slot 9"\n',
                      encoding="utf-8")
    base = ["validator", "run", "--config", str(config), "--taps", str(tmp_path / "one.taps"),
            "--journal", str(tmp_path / "j.db"), "--now", "2026-11-28T08:00:00"]
    r = runner.invoke(cli, base)
    assert r.exit_code == 3 and ("SAM slot 9" in r.stderr or "pcscd" in r.stderr or "pyscard" in r.stderr), r.stderr
    r = runner.invoke(cli, [*base, "--psam", "sim?kind=psam"])
    assert r.exit_code == 0, r.stderr
    assert "ok" in r.stdout


def test_a_terminal_with_a_bad_deny_list_does_not_start_unless_configured_to(tmp_path: Path) -> None:
    """Format 2's terminal opened this list (index zeroed) and let the listed card through."""
    runner = CliRunner()
    assert runner.invoke(cli, ["sim", "new", "--out", str(tmp_path / "a.json"), "--seed", "4"]).exit_code == 0
    shown = runner.invoke(cli, ["sim", "show", str(tmp_path / "a.json")]).stdout
    serial = next(line.split()[-1] for line in shown.splitlines() if line.startswith("app serial"))
    src = tmp_path / "serials.txt"
    src.write_text("\n".join([serial, *(f"3303{i:016d}" for i in range(999))]) + "\n", encoding="utf-8")
    deny = tmp_path / "deny.bin"
    assert runner.invoke(cli, ["denylist", "build", str(src), "--out", str(deny), "--list-version", "5"]).exit_code == 0
    data = bytearray(deny.read_bytes())
    data[64 : 64 + 4 * 256] = bytes(4 * 256)
    deny.write_bytes(data)
    (tmp_path / "one.taps").write_text('{"card": "a.json"}\n', encoding="utf-8")
    config = tmp_path / "bus.toml"
    base = f'[terminal]\nrole = "bus_validator"\n[fares]\nflat = 200\n[paths]\ndenylist = "{deny}"\n'
    config.write_text(base, encoding="utf-8")
    args = ["validator", "run", "--config", str(config), "--taps", str(tmp_path / "one.taps"),
            "--journal", str(tmp_path / "j.db"), "--now", "2026-11-28T08:00:00", "--json"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"error: {deny}: SHA-256 does not match the file (altered or damaged); no good deny "
                                f"list, the terminal does not start (denylist.start_without = true runs without one)")
    config.write_text(base + "[denylist]\nstart_without = true\n", encoding="utf-8")
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.stderr
    assert "running WITHOUT a deny list until a good one arrives" in r.stderr
    assert json.loads(r.stdout)["reason"] == "ok"  # said loudly, and configured: the card is not checked
