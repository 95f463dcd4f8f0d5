"""B8: clearing a city's day on Dask, as ratios within one run (issue 21).

A day is generated (``clearing.generate``: two TEST ONLY issuers, buses, metro,
museums, injected faults) with ``YKT_BENCH_CLEAR_N`` transactions (default
1M; ``YKT_BENCH_CLEAR_BIG`` sets a second, larger day for the memory ratio,
e.g. 10M; 0 skips it). Generation is not timed.

* floor: ``cardlib``'s batch reading and TAC checking over the same files in
  one plain process: ``read_batch`` then ``tac_ok`` per line with the card's
  key derived (caches emptied first, so key derivation is included); and the
  same over the files split in two forked processes (the floor's own
  two-process speed-up);
* the job: ``clearing.engine.run`` (``ykt clear`` without pictures) on a
  LocalCluster of one worker, then of two.

Targets: the job's rate per core ≥ 0.5× the floor's (one worker against one
process); two workers' speed-up ≥ 0.8× the floor's two-process speed-up;
peak memory (summed RSS of this process — client and scheduler — and the
workers, sampled every 0.5 s) on the big day ≤ 2× that on the first. The
wall time of each day is reported, not gated.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cardlib.batch import read_batch
from cardlib.keys import derive_dtk
from cardlib.keystore import builtin_store
from cardlib.settlement import tac_functions, tac_ok
from tests.bench.common import Result, banner, knob, say

NAME = "B8"
TITLE = "clearing a city's day on Dask"
TARGET_PER_CORE = 0.5
TARGET_SCALING = 0.8
TARGET_MEMORY = 2.0


def _floor(files: list[str]) -> int:
    """Batch reading and TAC checking, key derivation included: what the job cannot do without."""
    derive_dtk.cache_clear()
    store = builtin_store()
    for issuer in store.issuers:
        tac_functions(issuer).clear()
    checked = 0
    for path in files:
        _, lines = read_batch(path)
        for obj in lines:
            issuer = store.get(bytes.fromhex(obj["issuer_id"]), obj["key_version"])
            tac_ok(issuer, obj)
            checked += 1
    return checked


def _floor_two(files: list[str]) -> float:
    """The floor over the files split in two forked processes, run at once: wall seconds."""
    ctx = multiprocessing.get_context("fork")
    halves = [files[0::2], files[1::2]]
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_floor, args=(h,)) for h in halves]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.perf_counter() - t0


@contextmanager
def _peak_rss() -> Iterator[list[int]]:
    """The largest summed RSS of this process and its descendants, sampled every 0.5 s."""
    import psutil

    peak = [0]
    stop = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            stop.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def _job(root: Path, out: Path, workers: int) -> tuple[float, int, dict[str, int]]:
    """The clearing job on a LocalCluster of ``workers``: (wall seconds, peak RSS, exceptions)."""
    from clearing.engine import Job, batch_files, run
    from clearing.register import TerminalRegister

    shutil.rmtree(out, ignore_errors=True)
    job = Job(batch_files([str(root / "batches")]), TerminalRegister.load(root / "register.csv"), builtin_store(),
              str(out), previous=str(root / "previous"), workers=workers)
    with _peak_rss() as peak:
        t0 = time.perf_counter()
        report = run(job)
        wall = time.perf_counter() - t0
    return wall, peak[0], report["exceptions"]


def run(quick: bool) -> Result:
    from clearing.generate import generate

    result = Result(NAME, TITLE)
    banner(result)
    n = knob("YKT_BENCH_CLEAR_N", 1_000_000, 3_000, quick)
    big = knob("YKT_BENCH_CLEAR_BIG", 0, 6_000, quick) if os.environ.get("YKT_BENCH_CLEAR_BIG", "") != "0" else 0
    scratch = Path(tempfile.mkdtemp(prefix="ykt-b8-"))
    try:
        t0 = time.perf_counter()
        day = generate(scratch / "day", seed=8, transactions=n)
        result.figure("transactions", n, f"day: {n:,} transactions, {day.cards:,} cards, {day.batches:,} batch files"
                      f" (generated in {time.perf_counter() - t0:.0f} s, not timed)")
        files = sorted(str(p) for p in (scratch / "day" / "batches").glob("*.jsonl"))
        t0 = time.perf_counter()
        checked = _floor(files)
        floor_1 = time.perf_counter() - t0
        floor_2 = _floor_two(files)
        floor_rate = checked / floor_1
        floor_speedup = floor_1 / floor_2
        result.figure("floor_rate", round(floor_rate), f"floor, one process: {floor_rate:,.0f} lines/s")
        result.figure("floor_speedup", round(floor_speedup, 2), f"floor, two processes: speed-up {floor_speedup:.2f}×")

        wall_1, rss_1, found = _job(scratch / "day", scratch / "out1", 1)
        wall_2, rss_2, _ = _job(scratch / "day", scratch / "out2", 2)
        job_rate = n / wall_1
        job_speedup = wall_1 / wall_2
        result.figure("job_rate_per_core", round(job_rate), f"job, one worker: {job_rate:,.0f} transactions/s"
                      f" ({wall_1:.1f} s)")
        result.figure("job_speedup", round(job_speedup, 2), f"job, two workers: speed-up {job_speedup:.2f}×"
                      f" ({wall_2:.1f} s)")
        result.figure("wall_seconds", round(wall_2, 1), f"the day of {n:,}: {wall_2:.1f} s on two workers")
        result.figure("peak_rss_mb", round(rss_2 / 2**20), f"peak RSS (client, scheduler, two workers):"
                      f" {rss_2 / 2**20:,.0f} MB")
        result.figure("exceptions", found)
        ok = found == day.faults
        result.target("report equals the generator's manifest", ok, f"{found} vs {day.faults}")
        result.target(f"job rate per core >= {TARGET_PER_CORE}x the floor's", job_rate >= TARGET_PER_CORE * floor_rate,
                      f"{job_rate:,.0f}/s vs floor {floor_rate:,.0f}/s = {job_rate / floor_rate:.2f}x")
        result.target(f"two workers' speed-up >= {TARGET_SCALING}x the floor's", job_speedup >= TARGET_SCALING
                      * floor_speedup, f"{job_speedup:.2f}x vs floor {floor_speedup:.2f}x"
                      f" = {job_speedup / floor_speedup:.2f}")
        if big:
            shutil.rmtree(scratch / "out1", ignore_errors=True)
            shutil.rmtree(scratch / "out2", ignore_errors=True)
            t0 = time.perf_counter()
            generate(scratch / "big", seed=9, transactions=big)
            say(f"  big day: {big:,} transactions (generated in {time.perf_counter() - t0:.0f} s, not timed)")
            wall_b, rss_b, _ = _job(scratch / "big", scratch / "outb", 2)
            result.figure("big_wall_seconds", round(wall_b, 1), f"the day of {big:,}: {wall_b:.1f} s on two workers")
            result.figure("big_peak_rss_mb", round(rss_b / 2**20), f"peak RSS: {rss_b / 2**20:,.0f} MB")
            result.target(f"peak memory at {big:,} <= {TARGET_MEMORY}x that at {n:,}", rss_b <= TARGET_MEMORY * rss_2,
                          f"{rss_b / 2**20:,.0f} MB vs {rss_2 / 2**20:,.0f} MB = {rss_b / rss_2:.2f}x")
        else:
            result.note("no big day (YKT_BENCH_CLEAR_BIG=0): the memory ratio is not measured")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result
