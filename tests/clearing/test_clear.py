"""`ykt clear` on Dask (docs/settlement.md): the generator's faults found with the manifest's
counts, a clean day with none, bad batches set aside whole, and a cluster of two workers
on loopback giving the default run's report byte for byte. One LocalCluster serves the
module (a cluster costs seconds)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cardlib.keystore import builtin_store
from clearing.engine import Job, batch_files, run
from clearing.register import TerminalRegister
from tests.clearing.conftest import manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def clear(root: Path, out: Path, scheduler: str, batches: Path | None = None, **kw: Any) -> dict[str, Any]:
    job = Job(batch_files([str(batches or root / "batches")]), TerminalRegister.load(root / "register.csv"),
              builtin_store(), str(out), scheduler=scheduler, **kw)
    return run(job)


def test_each_fault_kind_is_found_with_the_manifests_count(day: Path, tmp_path: Path, scheduler: str) -> None:
    report = clear(day, tmp_path / "out", scheduler, previous=str(day / "previous"))
    expected = manifest(day)
    assert report["exceptions"] == expected["faults"]
    assert report["missing_batches"] == expected["details"]["missing_batch"]
    assert report["records"]["rejected"] == expected["faults"]["forged"] + expected["faults"]["replay"]
    cleared = {(c["issuer"], c["operator"], kind): (c[f"{kind}s"], c[f"{kind}_count"])
               for c in report["clearing"] for kind in ("purchase", "load") if c[f"{kind}_count"]}
    assert cleared == {(t["issuer"], t["operator"], t["kind"]): (t["amount"], t["count"]) for t in expected["totals"]}
    assert sum(p["net"] for p in report["positions"]) == 0
    assert {x["card"] for x in report["examples"]["break"]} == {d["card"] for d in expected["details"]["break"]}
    # the Parquet outputs, by day: every line once, the exceptions among them
    import pandas as pd

    records = pd.read_parquet(tmp_path / "out" / "records")
    exceptions = pd.read_parquet(tmp_path / "out" / "exceptions")
    assert len(records) == report["records"]["lines"] and (tmp_path / "out" / "records" / "day=2026-11-28").is_dir()
    assert int(exceptions["gap"].sum()) == expected["faults"]["gap"]
    state = pd.read_parquet(tmp_path / "out" / "state" / "cards.parquet")
    assert len(state) == expected["cards"]


def test_without_the_previous_state_the_first_counters_are_not_checked(day: Path, tmp_path: Path,
                                                                       scheduler: str) -> None:
    """Documented: a record missing before a card's first purchase of the day is then seen
    only as a balance that does not follow (a break), and a terminal's first batch of the
    run may follow a hole unseen."""
    report = clear(day, tmp_path / "out", scheduler)
    faults = manifest(day)["faults"]
    assert 0 < report["exceptions"]["gap"] < faults["gap"] and report["exceptions"]["break"] >= faults["break"]
    assert report["exceptions"]["missing_batch"] == 0
    same = ("bad_batch", "unknown_terminal", "forged", "unknown_issuer", "replay")
    assert {k: report["exceptions"][k] for k in same} == {k: faults[k] for k in same}


def test_a_clean_day_reports_none_and_the_next_day_follows_its_state(clean_day: Path, tmp_path: Path,
                                                                    scheduler: str) -> None:
    report = clear(clean_day, tmp_path / "out", scheduler, previous=str(clean_day / "previous"),
                   state_out=str(tmp_path / "state"))
    assert set(report["exceptions"].values()) == {0} and report["set_aside"] == [] and report["examples"] == {}
    assert report["records"]["accepted"] == report["records"]["lines"] == manifest(clean_day)["transactions"]
    # the same batches again, against the state this run left: each card's first counter of each
    # kind has gone back (a break); the rest follow it
    import pandas as pd

    # (the new state written over the one read: it replaces it only when the run is done)
    again = clear(clean_day, tmp_path / "again", scheduler, previous=str(tmp_path / "state"),
                  state_out=str(tmp_path / "state"))
    chains = pd.read_parquet(tmp_path / "out" / "records", columns=["card", "kind"]).drop_duplicates()
    assert again["exceptions"]["break"] == len(chains)
    assert again["exceptions"]["missing_batch"] == 0 and again["exceptions"]["gap"] == 0
    assert len(pd.read_parquet(tmp_path / "state" / "cards.parquet")) == manifest(clean_day)["cards"]


def test_a_bad_batch_and_an_unknown_terminal_are_set_aside_whole(clean_day: Path, tmp_path: Path,
                                                                 scheduler: str) -> None:
    batches = tmp_path / "batches"
    shutil.copytree(clean_day / "batches", batches)
    files = sorted(batches.glob("*.jsonl"))
    bad, stranger = files[0], files[3]
    bad.write_text(bad.read_text("utf-8").replace('"amount": ', '"amount": 1', 1), "utf-8")
    text = stranger.read_text("utf-8")
    terminal = stranger.name.split("-")[0]
    stranger.write_text(text.replace(f'"terminal": "{terminal}"', '"terminal": "EEEEEEEEEEEE"', 1), "utf-8")
    report = clear(clean_day, tmp_path / "out", scheduler, batches=batches)
    assert (report["exceptions"]["bad_batch"], report["exceptions"]["unknown_terminal"]) == (1, 1)
    assert [(s["file"], s["kind"]) for s in report["set_aside"]] == [(bad.name, "bad_batch"),
                                                                    (stranger.name, "unknown_terminal")]
    counts = [int(f.read_text("utf-8").split('"count": ')[1].split(",")[0]) for f in (bad, stranger)]
    assert report["records"]["lines"] == manifest(clean_day)["transactions"] - sum(counts)
    assert report["batches"] == {"files": len(files), "cleared": len(files) - 2, "set_aside": 2}


def test_lines_of_an_issuer_whose_keys_are_not_in_the_store_are_rejected(clean_day: Path, tmp_path: Path,
                                                                          scheduler: str) -> None:
    from cardlib.keys import test_issuer
    from cardlib.keystore import KeyStore

    job = Job(batch_files([str(clean_day / "batches")]), TerminalRegister.load(clean_day / "register.csv"),
              KeyStore([test_issuer()]), str(tmp_path / "out"), scheduler=scheduler)
    report = run(job)
    city_b = sum(t["count"] for t in manifest(clean_day)["totals"] if t["issuer"] == "99990002FFFFFFFF")
    assert city_b > 0 and report["exceptions"]["unknown_issuer"] == city_b
    assert {c["issuer"] for c in report["clearing"]} == {"99990000FFFFFFFF"}
    assert report["records"]["rejected"] == city_b


def ykt_clear(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cli.main", "clear", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=240)


def test_a_cluster_of_two_workers_gives_the_default_runs_report_byte_for_byte(day: Path, tmp_path: Path,
                                                                             scheduler: str) -> None:
    common = [str(day / "batches"), "--register", str(day / "register.csv"), "--previous", str(day / "previous")]
    # (the human report is a function of the JSON one: equal JSON, equal text)
    default = ykt_clear(*common, "--out", str(tmp_path / "default"), "--json")
    assert default.returncode == 0, default.stderr
    assert default.stderr == ""  # distributed's log at ERROR: nothing on a good run
    cluster = ykt_clear(*common, "--out", str(tmp_path / "cluster"), "--scheduler", scheduler, "--json",
                        "--no-pictures")
    assert cluster.returncode == 0, cluster.stderr
    assert cluster.stdout == default.stdout and f'"forged": {manifest(day)["faults"]["forged"]}' in default.stdout
    # the pictures, linked from the summary page, drawn with a CJK font for the Chinese labels
    from clearing.pictures import PICTURES, cjk_font

    assert cjk_font() is not None, "no CJK font: install fonts-noto-cjk (.ci/setup-system.sh)"
    page = (tmp_path / "default" / "summary.html").read_text("utf-8")
    for name in PICTURES:
        assert (tmp_path / "default" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f'src="{name}"' in page
    assert "城市公交" in page
