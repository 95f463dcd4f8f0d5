"""ATR parsing (ISO 7816-3 §8): real ATRs byte-exact, TCK rules, malformed ATRs."""

from __future__ import annotations

from functools import reduce
from operator import xor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.atr import build_contactless_atr, parse_atr
from cardlib.errors import FormatError


def atr(h: str) -> bytes:
    return bytes.fromhex(h.replace(" ", ""))


def test_pcsc_contactless_storage_card() -> None:
    a = parse_atr(atr("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"))
    assert a.convention == "direct" and a.contactless
    assert a.protocols == (0, 1)
    assert a.historical_bytes == atr("80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00")
    assert a.tck == 0x6A and a.tck_present and a.tck_valid is True


def test_vicc_atr() -> None:
    a = parse_atr(atr("3B 95 13 81 01 80 73 FF 01 00 0B"))
    assert a.groups[0].ta == 0x13 and a.fi == 372 and a.di == 4
    assert a.protocols == (1,)
    assert a.historical_bytes == atr("80 73 FF 01 00")
    assert a.tck_valid is True and not a.contactless


def test_t0_only_has_no_tck() -> None:
    a = parse_atr(atr("3B 00"))
    assert a.protocols == (0,) and a.tck is None and a.tck_valid is None
    a = parse_atr(atr("3B 6D 00 00 80 31 80 65 B0 83 11 00 C8 83 00 90 00"))
    assert a.groups[0].tb == 0 and a.groups[0].tc == 0 and a.tck is None
    assert len(a.historical_bytes) == 13


def test_t15_makes_tck_present() -> None:
    a = parse_atr(b"\x3b\x80\x0f" + bytes((0x80 ^ 0x0F,)))
    assert a.tck_present and a.tck_valid is True
    assert a.protocols == (0,)
    with pytest.raises(FormatError, match="TCK required"):
        parse_atr(b"\x3b\x80\x0f")


def test_empty_contactless_atr() -> None:
    a = parse_atr(atr("3B 80 80 01 01"))
    assert a.contactless and a.historical_bytes == b"" and a.protocols == (0, 1)
    assert a.tck == 0x01 and a.tck_valid is True
    assert build_contactless_atr(b"") == atr("3B 80 80 01 01")
    assert [(g.index, g.td) for g in a.groups] == [(1, 0x80), (2, 0x01), (3, None)]


def test_inverse_convention_is_reported_not_inverted() -> None:
    a = parse_atr(atr("3F 65 25 00 2C 09 69 90 00"))
    assert a.convention == "inverse" and a.t0 == 0x65
    assert a.ta1 is None and a.groups[0].tb == 0x25 and a.groups[0].tc == 0x00
    assert a.historical_bytes == atr("2C 09 69 90 00") and a.tck is None


def test_fi_di_from_ta1() -> None:
    a = parse_atr(atr("3B 11 25 AA"))
    assert a.ta1 == 0x25 and a.fi == 558 and a.di == 16 and a.f_max_mhz == 6.0
    a = parse_atr(atr("3B 11 96 AA"))
    assert a.fi == 512 and a.di == 32 and a.f_max_mhz == 5.0
    a = parse_atr(atr("3B 11 7F AA"))  # RFU values are reported as 0, not refused
    assert a.fi == 0 and a.di == 0


def test_defaults_without_ta1_and_guard_time() -> None:
    a = parse_atr(atr("3B 40 05"))
    assert a.ta1 is None and a.fi == 372 and a.di == 1 and a.f_max_mhz == 5.0
    assert a.guard_time == 5
    rows = dict(a.describe())
    assert rows["TC1"] == "05" and rows["TCK"].startswith("absent")


def test_describe_rows() -> None:
    rows = dict(parse_atr(atr("3B 95 13 81 01 80 73 FF 01 00 0B")).describe())
    assert rows["TS"] == "3B (direct convention)"
    assert rows["TA1"] == "13" and rows["TD1"] == "81" and rows["TD2"] == "01"
    assert rows["protocols"] == "T=1"
    assert rows["Fi/Di"] == "Fi=372 Di=4 (f max 5 MHz)"
    assert rows["historical bytes"] == "80 73 FF 01 00"
    assert rows["TCK"] == "0B (valid)"
    assert dict(parse_atr(atr("3B 80 80 01 02")).describe())["TCK"] == "02 (INVALID)"


def test_wrong_tck_is_reported_not_refused() -> None:
    a = parse_atr(atr("3B 80 80 01 02"))
    assert a.tck_present and a.tck_valid is False


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("3B", "too short"),
        ("", "too short"),
        ("3C00", "bad TS 3C"),
        ("3B10", "TA1 announced but missing"),
        ("3B02AA", "2 historical bytes announced, 1 left"),
        ("3B0000", "trailing"),
        ("3B8080", "TD2 announced but missing"),
        ("3B808001", "TCK required"),
        ("3B" + "0F" + "00" * 40, "too long"),
    ],
)
def test_malformed(hex_: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_atr(bytes.fromhex(hex_))


def test_build_contactless() -> None:
    raw = build_contactless_atr(atr("80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00"))
    assert raw == atr("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A")
    with pytest.raises(FormatError):
        build_contactless_atr(bytes(16))


@st.composite
def structured_atrs(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    """An ATR built byte by byte from a drawn structure, and the fields it must parse to."""
    hist = draw(st.binary(max_size=10))
    protos = draw(st.lists(st.integers(0, 15), max_size=4))
    optional_byte = st.one_of(st.none(), st.integers(0, 255))
    tabc = [[draw(optional_byte) for _ in range(3)] for _ in range(len(protos) + 1)]
    tds: list[int | None] = []
    for i in range(len(tabc)):
        if i < len(protos):
            nxt = tabc[i + 1]
            ny = sum(1 << b for b, v in enumerate(nxt) if v is not None) | (8 if i + 1 < len(protos) else 0)
            tds.append((ny << 4) | protos[i])
        else:
            tds.append(None)
    y1 = sum(1 << b for b, v in enumerate(tabc[0]) if v is not None) | (8 if protos else 0)
    out = bytearray((draw(st.sampled_from([0x3B, 0x3F])), (y1 << 4) | len(hist)))
    for abc, td in zip(tabc, tds, strict=True):
        out += bytes(v for v in abc if v is not None)
        if td is not None:
            out.append(td)
    out += hist
    tck = None
    if any(p != 0 for p in protos):
        tck = reduce(xor, out[1:], 0)
        out.append(tck)
    groups = [(i + 1, *abc, td) for i, (abc, td) in enumerate(zip(tabc, tds, strict=True))]
    expected: dict[str, object] = {
        "protocols": tuple(sorted({p for p in protos if p != 15})) or (0,),
        "historical_bytes": hist,
        "groups": groups,
        "tck": tck,
        "convention": "direct" if out[0] == 0x3B else "inverse",
        "ta1": tabc[0][0],
        "guard_time": tabc[0][2] or 0,
    }
    return bytes(out), expected


@given(structured_atrs())
def test_generated_atrs(case: tuple[bytes, dict[str, object]]) -> None:
    raw, expected = case
    if len(raw) > 33:
        with pytest.raises(FormatError, match="too long"):
            parse_atr(raw)
        return
    a = parse_atr(raw)
    assert a.raw == raw
    assert a.protocols == expected["protocols"]
    assert a.historical_bytes == expected["historical_bytes"]
    assert [(g.index, g.ta, g.tb, g.tc, g.td) for g in a.groups] == expected["groups"]
    assert a.tck == expected["tck"]
    assert a.tck_present == (expected["tck"] is not None)
    assert a.tck_valid is (None if expected["tck"] is None else True)
    assert a.convention == expected["convention"]
    assert a.ta1 == expected["ta1"] and a.guard_time == expected["guard_time"]
    assert a.describe()[0] == ("ATR", raw.hex(" ").upper())


@given(st.binary(min_size=1, max_size=15))
def test_contactless_atr_round_trip(hist: bytes) -> None:
    a = parse_atr(build_contactless_atr(hist))
    assert a.contactless and a.historical_bytes == hist
    assert a.protocols == (0, 1) and a.tck_valid is True


def test_corrupted_tck_is_always_reported() -> None:
    raw = bytearray(build_contactless_atr(bytes(range(15))))
    for flip in range(1, 256):
        bad = raw[:-1] + bytes((raw[-1] ^ flip,))
        assert parse_atr(bytes(bad)).tck_valid is False


@given(st.binary(max_size=40))
def test_random_bytes_only_format_errors(raw: bytes) -> None:
    try:
        parse_atr(raw)
    except FormatError:
        pass
