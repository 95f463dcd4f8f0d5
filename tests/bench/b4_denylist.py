"""B4: the deny list with 10 million serials (terminal/denylist.py, format 3).

The serials are BCD-style as issued (a shared 4-byte region prefix, then 12
decimal digits): the odd numbers 1, 3, 5, … are listed, so an even number is a
miss that sorts between two entries. ``YKT_BENCH_DENY_N`` sets the count
(default 10M).

* build: ``build_denylist`` from the list of serials (what ``ykt denylist
  build`` does after parsing the text);
* open and memory: in a fresh Python process (the file is in the page cache,
  as on a terminal that just received it): the time of ``DenyList(path)``
  with every check of opening (SHA-256 of the whole file, index bounds and
  order, sampled entries in their buckets),
  then the growth of the resident set after opening and 200,000 lookups;
* lookups: half hits, half misses, in blocks of 1,000 alternating with a
  ``bisect`` over the same serials as a sorted Python list in memory; the
  median per lookup of each.

Targets: open ≤ 0.2 s, lookup median ≤ 5 µs, ≤ 12 bytes per entry on disk and
in memory.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from terminal.denylist import DenyList, build_denylist
from tests.bench.common import Result, alternate, banner, knob, median, python_exe, say, us

NAME = "B4"
TITLE = "deny list of 10 million serials: build, open, lookup, bytes per entry"
REGION = bytes.fromhex("33030000")
TARGET_OPEN = 0.2
TARGET_LOOKUP = 5e-6
TARGET_BYTES = 12.0
PROBES = 200_000
BLOCK = 1000

# Run in a fresh interpreter: open time and RSS growth without this process's lists.
_CHILD = r"""
import json, random, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
from terminal.denylist import DenyList
path, n, probes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
region = bytes.fromhex("33030000")
serials = [region + bytes.fromhex(f"{rng.randrange(1, 2 * n + 1):012d}") for _ in range(probes)]
before = rss()
t0 = time.perf_counter()
deny = DenyList(path)
opened = time.perf_counter() - t0
after_open = rss()
hits = sum(deny.contains(s) for s in serials)
after = rss()
print(json.dumps({"open_s": opened, "rss_open": after_open - before, "rss_lookups": after - before, "hits": hits}))
"""


def serial(number: int) -> bytes:
    return REGION + bytes.fromhex(f"{number:012d}")


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    n = knob("YKT_BENCH_DENY_N", 10_000_000, 20_000, quick)
    probes_n = min(PROBES, max(2 * BLOCK, n)) if not quick else 2 * BLOCK
    t0 = time.perf_counter()
    listed = [serial(2 * i + 1) for i in range(n)]  # ascending: BCD keeps the numeric order
    say(f"  {n:,} serials generated in {time.perf_counter() - t0:.1f} s")
    with tempfile.TemporaryDirectory(prefix="ykt-bench-b4-") as tmp:
        path = Path(tmp) / "deny.bin"
        t0 = time.perf_counter()
        count = build_denylist(listed, path, 1)
        build_s = time.perf_counter() - t0
        assert count == n, (count, n)
        size = path.stat().st_size
        result.figure("build_s", round(build_s, 2), f"build: {build_s:.2f} s ({n / build_s:,.0f} serials/s)")
        result.figure("disk_bytes_per_entry", round(size / n, 3),
                      f"file: {size:,} bytes = {size / n:.3f} bytes/entry")

        child = subprocess.run([python_exe(), "-c", _CHILD, str(path), str(n), str(probes_n)], check=True,
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": _root()})
        fresh = json.loads(child.stdout)
        result.figure("open_s", round(fresh["open_s"], 5),
                      f"open in a fresh process: {fresh['open_s'] * 1e3:.2f} ms")
        mem = fresh["rss_lookups"] / n
        result.figure("rss_bytes_per_entry", round(mem, 3),
                      f"resident growth: {fresh['rss_open']:,} bytes after open, {fresh['rss_lookups']:,} after "
                      f"{probes_n:,} lookups = {mem:.3f} bytes/entry (mapped pages of the file; at most the "
                      f"file's {size / n:.3f} once every page is touched)")

        rng = random.Random(11)
        probes = [serial(rng.randrange(1, 2 * n + 1)) for _ in range(probes_n)]
        blocks = [probes[i : i + BLOCK] for i in range(0, len(probes) - BLOCK + 1, BLOCK)]
        with DenyList(path) as deny:
            assert all(deny.contains(s) for s in listed[:: max(1, n // 1000)])
            state = {"deny": 0, "bisect": 0}  # each side's next block (the order alternates)
            found: dict[str, int] = {"deny": 0, "bisect": 0}

            def deny_block() -> float:
                block = blocks[state["deny"] % len(blocks)]
                state["deny"] += 1
                contains = deny.contains
                t = time.perf_counter()
                hits = sum(1 for s in block if contains(s))
                spent = time.perf_counter() - t
                found["deny"] += hits
                return spent / len(block)

            def bisect_block() -> float:
                block = blocks[state["bisect"] % len(blocks)]
                state["bisect"] += 1
                lst, left, size_ = listed, bisect.bisect_left, len(listed)
                t = time.perf_counter()
                hits = 0
                for s in block:
                    i = left(lst, s)
                    if i < size_ and lst[i] == s:
                        hits += 1
                spent = time.perf_counter() - t
                found["bisect"] += hits
                return spent / len(block)

            for _ in range(3):  # warm both (page cache, branch predictors)
                deny_block()
                bisect_block()
            state.update(deny=0, bisect=0)
            found.update(deny=0, bisect=0)
            times = alternate(len(blocks), {"deny": deny_block, "bisect": bisect_block})
    assert found["deny"] == found["bisect"], found  # both see the same hits
    d, b = median(times["deny"]), median(times["bisect"])
    list_bytes = sys.getsizeof(listed) + sum(sys.getsizeof(s) for s in listed[:1000]) * n / min(n, 1000)
    say(f"  {len(blocks)} blocks of {BLOCK} lookups each side, {found['deny'] / (len(blocks) * BLOCK):.0%} hits")
    result.figure("lookup_median_us", round(d * 1e6, 3), f"deny list lookup: median {us(d)}")
    result.figure("bisect_median_us", round(b * 1e6, 3),
                  f"bisect over the sorted list in memory: median {us(b)} (that list holds "
                  f"~{list_bytes / n:.0f} bytes/entry)")
    result.figure("lookup_ratio", round(d / b, 3), f"ratio deny/bisect: {d / b:.2f}")
    result.target(f"open ≤ {TARGET_OPEN} s", fresh["open_s"] <= TARGET_OPEN, f"{fresh['open_s'] * 1e3:.2f} ms")
    result.target("lookup median ≤ 5 µs", d <= TARGET_LOOKUP, f"{us(d)} ({d / b:.2f}× bisect's {us(b)})")
    result.target("≤ 12 bytes/entry on disk", size / n <= TARGET_BYTES, f"{size / n:.3f}")
    result.target("≤ 12 bytes/entry in memory (RSS growth)", mem <= TARGET_BYTES, f"{mem:.3f}")
    return result


def _root() -> str:
    """The repository, so the child imports these packages (and tests.*) the way we do."""
    here = Path(__file__).resolve().parents[2]
    return os.pathsep.join(p for p in (str(here), os.environ.get("PYTHONPATH", "")) if p)
