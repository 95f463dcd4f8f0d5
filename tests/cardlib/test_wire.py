"""The declaration mechanism itself (cardlib/wire.py), on a format of its own."""

from __future__ import annotations

import re

import pytest
from construct import Bytes, GreedyBytes, Int8ub, Int24ub, Int32sb, Prefixed, Struct
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import FormatError
from cardlib.wire import REGISTRY, Declaration, Vector, declare

SAMPLE = Struct("kind" / Int8ub, "tag" / Bytes(2), "count" / Int24ub, "balance" / Int32sb)


_SAMPLE = Declaration("sample", SAMPLE, cite="own: a test format")


def sample() -> Declaration:
    return _SAMPLE


def test_build_and_parse_agree_with_hand_packed_bytes() -> None:
    raw = bytes.fromhex("07" "4142" "000105" "FFFFFF9C")  # own: packed by hand
    value = {"kind": 7, "tag": b"AB", "count": 261, "balance": -100}
    assert sample().build(value) == raw
    assert sample().parse(raw) == value


@pytest.mark.parametrize(("field", "bad", "says"), [
    ("tag", b"A", "tag must be 2 bytes, got 1"),  # compiled construct alone would write 1 byte
    ("tag", b"ABC", "tag must be 2 bytes, got 3"),
    ("tag", "AB", "tag is not bytes"),
    ("kind", 256, "kind 256 does not fit in 1 byte(s)"),
    ("count", -1, "count -1 does not fit in 3 byte(s)"),
    ("balance", 1 << 31, "balance 2147483648 does not fit in 4 byte(s)"),
    ("kind", True, "kind is not an integer"),
])
def test_a_field_that_does_not_fit_is_a_format_error(field: str, bad: object, says: str) -> None:
    value = {"kind": 1, "tag": b"AB", "count": 0, "balance": 0, field: bad}
    with pytest.raises(FormatError, match=re.escape(f"sample: cannot encode: {says}")):
        sample().build(value)


def test_a_missing_field_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="count is missing"):
        sample().build(kind=1, tag=b"AB", balance=0)


@pytest.mark.parametrize("raw", [b"", bytes(9), bytes(11)])
def test_wrong_lengths_do_not_parse(raw: bytes) -> None:
    with pytest.raises(FormatError, match="sample: expected 10 bytes"):
        sample().parse(raw)


def test_a_variable_format_is_built_by_the_interpreter_and_checked_for_left_over_bytes() -> None:
    tail = Declaration("tail", Struct("kind" / Int8ub, "rest" / GreedyBytes), cite="own")
    assert tail.size is None
    assert tail.build(kind=1, rest=b"xy") == b"\x01xy"
    assert tail.parse(b"\x01xy") == {"kind": 1, "rest": b"xy"}
    with pytest.raises(FormatError, match="tail: cannot encode"):
        tail.build(kind=300, rest=b"")


def test_a_length_prefix_longer_than_the_bytes_left_is_a_format_error() -> None:
    # compiled construct would read the 2 bytes left and say nothing: a variable format parses interpreted
    prefixed = Declaration("prefixed", Struct("tag" / Int8ub, "value" / Prefixed(Int8ub, GreedyBytes)), cite="own")
    assert prefixed.parse(bytes.fromhex("09 02 C2C0")) == {"tag": 9, "value": bytes.fromhex("C2C0")}
    with pytest.raises(FormatError, match="prefixed: "):
        prefixed.parse(bytes.fromhex("09 05 C2C0"))


@given(st.integers(0, 255), st.binary(min_size=2, max_size=2), st.integers(0, 0xFFFFFF),
       st.integers(-(1 << 31), (1 << 31) - 1))
def test_compiled_equals_interpreted(kind: int, tag: bytes, count: int, balance: int) -> None:
    declaration = sample()
    value = {"kind": kind, "tag": tag, "count": count, "balance": balance}
    raw = declaration.build(value)
    assert raw == declaration.build_interpreted(value)
    assert declaration.parse(raw) == declaration.parse_interpreted(raw) == value


def test_vectors_name_their_source_and_names_are_declared_once() -> None:
    with pytest.raises(ValueError, match="public:' or 'own:"):
        Vector(b"", {}, "somewhere")
    declare("test-only format", SAMPLE, cite="own")
    try:
        with pytest.raises(ValueError, match="declared twice"):
            declare("test-only format", SAMPLE, cite="own")
    finally:
        REGISTRY.pop("test-only format")
