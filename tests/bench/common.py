"""What every benchmark shares: knobs, the machine's description, results and targets.

A benchmark is a module with ``NAME``, ``TITLE`` and ``run(quick: bool) -> Result``.
It prints its figures as it goes and records each target as met or MISSED with
the numbers that decided it; comparisons are ratios measured in the same run
(alternating blocks), so the noise of a shared machine falls on both sides.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any


def quick() -> bool:
    """``YKT_BENCH_QUICK=1``: every benchmark in its tiny mode (seconds, no meaningful figures)."""
    return os.environ.get("YKT_BENCH_QUICK", "") not in ("", "0")


def knob(name: str, full: int, tiny: int, quick_mode: bool) -> int:
    """An integer size: ``$name`` if set (``10M``, ``250k`` or digits), else ``tiny`` in quick mode, else ``full``."""
    text = os.environ.get(name, "").strip().lower().replace("_", "")
    if not text:
        return tiny if quick_mode else full
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    value = int(float(text[:-1] if scale != 1 else text) * scale)
    if value < 1:
        raise SystemExit(f"{name}={text}: must be at least 1")
    return value


@dataclass
class Target:
    label: str  # what is promised, e.g. "lookup median <= 5 us"
    met: bool
    detail: str  # the numbers that decided it


@dataclass
class Result:
    name: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # could not run (why)

    def figure(self, key: str, value: Any, text: str | None = None) -> None:
        """Keep a figure and print it (``text`` is the human line, else ``key: value``)."""
        self.figures[key] = value
        say(f"  {text if text is not None else f'{key}: {value}'}")

    def target(self, label: str, met: bool, detail: str) -> None:
        self.targets.append(Target(label, met, detail))
        say(f"  {'met   ' if met else 'MISSED'} {label}: {detail}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  note: {text}")

    @property
    def missed(self) -> list[Target]:
        return [t for t in self.targets if not t.met]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "figures": self.figures, "error": self.error,
                "notes": self.notes,
                "targets": [{"label": t.label, "met": t.met, "detail": t.detail} for t in self.targets]}


def say(text: str) -> None:
    print(text, flush=True)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cores() -> int:
    """The cores this process may run on (affinity), which is what a pool can use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """The machine a run was measured on (printed first, kept with the figures)."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": cores(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version,
        "cryptography": _version("cryptography"),
        "pyscard": _version("pyscard"),
        "mem_total_mb": _mem_total_mb(),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),  # others' work on a shared machine
    }


def _mem_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def rss_bytes() -> int:
    """This process's resident set now (Linux /proc; 0 elsewhere)."""
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/self/status", encoding="utf-8"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def clocks() -> Iterator[dict[str, float]]:
    """Wall (perf_counter) and CPU (process_time) of a block: ``{"wall": s, "cpu": s}`` once it ends."""
    out: dict[str, float] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    yield out
    out["wall"] = time.perf_counter() - w0
    out["cpu"] = time.process_time() - c0


def alternate(blocks: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each side once per block, in alternating order (ABBA…), and collect what each returns.

    Alternating the order as well as the sides keeps a slow start or a
    steady drift of the machine from favouring one side.
    """
    names = list(sides)
    out: dict[str, list[float]] = {n: [] for n in names}
    for block in range(blocks):
        order = names if block % 2 == 0 else names[::-1]
        for n in order:
            out[n].append(sides[n]())
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "inf/s"


def banner(result: Result) -> None:
    say(f"\n== {result.name}: {result.title}")


def python_exe() -> str:
    return sys.executable
