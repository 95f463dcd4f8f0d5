"""`ykt demo --seed 1 --json`: the story, its refusals, the recovery and a settlement that balances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cardlib.batch import read_batch
from cardlib.keys import default_issuer
from cardlib.settlement import verify_records
from cli.main import cli
from tests.cli.terminal import on_a_terminal
from tests.pcsc_support import pcscd  # noqa: F401


def test_demo_story(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--seed", "1", "--json", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    reasons = [t["reason"] for t in doc["taps"]]
    for expected in ("repeated_tap", "multiple_cards", "torn_retry", "recovered", "deny_listed", "purse_blocked",
                     "card_expired", "free"):
        assert expected in reasons
    by_note = {t["note"]: t for t in doc["taps"]}
    assert by_note["bus, flat fare"]["amount"] == 200
    assert by_note["bus, student half price"]["amount"] == 100
    assert by_note["transfer within 90 minutes"]["amount"] == 100
    assert by_note["metro exit: 8.5 km fare"]["amount"] == 400
    assert by_note["museum: visitor pays the local price"]["amount"] == 4000
    rec = doc["recovery"]
    assert rec["torn"]["reason"] == "torn_retry" and rec["recovered"]["reason"] == "recovered"
    assert rec["recovered"]["amount"] == 200
    s = doc["settlement"]
    assert s["balanced"] and not s["tacs_failed"] and s["tacs_verified"] == s["count"] == 10
    assert s["loads"] == 5000 and s["debits"] == 9000
    assert doc["cards"]["adult"]["balance"] == 1000 + 5000 - 200 - 100 - 400 - 4000
    assert doc["cards"]["visitor"]["balance"] == 8000 - 200 - 4000
    assert all(t["pending"] == 0 for t in s["terminals"])
    # the batches on disk verify independently
    records = []
    for term in s["terminals"]:
        header, rows = read_batch(term["batch"])
        assert header.count == term["count"]
        records += rows
    assert verify_records(records, default_issuer()).ok and len(records) == 10
    assert all(r["tac"] for r in s["transactions"])


def _story(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    """The demo's JSON without what depends on where and how it ran (a torn tap's detail
    names the reader's own words for the card leaving)."""
    r = CliRunner().invoke(cli, ["demo", "--json", "--out", str(tmp_path / name), *args])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    doc.pop("out_dir")
    doc.pop("via")
    for t in doc["settlement"]["terminals"]:
        t.pop("batch")
    for t in [*doc["taps"], *doc["refusals"]]:
        t.pop("field")
    for t in [*doc["taps"], *doc["refusals"], *doc["recovery"].values()]:
        if t["reason"] == "torn_retry":
            assert t.pop("detail").startswith("transaction torn")
    return doc


def test_demo_is_deterministic(tmp_path: Path) -> None:
    assert _story(tmp_path, "d0", "--seed", "3") == _story(tmp_path, "d1", "--seed", "3")
    assert _story(tmp_path, "d2", "--seed", "4") != _story(tmp_path, "d3", "--seed", "3")


@pytest.mark.parametrize("via", ["pn532", "pcsc"])
def test_demo_through_the_real_stacks_tells_the_same_story(tmp_path: Path, via: str,
                                                            request: pytest.FixtureRequest) -> None:
    if via == "pcsc":
        request.getfixturevalue("pcscd")
    r = CliRunner().invoke(cli, ["demo", "--seed", "1", "--json", "--via", via, "--out", str(tmp_path / via)])
    assert r.exit_code == 0, r.stderr
    fields = {t["note"]: t["field"] for t in json.loads(r.stdout)["taps"]}
    # every tap went through the stack, except two cards at once, which a PC/SC reader cannot show
    assert fields.pop("two cards together") == ("sim" if via == "pcsc" else via)
    assert set(fields.values()) == {via}
    assert _story(tmp_path, "through", "--seed", "1", "--via", via) == _story(tmp_path, "sim", "--seed", "1")


def test_demo_via_pcsc_without_pcscd_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("smartcard", reason="pyscard (the pcsc extra) is not installed")
    # libpcsclite reads the socket's name when it loads: a fresh process
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}
    r = subprocess.run([sys.executable, "-m", "cli.main", "demo", "--via", "pcsc", "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 3 and "is pcscd running?" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _demo_on_a_terminal(tmp_path: Path, name: str, env: dict[str, str]) -> bytes:
    code, shown, _ = on_a_terminal(["demo", "--out", str(tmp_path / name)], tty="stdout", env=env)
    assert code == 0
    return shown


def test_colour_on_a_terminal_only_and_never_with_no_color(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = _demo_on_a_terminal(tmp_path, "a", env)
    assert b"\x1b[32m\x1b[1mOPEN" in coloured and b"\x1b[31m\x1b[1mCLOSED" in coloured
    plain = _demo_on_a_terminal(tmp_path, "b", {**env, "NO_COLOR": "1"})
    assert b"OPEN" in plain and b"\x1b[" not in plain
    piped = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "c")])
    assert "OPEN" in piped.stdout and "\x1b[" not in piped.stdout
