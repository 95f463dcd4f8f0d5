"""The benchmarks of issue 7 (docs/performance.md): run with ``scripts/bench.sh``.

Not collected by the normal test run (pyproject: ``--ignore=tests/bench``);
``tests/test_bench_smoke.py`` runs each one in its tiny mode.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Name → (module, title); the runner's order.
BENCHMARKS = {
    "B1": "composite purchase end to end in process",
    "B2": "our channel over PC/SC vs bare pyscard, per APDU",
    "B3": "our vpcd-served card vs vsmartcard's vicc",
    "B4": "deny list of 10 million serials",
    "B5": "journal durable commits vs bare sqlite3",
    "B6": "settlement verification of 1 million TACs",
    "B7": "a tap's APDUs and its modelled time on hardware",
    "B8": "clearing a city's day on Dask",
    "B9": "a station of four lanes and two PSAMs vs a single lane",
    "B10": "ykt --help start-up time",
}
_MODULES = {"B1": "b1_purchase", "B2": "b2_channel", "B3": "b3_vicc", "B4": "b4_denylist",
            "B5": "b5_journal", "B6": "b6_settlement", "B7": "b7_tap_model", "B8": "b8_clearing",
            "B9": "b9_station", "B10": "b10_startup"}


def load(name: str) -> ModuleType:
    """The module of benchmark ``name`` (``run(quick) -> Result``)."""
    return importlib.import_module(f"tests.bench.{_MODULES[name]}")
