"""B5: the journal's durable commits per second vs bare sqlite3 doing the same writes.

Ours: ``Journal.begin`` then ``Journal.complete`` per transaction, with the
arguments the wallet passes for a composite purchase (sync="full": two
synced commits per transaction) and a terminal's clock. Bare: ``sqlite3`` on a file in the same
directory with the same settings (WAL, synchronous=FULL, autocommit, so one
commit per statement), a table of the same columns and indexes, one INSERT
and one UPDATE per transaction with the same values — no RETURNING, no
record objects, no checks. Blocks of each alternate (ABBA); the ratio judged
is the median of the per-block ratios (an fsync stall of the shared disk
moves one block pair, not the result), the ratio of the totals beside it.
Target: ours ≥ 0.8× the bare commits per second.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path

from cardlib.clock import BEIJING, Clock
from terminal.journal import Journal
from tests.bench.common import Result, alternate, banner, knob, median, say, us

NAME = "B5"
TITLE = "journal durable commits per second vs bare sqlite3 (WAL, synchronous=FULL)"
TARGET_RATIO = 0.8
COMMITS_PER_TX = 2  # begin (write-ahead) + complete, each its own synced commit

# The journal's records table, column for column, with its two indexes (roughly its shape).
BARE_TABLE = """
CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, kind TEXT NOT NULL,
  tx_type INTEGER NOT NULL, app_serial BLOB NOT NULL, card_seq INTEGER NOT NULL, amount INTEGER NOT NULL,
  balance_before INTEGER NOT NULL, balance_after INTEGER, terminal_id BLOB NOT NULL, terminal_seq INTEGER,
  tx_time TEXT NOT NULL, tac BLOB, mac2 BLOB, mac2_verified INTEGER, algorithm TEXT NOT NULL,
  key_version INTEGER NOT NULL, key_index INTEGER NOT NULL, test INTEGER NOT NULL, station TEXT NOT NULL,
  line TEXT NOT NULL, extra TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  batch_id TEXT, failure_reason TEXT);
CREATE INDEX records_card ON records (app_serial, state);
CREATE INDEX records_batch ON records (batch_id)
"""
SERIAL = bytes.fromhex("33030000862937245619")
TERMINAL = bytes.fromhex("010203040506")


class Ours:
    def __init__(self, path: Path) -> None:
        self.clock = Clock.system()  # a terminal's clock (a fixed one's lock and advance are a test's)
        self.journal = Journal(path, self.clock, sync="full")  # every commit synced, as the bare side
        self.seq = 0

    def tx(self) -> None:
        self.seq += 1
        j = self.journal
        record = j.begin(kind="composite", tx_type=9, app_serial=SERIAL, card_seq=self.seq & 0xFFFF, amount=200,
                         balance_before=100_000, terminal_id=TERMINAL, tx_time=self.clock.now(), algorithm="3des",
                         key_version=1, key_index=1, test=True, terminal_seq=self.seq)
        j.complete(record.id, tac=b"\x12\x34\x56\x78", mac2=b"\x9a\xbc\xde\xf0", balance_after=99_800,
                   mac2_verified=True)


class Bare:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        for statement in BARE_TABLE.split(";"):
            self.db.execute(statement)
        self.seq = 0

    def tx(self) -> None:
        self.seq += 1
        stamp = datetime.now(BEIJING).isoformat(timespec="microseconds")
        cur = self.db.execute(
            "INSERT INTO records (state, kind, tx_type, app_serial, card_seq, amount, balance_before, terminal_id,"
            " terminal_seq, tx_time, algorithm, key_version, key_index, test, station, line, extra, created_at,"
            " updated_at) VALUES ('pending', 'composite', 9, ?, ?, 200, 100000, ?, ?, ?, '3des', 1, 1, 1, '', '', '',"
            " ?, ?)", (SERIAL, self.seq & 0xFFFF, TERMINAL, self.seq, stamp, stamp, stamp))
        self.db.execute("UPDATE records SET state='completed', updated_at=?, tac=?, mac2=?, balance_after=?,"
                        " mac2_verified=1 WHERE id=? AND state='pending'",
                        (stamp, b"\x12\x34\x56\x78", b"\x9a\xbc\xde\xf0", 99_800, cur.lastrowid))


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    total = knob("YKT_BENCH_B5_N", 3000, 20, quick)
    blocks = 30 if not quick else 2
    per_block = max(1, total // blocks)
    with tempfile.TemporaryDirectory(prefix="ykt-bench-b5-") as tmp:
        ours, bare = Ours(Path(tmp) / "journal.db"), Bare(Path(tmp) / "bare.db")
        for side in (ours, bare):
            for _ in range(min(20, per_block)):
                side.tx()

        cpu = {"journal": 0.0, "bare": 0.0}

        def block(side: Ours | Bare, key: str) -> float:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(per_block):
                side.tx()
            cpu[key] += time.process_time() - c0
            return time.perf_counter() - t0

        times = alternate(blocks, {"journal": lambda: block(ours, "journal"), "bare": lambda: block(bare, "bare")})
        ours.journal.close()
        bare.db.close()
    n = per_block * blocks
    commits = n * COMMITS_PER_TX
    t_ours, t_bare = sum(times["journal"]), sum(times["bare"])
    c_ours, c_bare = commits / t_ours, commits / t_bare
    block_ratios = [b / o for o, b in zip(times["journal"], times["bare"], strict=True)]
    ratio = median(block_ratios)  # one fsync stall moves one block pair, not the result
    say(f"  {n} transactions ({commits} synced commits) per side in {blocks} alternating blocks")
    result.figure("journal_commits_per_s", round(c_ours),
                  f"journal begin+complete: {c_ours:,.0f} commits/s ({us(t_ours / commits)} per commit)")
    result.figure("bare_commits_per_s", round(c_bare),
                  f"bare sqlite3 INSERT+UPDATE: {c_bare:,.0f} commits/s ({us(t_bare / commits)} per commit)")
    result.figure("cpu_per_commit_us", {"journal": round(cpu["journal"] / commits * 1e6, 1),
                                        "bare": round(cpu["bare"] / commits * 1e6, 1)},
                  f"CPU per commit: journal {us(cpu['journal'] / commits)}, bare {us(cpu['bare'] / commits)} "
                  f"(the journal's own work: {us((cpu['journal'] - cpu['bare']) / commits)} per commit)")
    result.figure("ratio", round(ratio, 3), f"ratio journal/bare: median of block ratios {ratio:.3f} (of the "
                  f"totals {c_ours / c_bare:.3f}; blocks range {min(block_ratios):.2f}–{max(block_ratios):.2f})")
    result.target(f"journal ≥ {TARGET_RATIO}× bare sqlite3 commits/s", ratio >= TARGET_RATIO,
                  f"median block ratio {ratio:.3f} ({c_ours:,.0f} vs {c_bare:,.0f} commits/s over all)")
    return result
