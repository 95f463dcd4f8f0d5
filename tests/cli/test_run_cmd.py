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
