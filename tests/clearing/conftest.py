"""A generated day shared by the clearing tests (small: the benchmark runs them large)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clearing.generate import Faults, generate

SEED = 7
TRANSACTIONS = 6000


@pytest.fixture(scope="session")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("day")
    generate(root, seed=SEED, transactions=TRANSACTIONS)
    return root


@pytest.fixture(scope="session")
def clean_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    generate(root, seed=SEED + 1, transactions=2000, faults=Faults())
    return root


def manifest(root: Path) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((root / "manifest.json").read_text("utf-8"))
    return obj
