"""BER-TLV (ISO 7816-4 §5.2): byte-exact parse, errors with offsets, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import FormatError
from cardlib.tlv import Tlv, build, parse, parse_one, tag_name, to_json

FCI = bytes.fromhex("6F168408A000000632010105A50A9F0C0701020304050607")


def test_fci_of_the_purse() -> None:
    fci = parse_one(FCI)
    assert fci.tag == 0x6F and fci.constructed
    assert fci.find(0x84) == Tlv(0x84, bytes.fromhex("A000000632010105"))
    assert fci.find(0x9F0C) == Tlv(0x9F0C, bytes.fromhex("01020304050607"))
    assert fci.encode() == FCI
    assert tag_name(0x9F0C).startswith("issuer discretionary")


def test_long_lengths() -> None:
    for n, head in ((0x7F, "047F"), (0x80, "048180"), (0x100, "04820100"), (0x10000, "0483010000")):
        obj = build(0x04, bytes(n))
        assert obj.encode()[: len(head) // 2].hex().upper() == head
        assert parse_one(obj.encode()) == obj


def test_multibyte_tags() -> None:
    obj = build(0xBF0C, [build(0x9F4D, b"\x0b\x0a"), build(0xDF8101, b"\x01")])
    assert obj.encode().hex().upper() == "BF0C0A9F4D020B0ADF81010101"
    assert parse_one(obj.encode()) == obj


def test_padding_strict_and_lenient() -> None:
    data = b"\x00" + bytes.fromhex("840101") + b"\xff\xff"
    with pytest.raises(FormatError, match="padding byte 00 at offset 0"):
        parse(data)
    assert parse(data, strict=False) == [Tlv(0x84, b"\x01")]


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("9F", "truncated multi-byte tag at offset 0"),
        ("84", "truncated length at offset 1"),
        ("8480", "indefinite length"),
        ("8485", "length field of 5 bytes"),
        ("840301", "length 3 beyond"),
        ("6F03840201", "offset 2"),
        ("9F8181818101", "tag longer than 4 bytes"),
    ],
)
def test_errors(hex_: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse(bytes.fromhex(hex_))


def test_json_shape() -> None:
    js = to_json(parse_one(FCI))
    assert js["tag"] == "6F" and js["length"] == 0x16
    assert js["children"][0] == {"tag": "84", "length": 8, "value": "A000000632010105", "name": "DF name"}


primitive_tags = st.sampled_from([0x84, 0x50, 0x88, 0x9F0C, 0x9F08, 0x5F2D, 0xDF8101, 0x01, 0x9F4D])
constructed_tags = st.sampled_from([0x6F, 0xA5, 0x61, 0xBF0C, 0x62, 0x70])
trees = st.recursive(
    st.builds(Tlv, primitive_tags, st.binary(max_size=300)),
    lambda kids: st.builds(lambda t, c: Tlv(t, b"", tuple(c)), constructed_tags, st.lists(kids, max_size=4)),
    max_leaves=12,
)


@given(st.lists(trees, max_size=4))
def test_round_trip(objs: list[Tlv]) -> None:
    data = b"".join(o.encode() for o in objs)
    assert parse(data) == objs


@given(st.binary(max_size=80), st.booleans())
def test_random_bytes_only_format_errors(raw: bytes, strict: bool) -> None:
    try:
        parse(raw, strict=strict)
    except FormatError:
        pass
