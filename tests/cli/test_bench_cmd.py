"""`ykt bench`: APDU round trips timed through the channel; a progress bar on a terminal only."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import cli
from tests.cli.terminal import on_a_terminal


def test_bench_json_on_the_simulator() -> None:
    result = CliRunner().invoke(cli, ["bench", "--reader", "sim", "--count", "50", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["count"] == 50 and 0 < doc["median_us"] <= doc["p99_us"]
    assert "timing" not in result.stderr  # not a terminal: no bar


def test_bench_bar_on_a_terminal_and_bad_apdu_is_one_line() -> None:
    code, shown, out = on_a_terminal(["bench", "--reader", "sim", "--count", "30"])
    assert code == 0 and b"timing" in shown and b"median" in out
    result = CliRunner().invoke(cli, ["bench", "--reader", "sim", "--apdu", "00A4"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
