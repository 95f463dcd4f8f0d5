"""Test-wide settings: hypothesis profiles (CI: no deadline, bounded, seed printed);
the simulators' state folder (YKT_STATE_DIR) in a temporary folder of each test, so
no test writes to the real home and no test sees another's simulated PSAM counter."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=int(os.environ.get("YKT_EXAMPLES", "100")),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "full",
    deadline=None,
    max_examples=2000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("full" if os.environ.get("YKT_FULL") == "1" else "ci")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("state")
    before = os.environ.get("YKT_STATE_DIR")
    os.environ["YKT_STATE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("YKT_STATE_DIR", None)
    else:
        os.environ["YKT_STATE_DIR"] = before


@pytest.fixture
def allow_py(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``py:`` readers import the test card factories (tests.*): a py: URI runs code,
    so it runs only when allowed (cardlib/readers/pyhost.py)."""
    monkeypatch.setenv("YKT_ALLOW_PY", "tests")


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    """A test module's tests are the functions written in it: a library function whose name
    starts with ``test`` (``cardlib.keys.test_issuer``) imported into one is not collected."""
    if isinstance(collector, pytest.Module) and inspect.isfunction(obj) and obj.__module__ != collector.module.__name__:
        return []
    return None
