"""The struct form of a declaration (cardlib/wire.py, ``pack``/``unpack`` by position)
against construct's interpreter on random values, right and wrong: the same bytes,
or both refuse.

The walk test holds every declaration to its vectors; this holds the struct
form, which the transaction path uses, to the declaration on everything else.
"""

from __future__ import annotations

from typing import Any

import pytest
from construct import Bytes, BytesInteger, FormatField, GreedyRange
from hypothesis import given
from hypothesis import strategies as st

from cardlib import wire
from cardlib.errors import FormatError

PACKED = [d for d in wire.all_declarations() if d._flat is not None and d._flat.positional]


def _field(con: Any) -> st.SearchStrategy[Any]:
    """Values for one field: mostly fitting, sometimes one off its size or range."""
    if isinstance(con, Bytes):
        n = con.length
        return st.one_of(st.binary(min_size=n, max_size=n), st.binary(max_size=n + 2))
    if isinstance(con, GreedyRange):
        return st.lists(_field(con.subcon), max_size=3)
    if isinstance(con, FormatField):
        size, signed = con.sizeof(), con.fmtstr[-1].islower()
    else:
        assert isinstance(con, BytesInteger)
        size, signed = con.length, con.signed
    low, high = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
    return st.one_of(st.integers(low, high), st.sampled_from([low - 1, high + 1]))


def _values(declaration: wire.Declaration) -> st.SearchStrategy[dict[str, Any]]:
    fields = {sub.name: _field(sub.subcon) for sub in declaration.construct.subcons if sub.name}
    return st.fixed_dictionaries(fields)


def test_the_transaction_paths_declarations_are_packed() -> None:
    names = {d.name for d in PACKED}
    assert {"purse.initialize", "purse.debit_for_purchase", "psam.init_sam_for_purchase",
            "macs.purchase_mac1.input", "macs.purchase_tac.input", "macs.load_session_key.input"} <= names


@pytest.mark.parametrize("declaration", PACKED, ids=lambda d: d.name)
@given(data=st.data())
def test_packed_builds_what_the_interpreter_builds(declaration: wire.Declaration, data: st.DataObject) -> None:
    value = data.draw(_values(declaration))
    ordered = [value[name] for name in declaration.fields()]
    try:
        want = declaration.build_interpreted(value)
    except FormatError:
        with pytest.raises(FormatError, match=declaration.name):
            declaration.pack(*ordered)
        with pytest.raises(FormatError, match=declaration.name):
            declaration.build(value)
        return
    assert declaration.pack(*ordered) == want
    assert declaration.build(value) == want
    assert declaration.unpack(want) == tuple(tuple(v) if isinstance(v, list) else v for v in ordered)
    assert declaration.parse(want) == declaration.parse_interpreted(want)


@pytest.mark.parametrize("declaration", PACKED, ids=lambda d: d.name)
@given(raw=st.binary(max_size=40))
def test_packed_parses_what_the_interpreter_parses(declaration: wire.Declaration, raw: bytes) -> None:
    try:
        want = declaration.parse_interpreted(raw)
    except FormatError:
        with pytest.raises(FormatError, match=declaration.name):
            declaration.parse(raw)
        return
    assert declaration.parse(raw) == want
