"""`ykt demo --seed 1 --json`: the story, its refusals, the recovery and a settlement that balances."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cardlib.keys import default_issuer
from cli.main import cli
from terminal.journal import read_batch, verify_records


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


def test_demo_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for n in range(2):
        r = CliRunner().invoke(cli, ["demo", "--seed", "3", "--json", "--out", str(tmp_path / f"d{n}")])
        doc = json.loads(r.stdout)
        doc.pop("out_dir")
        for t in doc["settlement"]["terminals"]:
            t.pop("batch")
        outs.append(doc)
    assert outs[0] == outs[1]
