"""PN532 HSU frames (UM0701-02 §6.2.1), byte-exact, and a stream parser that survives anything."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import ProtocolError
from cardlib.readers.pn532_frames import (
    ACK,
    ERROR,
    NACK,
    SEL_RES_ISO14443_4,
    WAKEUP,
    Frame,
    FrameKind,
    FrameParser,
    Target,
    build,
    command,
    parse_frame,
    parse_targets,
    response,
)

H = bytes.fromhex


def test_byte_exact_frames_from_the_reference() -> None:
    assert command(0x02) == H("0000FF02FED4022A00")  # GetFirmwareVersion
    assert command(0x14, b"\x01") == H("0000FF03FDD4140117" "00")  # SAMConfiguration, as libnfc sends it
    assert command(0x52, b"\x00") == H("0000FF03FDD45200DA00")  # InRelease
    assert command(0x4A, b"\x01\x00") == H("0000FF04FCD44A0100E100")  # InListPassiveTarget, one 14443-A
    assert response(0x02, H("32010607")) == H("0000FF06FAD50332010607E800")
    assert ACK == H("0000FF00FF00") and NACK == H("0000FFFF0000") and ERROR == H("0000FF01FF7F8100")
    assert WAKEUP == H("5555") + bytes(14)


def test_parse_each_kind() -> None:
    assert parse_frame(H("0000FF02FED4022A00")) == Frame(FrameKind.DATA, 0xD4, b"\x02")
    assert parse_frame(ACK).kind is FrameKind.ACK
    assert parse_frame(NACK).kind is FrameKind.NACK
    assert parse_frame(ERROR).kind is FrameKind.ERROR
    frame = parse_frame(H("0000FF06FAD50332010607E800"))
    assert (frame.tfi, frame.code, frame.data[1:], frame.extended) == (0xD5, 0x03, H("32010607"), False)


def test_largest_normal_and_smallest_extended_frame() -> None:
    normal = build(0xD4, bytes(254))
    assert normal[3:5] == H("FF01") and len(normal) == 5 + 255 + 2
    extended = build(0xD4, bytes(255))
    assert extended[:8] == H("0000FFFFFF" "0100FF")  # LENM 01 LENL 00, LCS FF
    assert extended[-2:] == H("2C00")  # DCS of D4 + zeros
    assert parse_frame(extended) == Frame(FrameKind.DATA, 0xD4, bytes(255), extended=True)
    assert parse_frame(normal) == Frame(FrameKind.DATA, 0xD4, bytes(254))


def test_parser_kinds_garbage_and_splits() -> None:
    p = FrameParser()
    stream = WAKEUP + ACK + b"\xaa\xbb" + response(0x02, H("32010607")) + ERROR + NACK + build(0xD5, bytes(300))
    frames: list[Frame] = []
    for i in range(0, len(stream), 3):
        frames += p.feed(stream[i : i + 3])
    kinds = [f.kind for f in frames]
    assert kinds == [FrameKind.ACK, FrameKind.DATA, FrameKind.ERROR, FrameKind.NACK, FrameKind.DATA]
    assert frames[1].tfi == 0xD5 and frames[1].data == H("0332010607")
    assert frames[4].extended and frames[4].data == bytes(300)
    assert p.pending() <= 1


def test_bad_checksums_are_typed_errors_and_the_parser_resyncs() -> None:
    good = command(0x02)
    bad_lcs = good[:4] + b"\x00" + good[5:]
    bad_dcs = good[:-2] + b"\x00\x00"
    bad_ext = H("0000FFFFFF010001") + bytes(300)
    for raw, problem in ((bad_lcs, "length checksum"), (bad_dcs, "data checksum"), (bad_ext, "extended frame")):
        first = FrameParser().feed(raw)[0]
        assert first.kind is FrameKind.BAD and problem in first.problem
        assert isinstance(first.error, ProtocolError)
        with pytest.raises(ProtocolError, match=problem):
            parse_frame(raw)
    # a corrupted frame followed by a good one: the good one still comes out
    frames = FrameParser().feed(bad_dcs + good)
    assert [f.kind for f in frames] == [FrameKind.BAD, FrameKind.DATA] and frames[1].data == b"\x02"
    assert Frame(FrameKind.DATA).error is None


def test_parse_frame_refuses_partial_and_double_frames() -> None:
    with pytest.raises(ProtocolError, match="not a complete"):
        parse_frame(command(0x02)[:-3])
    with pytest.raises(ProtocolError, match="more than one"):
        parse_frame(ACK + command(0x02))


def test_length_limit() -> None:
    (frame,) = FrameParser(max_len=100).feed(build(0xD5, bytes(200)))[:1]
    assert frame.kind is FrameKind.BAD and "out of range" in frame.problem


@given(st.binary(min_size=0, max_size=300), st.sampled_from([0xD4, 0xD5]))
def test_round_trip(payload: bytes, tfi: int) -> None:
    raw = build(tfi, payload)
    assert (raw[3:5] == H("FFFF")) == (len(payload) > 254)
    frame = parse_frame(b"\x00\x00" + raw)
    assert frame.tfi == tfi and frame.data == payload and frame.extended == (len(payload) > 254)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=17))
def test_random_bytes_never_raise_anything_but_protocol_error(raw: bytes, step: int) -> None:
    p = FrameParser()
    for i in range(0, len(raw), step):
        for frame in p.feed(raw[i : i + step]):
            assert frame.kind in FrameKind
            assert (frame.error is not None) == (frame.kind is FrameKind.BAD)
    try:
        parse_frame(raw)
    except ProtocolError:
        pass


@given(st.lists(st.binary(min_size=1, max_size=260), max_size=5), st.binary(max_size=20),
       st.integers(min_value=1, max_value=40))
def test_frames_in_noise_come_out_in_order(payloads: list[bytes], noise: bytes, step: int) -> None:
    """Noise that cannot form a start code (no 00, no FF) never hides a frame."""
    noise = noise.replace(b"\x00", b"\x01").replace(b"\xff", b"\x01")
    stream = b"".join(noise + build(0xD5, p) for p in payloads)
    p = FrameParser()
    frames: list[Frame] = []
    for i in range(0, len(stream), step):
        frames += p.feed(stream[i : i + step])
    assert [f.data for f in frames if f.kind is FrameKind.DATA] == payloads


def test_a_target_is_written_as_the_driver_reads_it() -> None:
    """InListPassiveTarget's answer (UM0701-02 §7.3.5): Tg, SENS_RES, SEL_RES, the UID with its
    length, the ATS; the emulator writes each target with ``Target.encode`` and the driver reads
    the answer with ``parse_targets``: one layout."""
    ats = H("0978807002") + b"\x80\x73\xc8\x21"
    target = Target(1, H("0044"), SEL_RES_ISO14443_4, H("04115A3C118021"), ats)
    assert target.encode() == H("01004420") + H("0704115A3C118021") + ats
    assert parse_targets(b"\x01" + target.encode()) == [target]
    assert target.historical_bytes == b"\x80\x73\xc8\x21"


@given(st.lists(st.tuples(st.binary(min_size=2, max_size=2), st.sampled_from([4, 7]),
                          st.binary(min_size=0, max_size=15)), min_size=1, max_size=2))
def test_targets_round_trip(items: list[tuple[bytes, int, bytes]]) -> None:
    targets = [Target(tg, sens, SEL_RES_ISO14443_4, bytes(range(n)), bytes((len(hist) + 5, 0x78, 0x80, 0x70, 0x02)) + hist)
               for tg, (sens, n, hist) in enumerate(items, 1)]
    assert parse_targets(bytes((len(targets),)) + b"".join(t.encode() for t in targets)) == targets
