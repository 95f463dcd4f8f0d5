"""BER-TLV (ISO 7816-4 §5.2): byte-exact parse, errors with offsets, round trips."""

from __future__ import annotations

import re

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
        ("84010150", "truncated length at offset 4"),
        ("8482FF", "truncated length at offset 1"),
        # inside templates, offsets count from the start of the input
        ("6F04A50284050102", "tag 84 at offset 4: length 5 beyond the 0 bytes left"),
        ("6F03A5019F", "truncated multi-byte tag at offset 4"),
        ("6F04A5028480", r"indefinite length \(80\) not allowed at offset 5"),
        ("6F028485", "length field of 5 bytes too long at offset 3"),
    ],
)
def test_errors(hex_: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse(bytes.fromhex(hex_))


def test_lenient_skips_padding_inside_templates() -> None:
    data = bytes.fromhex("6F06FF84010100FF") + b"\x00"
    assert parse(data, strict=False) == [Tlv(0x6F, b"", (Tlv(0x84, b"\x01"),))]
    with pytest.raises(FormatError, match="padding byte FF at offset 2"):
        parse(data)


def test_nesting_limit_is_a_format_error() -> None:
    data = b""
    for _ in range(40):
        data = bytes((0x6F, len(data))) + data if len(data) < 0x80 else bytes((0x6F, 0x81, len(data))) + data
    with pytest.raises(FormatError, match="nested too deeply"):
        parse(data)


def test_constructed_comes_from_the_tag() -> None:
    assert Tlv(0x6F).constructed and Tlv(0xA5).constructed and Tlv(0xBF0C).constructed
    assert not Tlv(0x84).constructed and not Tlv(0x9F0C).constructed and not Tlv(0xDF8101).constructed
    with pytest.raises(FormatError):
        Tlv(0x9F).encode()
    with pytest.raises(FormatError):
        Tlv(0x8401).encode()


def test_find_is_depth_first() -> None:
    tree = build(0x70, [build(0x61, [build(0x4F, b"\x01"), build(0x50, b"A")]), build(0x4F, b"\x02")])
    assert tree.find(0x4F) == Tlv(0x4F, b"\x01")
    assert [t.value for t in tree.find_all(0x4F)] == [b"\x01", b"\x02"]
    assert tree.find(0x70) is tree and tree.find(0x84) is None
    assert tag_name(0x61) and tag_name(0x62) and tag_name(0xBF0C) and tag_name(0x1234) == ""


def test_parse_one_wants_exactly_one() -> None:
    with pytest.raises(FormatError, match="found 2"):
        parse_one(bytes.fromhex("8400" "8400"))
    with pytest.raises(FormatError, match="found 0"):
        parse_one(b"")


def test_json_shape() -> None:
    js = to_json(parse_one(FCI))
    assert js["tag"] == "6F" and js["length"] == 0x16
    children = js["children"]
    assert isinstance(children, list) and "value" not in js
    assert children[0] == {"tag": "84", "length": 8, "value": "A000000632010105", "name": "DF name"}


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


tlv_ish = st.lists(
    st.one_of(st.sampled_from([0x00, 0xFF, 0x1F, 0x9F, 0x6F, 0xA5, 0x80, 0x81, 0x82, 0x84, 0x85, 0x01, 0x02]),
              st.integers(0, 255)),
    max_size=60,
).map(bytes)


@given(st.one_of(st.binary(max_size=80), tlv_ish), st.booleans())
def test_random_bytes_format_error_or_a_stable_tree(raw: bytes, strict: bool) -> None:
    """Only FormatError escapes; whatever parses re-encodes (minimal lengths) to the same tree."""
    try:
        objs = parse(raw, strict=strict)
    except FormatError:
        return
    again = b"".join(o.encode() for o in objs)
    assert parse(again) == objs
    assert len(again) <= len(raw)
    for o in objs:
        to_json(o)


@given(tlv_ish)
def test_offsets_are_absolute_inside_templates(raw: bytes) -> None:
    """Wrapping content in a template moves the offset an error names by the template's header."""
    try:
        parse(raw)
    except FormatError as exc:
        inner = str(exc)
    else:
        return
    header = b"\x6f" + bytes((len(raw),))  # tlv_ish is shorter than 0x80
    with pytest.raises(FormatError) as wrapped:
        parse(header + raw)
    shift = len(header)
    expected = re.sub(r"offset (\d+)", lambda m: f"offset {int(m.group(1)) + shift}", inner)
    if "too deeply" not in inner:
        assert str(wrapped.value) == expected


def _reference_parse(data: bytes, strict: bool, base: int = 0, depth: int = 0) -> list[Tlv]:
    """The parser as first written, byte by byte with no short cuts: what the fast paths must equal."""
    if depth > 32:
        raise FormatError(f"TLV nested too deeply at offset {base}")
    out, pos = [], 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):
            if strict:
                raise FormatError(f"padding byte {data[pos]:02X} at offset {base + pos} (strict mode)")
            pos += 1
            continue
        start = pos
        pos += 1
        if data[start] & 0x1F == 0x1F:
            while True:
                if pos >= len(data):
                    raise FormatError(f"truncated multi-byte tag at offset {base + start}")
                pos += 1
                if pos - start > 4:
                    raise FormatError(f"tag longer than 4 bytes at offset {base + start}")
                if not data[pos - 1] & 0x80:
                    break
        tag = int.from_bytes(data[start:pos], "big")
        if pos >= len(data):
            raise FormatError(f"truncated length at offset {base + pos}")
        first, lstart = data[pos], pos
        pos += 1
        if first == 0x80:
            raise FormatError(f"indefinite length (80) not allowed at offset {base + lstart}")
        length = first
        if first > 0x80:
            size = first & 0x7F
            if size > 4:
                raise FormatError(f"length field of {size} bytes too long at offset {base + lstart}")
            if pos + size > len(data):
                raise FormatError(f"truncated length at offset {base + lstart}")
            length, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
        if pos + length > len(data):
            raise FormatError(f"tag {tag:X} at offset {base + start}: length {length} beyond the "
                              f"{len(data) - pos} bytes left")
        value = data[pos : pos + length]
        if data[start] & 0x20:
            out.append(Tlv(tag, b"", tuple(_reference_parse(value, strict, base + pos, depth + 1))))
        else:
            out.append(Tlv(tag, value))
        pos += length
    return out


@given(st.one_of(st.binary(max_size=80), tlv_ish, st.lists(trees, max_size=3).map(
    lambda objs: b"".join(o.encode() for o in objs))), st.booleans())
def test_parse_equals_the_reference_parser(raw: bytes, strict: bool) -> None:
    try:
        want: list[Tlv] | str = _reference_parse(raw, strict)
    except FormatError as exc:
        want = str(exc)
    try:
        got: list[Tlv] | str = parse(raw, strict=strict)
    except FormatError as exc:
        got = str(exc)
    assert got == want


def test_tag_encodings_are_kept_for_valid_tags_only() -> None:
    from cardlib.tlv import tag_bytes

    assert tag_bytes(0x9F0C) == bytes.fromhex("9F0C") and tag_bytes(0x9F0C) == bytes.fromhex("9F0C")
    for bad in (0x1F, 0x9F8C, 0x84A5, -1):
        for _ in range(2):
            with pytest.raises(FormatError):
                tag_bytes(bad)


def test_built_objects_are_equal_to_constructed_ones() -> None:
    assert build(0x84, bytearray(b"\x01")) == Tlv(0x84, b"\x01") and hash(build(0x84, b"\x01")) == hash(Tlv(0x84, b"\x01"))
    assert build(0x6F, [build(0x84, b"")]) == Tlv(0x6F, b"", (Tlv(0x84, b""),))
    assert parse_one(FCI).find(0x9F0C) == Tlv(0x9F0C, bytes.fromhex("01020304050607"))
    assert parse_one(FCI).find(0x5F2D) is None
