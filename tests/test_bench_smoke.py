"""The benchmarks of tests/bench still run: each once in its tiny mode, through the
runner (``python -m tests.bench NAME --quick``), with no timing asserted.

B2 and B3 need pcscd with the vpcd driver (skipped without root unless
CI=true, as every PC/SC test); B3 runs without vicc here (YKT_BENCH_VICC=0),
so vicc is needed only by the full benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import BENCHMARKS
from tests.bench.__main__ import main
from tests.pcsc_support import pcscd, station_slots  # noqa: F401

PCSC = ("B2", "B3", "B9")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.pcsc) if n in PCSC else n for n in BENCHMARKS])
def test_benchmark_runs_in_tiny_mode(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    if name in PCSC:
        # the session's pcscd (stopped at the end if the session started it); skips, or fails
        # with CI=true, when PC/SC cannot run. The benchmark leaves a running pcscd alone.
        request.getfixturevalue("station_slots" if name == "B9" else "pcscd")
    monkeypatch.setenv("YKT_BENCH_VICC", "0")
    out = tmp_path / "bench.json"
    rc = main([name, "--quick", "--json", str(out)])
    printed = capsys.readouterr().out
    (result,) = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert result["error"] is None, printed
    assert rc in (0, 1), printed  # 1: a target missed, which tiny sizes say nothing about
    assert result["figures"] and f"== {name}:" in printed and "== summary" in printed
    assert all(t["detail"] for t in result["targets"])
