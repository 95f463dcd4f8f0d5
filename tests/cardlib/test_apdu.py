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
    ],
)
def test_decode_errors(hex_: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        CommandAPDU.from_hex(hex_)


@pytest.mark.parametrize("kwargs", [{"cla": 256}, {"ins": -1}, {"le": 0}, {"le": 65537}])
def test_value_validation(kwargs: dict[str, int]) -> None:
    base = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0}
    base.update(kwargs)
    with pytest.raises(FormatError):
        CommandAPDU(**base)  # type: ignore[arg-type]


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


@given(st.binary(max_size=70))
def test_random_bytes_only_format_errors(raw: bytes) -> None:
    try:
        cmd = CommandAPDU.decode(raw)
    except FormatError:
        return
    assert cmd.header() == raw[:4]
