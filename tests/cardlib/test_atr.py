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
def structured_atrs(draw: st.DrawFn) -> tuple[bytes, tuple[int, ...], bytes]:
    hist = draw(st.binary(max_size=8))
    protos = draw(st.lists(st.sampled_from([0, 1, 15]), max_size=3))
    groups = []
    for _ in range(len(protos) + 1):
        groups.append({k: draw(st.one_of(st.none(), st.integers(0, 255))) for k in ("ta", "tb", "tc")})
    out = bytearray()
    y = sum(1 << b for b, k in enumerate(("ta", "tb", "tc")) if groups[0][k] is not None)
    if protos:
        y |= 8
    out += bytes((0x3B, (y << 4) | len(hist)))
    for i, g in enumerate(groups):
        out += bytes(g[k] for k in ("ta", "tb", "tc") if g[k] is not None)
        if i < len(protos):
            nxt = groups[i + 1]
            ny = sum(1 << b for b, k in enumerate(("ta", "tb", "tc")) if nxt[k] is not None)
            if i + 1 < len(protos):
                ny |= 8
            out.append((ny << 4) | protos[i])
    out += hist
    if any(p != 0 for p in protos):
        out.append(reduce(xor, out[1:], 0))
    offered = tuple(sorted({p for p in protos if p != 15})) or (0,)
    return bytes(out), offered, hist


@given(structured_atrs())
def test_generated_atrs(case: tuple[bytes, tuple[int, ...], bytes]) -> None:
    raw, protocols, hist = case
    a = parse_atr(raw)
    assert a.protocols == protocols
    assert a.historical_bytes == hist
    assert a.tck_valid in (True, None)


@given(st.binary(max_size=40))
def test_random_bytes_only_format_errors(raw: bytes) -> None:
    try:
        parse_atr(raw)
    except FormatError:
        pass
