"""Run the benchmarks: ``python -m tests.bench [B1 B2 …] [--quick] [--json FILE]``.

Prints the machine, then each benchmark's figures and targets (``met`` or
``MISSED`` with the numbers), then a summary. Exit status: 0 every target
met; 1 some target MISSED (every benchmark still runs); 2 some benchmark
could not run (error, or PC/SC unavailable) — 2 wins over 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from tests.bench import BENCHMARKS, load
from tests.bench.common import Result, machine, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all: {' '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (as YKT_BENCH_QUICK=1): proves they run")
    parser.add_argument("--json", metavar="FILE", help="also write the machine and every figure as JSON")
    args = parser.parse_args(argv)
    names = [n.upper() for n in args.names] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {' '.join(unknown)}; known: {' '.join(BENCHMARKS)}")
    quick = args.quick or os.environ.get("YKT_BENCH_QUICK", "") not in ("", "0")
    info = machine()
    say("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if quick:
        say("QUICK mode: tiny sizes, the figures mean nothing")
    results: list[Result] = []
    for name in names:
        t0 = time.perf_counter()
        try:
            result = load(name).run(quick)
        except BaseException as exc:  # pytest.skip/fail from the PC/SC helpers are BaseExceptions
            if isinstance(exc, KeyboardInterrupt):
                raise
            result = Result(name, BENCHMARKS[name], error=f"{type(exc).__name__}: {exc}".strip())
            say(f"  ERROR {name} could not run: {result.error}")
            if isinstance(exc, Exception):  # not for pytest's skip/fail of the PC/SC helpers
                traceback.print_exc()
        result.figures["seconds"] = round(time.perf_counter() - t0, 1)
        results.append(result)
    say(f"\n== summary (load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for r in results:
        if r.error:
            say(f"  {r.name}  ERROR    {r.error}")
            continue
        for t in r.targets:
            say(f"  {r.name}  {'met   ' if t.met else 'MISSED'}  {t.label}: {t.detail}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"machine": info, "quick": quick, "results": [r.to_json() for r in results]}, fh,
                      ensure_ascii=False, indent=1)
    if any(r.error for r in results):
        return 2
    return 1 if any(r.missed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
