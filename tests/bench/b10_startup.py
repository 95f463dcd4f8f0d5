"""B10: how long a technician waits for ``ykt --help`` (issue 20, packaging).

The console script as installed (the venv's ``bin/ykt``), run 10 times in a
fresh process each; the median wall time. Beside it, a bare ``python -c pass``
of the same interpreter, so a slow machine shows as a slow floor, not as ours.

Target: median ≤ 0.2 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.bench.common import Result, banner, median, python_exe

NAME = "B10"
TITLE = "ykt --help start-up time"
TARGET = 0.2
RUNS = 10


def _wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
    return time.perf_counter() - t0


def run(quick: bool) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    runs = 2 if quick else RUNS
    ykt = Path(sys.executable).with_name("ykt")
    command = [str(ykt), "--help"] if ykt.exists() else [python_exe(), "-m", "cli.main", "--help"]
    help_times, bare_times = [], []
    for _ in range(runs):  # alternating, so the machine's drift falls on both
        help_times.append(_wall(command))
        bare_times.append(_wall([python_exe(), "-c", "pass"]))
    result.figure("help_median_s", round(median(help_times), 4), f"ykt --help: median {median(help_times):.3f} s "
                  f"of {runs} (min {min(help_times):.3f}, max {max(help_times):.3f}); {' '.join(command[:1])}")
    result.figure("bare_python_median_s", round(median(bare_times), 4),
                  f"python -c pass: median {median(bare_times):.3f} s")
    result.target(f"ykt --help median <= {TARGET} s", median(help_times) <= TARGET, f"{median(help_times):.3f} s")
    return result
