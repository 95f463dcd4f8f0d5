"""PN532 HSU frames (UM0701-02 §6.2), byte-exact, and a stream parser that survives anything."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cardlib.readers.pn532_frames import ACK, ERROR, NACK, FrameParser, build, command, response

H = bytes.fromhex


def test_byte_exact_frames() -> None:
    assert command(0x02) == H("0000FF02FED4022A00")
    assert command(0x14, b"\x01") == H("0000FF03FDD4140117 00".replace(" ", ""))
    assert command(0x52, b"\x00") == H("0000FF03FDD45200DA00")
    assert response(0x02, H("32010607")) == H("0000FF06FAD50332010607E800")
    assert ACK == H("0000FF00FF00") and NACK == H("0000FFFF0000") and ERROR == H("0000FF01FF7F8100")


def test_extended_frame() -> None:
    data = bytes(range(256)) + b"\x01\x02"
    raw = build(0xD4, b"\x40\x01" + data)
    assert raw[:5] == H("0000FFFFFF")
    n = 1 + 2 + len(data)
    assert raw[5:8] == bytes((n >> 8, n & 0xFF, (-(n >> 8) - (n & 0xFF)) & 0xFF))
    (frame,) = FrameParser().feed(raw)
    assert frame.kind == "data" and frame.data == b"\x40\x01" + data


def test_parser_kinds_garbage_and_splits() -> None:
    p = FrameParser()
    stream = H("5555000000") + ACK + b"\xaa\xbb" + response(0x02, H("32010607")) + ERROR + NACK
    frames = []
    for i in range(0, len(stream), 3):
        frames += p.feed(stream[i : i + 3])
    assert [f.kind for f in frames] == ["ack", "data", "error", "nack"]
    assert frames[1].tfi == 0xD5 and frames[1].data == H("0332010607")


def test_bad_checksums_reported() -> None:
    good = command(0x02)
    bad_lcs = good[:4] + b"\x00" + good[5:]
    bad_dcs = good[:-2] + b"\x00\x00"
    assert FrameParser().feed(bad_lcs)[0].problem == "length checksum wrong"
    assert FrameParser().feed(bad_dcs)[0].problem == "data checksum wrong"


@given(st.binary(min_size=0, max_size=300), st.sampled_from([0xD4, 0xD5]))
def test_round_trip(payload: bytes, tfi: int) -> None:
    frames = FrameParser().feed(b"\x00\x00" + build(tfi, payload))
    assert frames[-1].kind in ("data", "error")
    if frames[-1].kind == "data":
        assert frames[-1].tfi == tfi and frames[-1].data == payload


@given(st.binary(max_size=200))
def test_random_bytes_never_raise(raw: bytes) -> None:
    p = FrameParser()
    for frame in p.feed(raw):
        assert frame.kind in ("data", "ack", "nack", "error", "bad")
