"""B1: composite purchase end to end, in process.

A terminal wired as tests/terminal/conftest.py wires it: the user card and the
PSAM are simulated in memory behind ``HostedReader``s, the journal is an
SQLite file on disk (WAL, the default ``sync="write_ahead"``: the record
written before DEBIT is synced, the completion reaches the disk with the next
sync).
One transaction = the card is tapped (reset, ATR) and a composite purchase of
1 fen runs: SELECT, INITIALIZE FOR CAPP PURCHASE, the PSAM's MAC1, UPDATE CAPP
DATA CACHE, the journal's write-ahead record, DEBIT, MAC2, the completion.

Three kinds of block alternate in one run:

* plain: tx/s (wall) and CPU per tx (``time.process_time``);
* timed: the same with the card's and the PSAM's ``process``/``reset`` and the
  journal's ``begin``/``complete`` timed, which splits the CPU into simulated
  cards, journal and the rest of the terminal side;
* full: the plain run with the journal's other sync mode (every change synced
  before it returns: two fsyncs per transaction), for comparison only;
* disk: a bare ``fdatasync`` after overwriting 4 KB of a file in the same
  directory, the floor under a synced commit on this disk in this run (the
  wall rate follows it; the CPU rate does not).

Targets: ≥ 1,000 tx/s on one core, as wall rate and as CPU (one core's
second spent on nothing else); terminal-side software (everything but the
simulated card and PSAM) ≤ 3 ms CPU per transaction, 1 % of a 300 ms tap.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.pboc.files import capp_record
from cardlib.readers.pyhost import HostedReader
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.wallet import Wallet
from tests.bench.common import Result, banner, clocks, knob, median, say, us

NAME = "B1"
TITLE = "composite purchase end to end in process (simulated card and PSAM, journal on disk)"
TARGET_TPS = 1000
TARGET_TERMINAL_CPU = 0.003  # 1 % of a 300 ms transaction
CARDS = 64
CAPP = capp_record(0x2702, b"IN:0101")


@dataclass
class Bench:
    reader: HostedReader
    channel: Channel
    psam: PsamClient
    sam_card: Any
    journal: Journal
    clock: Clock
    cards: list[Any]
    done: int = 0

    def tx(self) -> None:
        card = self.cards[self.done % len(self.cards)]
        self.done += 1
        self.reader.remove()
        self.reader.insert(card)
        self.reader.connect()
        Wallet(self.channel, self.psam, self.journal, self.clock).composite_purchase(1, CAPP)
        self.clock.advance(1)


def terminal(path: Path, sync: str, cards: list[Any]) -> Bench:
    clock = Clock.fixed(datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING))
    sam = make_psam()
    sam_reader = HostedReader([sam])
    sam_reader.connect()
    psam = PsamClient(Channel(sam_reader), test=True)
    reader = HostedReader()
    return Bench(reader, Channel(reader), psam, sam, Journal(path, clock, sync=sync), clock, cards)


class Stopwatch:
    """Wall and CPU spent inside the methods it wraps (instance attributes, removed after)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._wrapped: list[tuple[object, str]] = []

    def wrap(self, obj: object, name: str) -> None:
        inner: Callable[..., Any] = getattr(obj, name)
        perf, proc = time.perf_counter, time.process_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = perf(), proc()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu += proc() - c0
                self.wall += perf() - w0

        setattr(obj, name, timed)
        self._wrapped.append((obj, name))

    def unwrap(self) -> None:
        for obj, name in self._wrapped:
            delattr(obj, name)
        self._wrapped.clear()


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    total = knob("YKT_BENCH_B1_N", 3000, 40, quick)
    blocks = 6 if not quick else 2
    per_block = max(1, total // blocks)
    cards = [issue_card(CardProfile(balance=50_000_000), seed=i) for i in range(CARDS)]
    with tempfile.TemporaryDirectory(prefix="ykt-bench-b1-") as tmp:
        plain = terminal(Path(tmp) / "plain.db", "write_ahead", cards)
        timed = terminal(Path(tmp) / "timed.db", "write_ahead", cards)
        full = terminal(Path(tmp) / "full.db", "full", cards)
        for b in (plain, timed, full):  # warm up: caches, first pages of the files
            for _ in range(min(20, per_block)):
                b.tx()
        sums: dict[str, dict[str, float]] = {k: {"wall": 0.0, "cpu": 0.0, "n": 0} for k in ("plain", "timed", "full")}
        sims, journal = Stopwatch(), Stopwatch()
        disk = _Disk(Path(tmp) / "disk.bin")
        for block in range(blocks):
            disk.measure(max(5, per_block // 10))
            order = [("plain", plain), ("timed", timed), ("full", full)]
            for key, bench in order if block % 2 == 0 else order[::-1]:
                if key == "timed":
                    for card in cards:
                        sims.wrap(card, "process")
                        sims.wrap(card, "reset")
                    sims.wrap(bench.sam_card, "process")
                    journal.wrap(bench.journal, "begin")
                    journal.wrap(bench.journal, "complete")
                with clocks() as spent:
                    for _ in range(per_block):
                        bench.tx()
                if key == "timed":
                    sims.unwrap()
                    journal.unwrap()
                sums[key]["wall"] += spent["wall"]
                sums[key]["cpu"] += spent["cpu"]
                sums[key]["n"] += per_block
        disk.close()
        profile = None if quick else _profile(terminal(Path(tmp) / "profile.db", "write_ahead", cards), 300)
        for b in (plain, timed, full):
            b.journal.close()

    p, t, w = sums["plain"], sums["timed"], sums["full"]
    n = p["n"]
    say(f"  {n} transactions per mode in {blocks} alternating blocks, {CARDS} cards")
    tps = n / p["wall"]
    cpu_tx = p["cpu"] / n
    result.figure("tx_per_s", round(tps), f"plain (sync=write_ahead, the default): {tps:,.0f} tx/s wall, "
                  f"{us(cpu_tx)} CPU per tx = {1 / cpu_tx:,.0f} tx per CPU second")
    result.figures["cpu_per_tx_us"] = round(cpu_tx * 1e6, 1)
    result.figures["wall_per_tx_us"] = round(p["wall"] / n * 1e6, 1)
    tn = t["n"]
    sim_cpu, j_cpu, j_wall = sims.cpu / tn, journal.cpu / tn, journal.wall / tn
    t_cpu, t_wall = t["cpu"] / tn, t["wall"] / tn
    terminal_cpu = t_cpu - sim_cpu
    result.figure("timed_tx_per_s", round(tn / t["wall"]),
                  f"timed run: {tn / t['wall']:,.0f} tx/s, {us(t_cpu)} CPU per tx of which simulated card+PSAM "
                  f"{us(sim_cpu)}, terminal side {us(terminal_cpu)}")
    result.figure("journal_wall_share", round(j_wall / t_wall, 3),
                  f"journal (begin+complete): {us(j_wall)} wall per tx = {j_wall / t_wall:.0%} of the wall time, "
                  f"{us(j_cpu)} CPU per tx = {j_cpu / t_cpu:.0%} of the CPU")
    result.figures.update({"terminal_cpu_per_tx_us": round(terminal_cpu * 1e6, 1),
                           "sim_cpu_per_tx_us": round(sim_cpu * 1e6, 1),
                           "journal_wall_per_tx_us": round(j_wall * 1e6, 1),
                           "journal_cpu_per_tx_us": round(j_cpu * 1e6, 1),
                           "journal_cpu_share": round(j_cpu / t_cpu, 3)})
    sync_floor = disk.median()
    result.figure("bare_fdatasync_us", round(sync_floor * 1e6, 1),
                  f"this disk: a bare fdatasync of 4 KB takes {us(sync_floor)} (median); wall per tx − CPU per tx "
                  f"= {us(p['wall'] / n - cpu_tx)} (waiting, mostly for the write-ahead record's sync)")
    wtps = w["n"] / w["wall"]
    result.figure("full_sync_tx_per_s", round(wtps),
                  f"sync=full (two fsyncs per tx): {wtps:,.0f} tx/s, {us(w['cpu'] / w['n'])} CPU per tx "
                  f"({wtps / tps:.2f}x the default's rate)")
    result.target(f"≥ {TARGET_TPS:,} tx/s on one core, wall (journal on disk, default sync)", tps >= TARGET_TPS,
                  f"{tps:,.0f} tx/s ({tps / TARGET_TPS:.2f}x the target; {us(p['wall'] / n)} wall per tx)")
    result.target(f"≥ {TARGET_TPS:,} tx per CPU second", 1 / cpu_tx >= TARGET_TPS,
                  f"{1 / cpu_tx:,.0f} ({us(cpu_tx)} CPU per tx)")
    result.target("terminal-side CPU ≤ 3 ms per tx (1 % of 300 ms)", terminal_cpu <= TARGET_TERMINAL_CPU,
                  f"{us(terminal_cpu)} ({terminal_cpu / 0.300:.2%} of 300 ms)")
    if profile:
        say("  where the terminal-side CPU goes (cProfile, 300 tx, by own time):")
        for line in profile:
            say(f"    {line}")
        result.figures["profile_top"] = profile
    return result


class _Disk:
    """fdatasync after overwriting 4 KB of a file: the floor under one synced commit."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.write(self.fd, bytes(64 * 1024))
        os.fsync(self.fd)
        self.times: list[float] = []

    def measure(self, count: int) -> None:
        page = b"\x5a" * 4096
        for i in range(count):
            t0 = time.perf_counter()
            os.pwrite(self.fd, page, (i % 16) * 4096)
            os.fdatasync(self.fd)
            self.times.append(time.perf_counter() - t0)

    def median(self) -> float:
        return median(self.times)

    def close(self) -> None:
        os.close(self.fd)


def _profile(bench: Bench, count: int) -> list[str]:
    """The functions with the most own time over ``count`` transactions (ours only)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(count):
        bench.tx()
    prof.disable()
    bench.journal.close()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tottime, ncalls, cumtime, f"{_short(path)}:{line}({func})"))
    rows.sort(reverse=True)
    return [f"{tot / count * 1e6:7.1f} µs/tx own, {cum / count * 1e6:7.1f} µs/tx cum, {nc / count:5.1f} calls/tx  {where}"
            for tot, nc, cum, where in rows[:15]]


def _short(path: str) -> str:
    for root in ("/terminal/", "/cardlib/", "/simulators/"):
        if root in path:
            return root.strip("/") + "/" + path.split(root, 1)[1]
    return path.rsplit("/", 1)[-1] if "/" in path else path
