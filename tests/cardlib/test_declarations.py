"""Every wire-format declaration walked both ways, compiled and interpreted (cardlib/wire.py)."""

from __future__ import annotations

import importlib

import pytest

from cardlib import wire

DECLARATIONS = list(wire.all_declarations())


def _ids(declaration: wire.Declaration) -> str:
    return declaration.name


@pytest.mark.parametrize("declaration", DECLARATIONS, ids=_ids)
def test_every_vector_parses_and_builds_both_ways(declaration: wire.Declaration) -> None:
    assert declaration.vectors, f"{declaration.name} has no vectors"
    for vector in declaration.vectors:
        assert declaration.parse(vector.raw) == dict(vector.value), vector.source
        assert declaration.parse_interpreted(vector.raw) == dict(vector.value), vector.source
        assert declaration.build(vector.value) == vector.raw, vector.source
        assert declaration.build_interpreted(vector.value) == vector.raw, vector.source


@pytest.mark.parametrize("declaration", DECLARATIONS, ids=_ids)
def test_every_declaration_names_its_source(declaration: wire.Declaration) -> None:
    assert declaration.cite.strip()
    assert "reference §" not in declaration.cite  # the internal reference is not in the repository


@pytest.mark.parametrize("module", wire.DECLARING_MODULES)
def test_every_declaring_module_declares(module: str) -> None:
    declared = {d.name for d in DECLARATIONS}
    names = [d.name for d in vars(importlib.import_module(module)).values() if isinstance(d, wire.Declaration)]
    assert names and set(names) <= declared
