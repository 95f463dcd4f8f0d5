"""APDU encoding (ISO 7816-4 §5.1): byte-exact cases, errors, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.errors import FormatError, StatusError


@pytest.mark.parametrize(
    ("hex_", "case", "data", "le"),
    [
        ("00A4040C", 1, b"", None),
        ("0084000008", 2, b"", 8),
        ("00B2010400", 2, b"", 256),
        ("00A4040008A000000632010105", 3, bytes.fromhex("A000000632010105"), None),
        ("00A4040008A00000063201010500", 4, bytes.fromhex("A000000632010105"), 256),
        ("00B0000000FFFF", 2, b"", 65535),
        ("00B00000000000", 2, b"", 65536),
    ],
)
def test_decode_cases(hex_: str, case: int, data: bytes, le: int | None) -> None:
    cmd = CommandAPDU.from_hex(hex_)
    assert (cmd.case, cmd.data, cmd.le) == (case, data, le)
    assert cmd.hex() == hex_


def test_extended_case_4_byte_exact() -> None:
    cmd = CommandAPDU(0x00, 0xD6, 0, 0, bytes(300), le=65536)
    raw = cmd.encode()
    assert raw[:7] == bytes.fromhex("00D60000" "00012C")
    assert raw[-2:] == b"\x00\x00"
    assert len(raw) == 4 + 3 + 300 + 2
    assert CommandAPDU.decode(raw) == cmd


@pytest.mark.parametrize(
    ("cmd", "hex_"),
    [
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=256), "00B0000000"),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=255), "00B00000FF"),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=257), "00B00000000101"),
        (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=65536), "00B00000000000"),
        (CommandAPDU(0x80, 0x5C, 0x00, 0x02, le=4), "805C000204"),
        (CommandAPDU(0x00, 0xA4, 0x04, 0x00, b"\xa0", le=256), "00A4040001A000"),
        (CommandAPDU(0x00, 0xD6, 0x00, 0x00, bytes(255)), "00D60000FF" + "00" * 255),
        (CommandAPDU(0x00, 0xD6, 0x00, 0x00, bytes(256)), "00D6000000" "0100" + "00" * 256),
        (CommandAPDU(0x00, 0xD6, 0x00, 0x00, b"\x01", le=65536), "00D6000000000101" "0000"),
        (CommandAPDU(0x00, 0xD6, 0x00, 0x00, b"\x01", le=256), "00D600000101" "00"),
    ],
)
def test_encode_byte_exact(cmd: CommandAPDU, hex_: str) -> None:
    assert cmd.hex() == hex_
    assert bytes(cmd) == bytes.fromhex(hex_)
    assert CommandAPDU.from_hex(hex_) == cmd


def test_forced_extended_forms() -> None:
    assert CommandAPDU(0, 0xB0, 0, 0).encode(extended=True).hex().upper() == "00B00000"
    assert CommandAPDU(0, 0xB0, 0, 0, le=256).encode(extended=True).hex().upper() == "00B00000000100"
    assert CommandAPDU(0, 0xB0, 0, 0, le=65536).encode(extended=True).hex().upper() == "00B00000000000"
    assert CommandAPDU(0, 0xD6, 0, 0, b"\x01").encode(extended=True).hex().upper() == "00D600000000" "0101"


def test_le_and_cla_helpers() -> None:
    cmd = CommandAPDU.from_hex("00B0000000")
    assert cmd.with_le(8).hex() == "00B0000008"
    assert cmd.with_le(None).case == 1
    assert cmd.with_cla(0x10).hex() == "10B0000000"
    assert CommandAPDU(0, 0xA4, 4, 0, bytearray(b"\x01")).data == b"\x01"  # type: ignore[arg-type]


def test_response_values() -> None:
    resp = ResponseAPDU.decode(bytes.fromhex("0102" "6283"))
    assert (resp.data, resp.sw, resp.sw1, resp.sw2, resp.ok) == (b"\x01\x02", 0x6283, 0x62, 0x83, False)
    assert resp.hex() == "01026283" and bytes(resp) == bytes.fromhex("01026283")
    assert ResponseAPDU.status(0x9000).encode() == b"\x90\x00"
    assert "success" in ResponseAPDU.status(0x9000).meaning
    with pytest.raises(FormatError, match="two bytes"):
        ResponseAPDU(b"", 0x10000)


def test_short_form_refused_when_too_big() -> None:
    with pytest.raises(FormatError, match="extended"):
        CommandAPDU(0, 0xD6, 0, 0, bytes(256)).encode(extended=False)


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("00A4", "too short"),
        ("00A40400080102", "Lc mismatch"),
        ("00A4040", "odd number"),
        ("00A4040G", "not a hex digit"),
        ("00A404000001", "bad APDU body"),
        ("00D600000000000102", "extended Lc of 0"),
        ("00D6000000000301020304", "extended Lc mismatch"),
        ("00A40400020102030405", "Lc mismatch"),
        ("", "too short"),
        ("0xZZ", "not a hex digit"),
    ],
)
def test_decode_errors(hex_: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        CommandAPDU.from_hex(hex_)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cla": 256}, "CLA must be a byte"),
        ({"ins": -1}, "INS must be a byte"),
        ({"p1": 0x100}, "P1 must be a byte"),
        ({"p2": -5}, "P2 must be a byte"),
        ({"le": 0}, "Le must be"),
        ({"le": 65537}, "Le must be"),
        ({"data": bytes(65536)}, "too long"),
    ],
)
def test_value_validation(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0}
    base.update(kwargs)
    with pytest.raises(FormatError, match=message):
        CommandAPDU(**base)  # type: ignore[arg-type]


def test_format_errors_are_exit_2_value_errors() -> None:
    with pytest.raises(ValueError) as info:
        CommandAPDU.from_hex("00A4040")
    assert isinstance(info.value, FormatError) and info.value.exit_code == 2


def test_response_check() -> None:
    assert ResponseAPDU.decode(bytes.fromhex("01029000")).check().data == b"\x01\x02"
    with pytest.raises(StatusError) as info:
        ResponseAPDU.decode(bytes.fromhex("9401")).check("DEBIT")
    assert info.value.sw == 0x9401
    assert "insufficient balance" in str(info.value)
    assert info.value.exit_code == 1
    with pytest.raises(FormatError):
        ResponseAPDU.decode(b"\x90")


commands = st.builds(
    CommandAPDU,
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.one_of(st.binary(max_size=300), st.binary(min_size=250, max_size=600)),
    le=st.one_of(st.none(), st.integers(1, 256), st.integers(1, 65536)),
)


@given(commands)
def test_round_trip(cmd: CommandAPDU) -> None:
    assert CommandAPDU.decode(cmd.encode()) == cmd


@given(commands)
def test_round_trip_forced_extended(cmd: CommandAPDU) -> None:
    assert CommandAPDU.decode(cmd.encode(extended=True)) == cmd


@given(st.one_of(st.binary(max_size=70), st.binary(min_size=256, max_size=600)))
def test_random_bytes_only_format_errors(raw: bytes) -> None:
    try:
        cmd = CommandAPDU.decode(raw)
    except FormatError:
        return
    assert cmd.header() == raw[:4]
    extended = len(raw) > 5 and raw[4] == 0
    assert cmd.encode(extended=extended) == raw  # what decodes, encodes back to the same bytes


@given(st.text(alphabet="0123456789abcdefABCDEF :xG-", max_size=40))
def test_random_hex_text_only_format_errors(text: str) -> None:
    try:
        CommandAPDU.from_hex(text)
    except FormatError:
        pass


def _reference_encoding(cmd: CommandAPDU, ext: bool) -> bytes:
    """ISO 7816-4 §5.1 written out plainly, to hold the encoder's fast paths to."""
    out = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2))
    if not ext:
        return out + (bytes((len(cmd.data),)) + cmd.data if cmd.data else b"") + (
            bytes((cmd.le % 256,)) if cmd.le is not None else b"")
    le = (cmd.le % 65536).to_bytes(2, "big") if cmd.le is not None else b""
    if cmd.data:
        return out + b"\x00" + len(cmd.data).to_bytes(2, "big") + cmd.data + le
    return out + (b"\x00" + le if le else b"")


@given(commands)
def test_encodings_and_decoded_values_match_the_checked_constructor(cmd: CommandAPDU) -> None:
    if not cmd.needs_extended:
        assert cmd.encode(extended=False) == _reference_encoding(cmd, False)
    assert cmd.encode(extended=True) == _reference_encoding(cmd, True)
    for raw in {cmd.encode(), cmd.encode(extended=True)}:
        decoded = CommandAPDU.decode(bytearray(raw))  # built without checks: values valid by construction
        again = CommandAPDU(decoded.cla, decoded.ins, decoded.p1, decoded.p2, decoded.data, decoded.le)
        assert decoded == again and hash(decoded) == hash(again) and repr(decoded) == repr(again)
        assert type(decoded.data) is bytes and decoded.encode() == again.encode()


@given(st.binary(min_size=2, max_size=40))
def test_decoded_response_matches_the_checked_constructor(raw: bytes) -> None:
    decoded = ResponseAPDU.decode(raw)
    again = ResponseAPDU(raw[:-2], int.from_bytes(raw[-2:], "big"))
    assert decoded == again and repr(decoded) == repr(again) and decoded.encode() == raw


def test_constructors_take_keywords_and_convert_data() -> None:
    cmd = CommandAPDU(cla=0x80, ins=0x5C, p1=0, p2=2, le=4)
    assert cmd == CommandAPDU(0x80, 0x5C, 0, 2, b"", 4) and cmd.hex() == "805C000204"
    assert CommandAPDU(0, 0xD6, 0, 0, bytearray(b"\x01")).data == b"\x01"
    assert type(CommandAPDU(0, 0xD6, 0, 0, memoryview(b"\x01")).data) is bytes
    import dataclasses

    assert dataclasses.replace(cmd, le=8).hex() == "805C000208"
    assert ResponseAPDU(data=b"", sw=0x9000).ok
    with pytest.raises(FormatError, match="SW must be two bytes"):
        ResponseAPDU(b"", 0x10000)


def test_a_response_stays_a_frozen_value_with_slots() -> None:
    import copy
    import dataclasses
    import pickle

    resp = ResponseAPDU(b"\x01", 0x9000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        resp.sw = 0x6A82  # type: ignore[misc]
    assert not hasattr(resp, "__dict__")  # one per exchange: no dict to build
    assert pickle.loads(pickle.dumps(resp)) == resp == copy.copy(resp)
    assert dataclasses.replace(resp, sw=0x6283) == ResponseAPDU(b"\x01", 0x6283)
    with pytest.raises(FormatError, match="SW must be two bytes"):
        dataclasses.replace(resp, sw=-1)
    assert {resp: 1}[ResponseAPDU(b"\x01", 0x9000)] == 1
