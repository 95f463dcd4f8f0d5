"""SSSE wire formats: EF05/EF06 TLV records (社会保障(个人)卡规范, cardlib/ssse/files.py), the card
identifier, SSN check digits and the PIN/authentication commands (the project's profile), byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.ssse import commands as C
from cardlib.ssse.files import (
    ORG_SIZE,
    RECORD_NUMBERS,
    T_NAME,
    HolderRecords,
    IssuerRecords,
    card_identifier,
    card_serial,
    parse_record,
    record,
    ssn_check_digit,
)

# the card identifier of a public reader's example: serial 99110145, F-padded on the right
ISSUER = IssuerRecords(bytes.fromhex("330300D15600000599110145FFFFFFFF"), 0x03, "3.00",
                       bytes.fromhex("33030001") + bytes(8), date(2024, 1, 1), date(2034, 12, 31), "330001234")
HOLDER = HolderRecords("11010519491231002X", "吕庆军", 1, 1, bytes.fromhex("341800"), date(1958, 3, 2))


def values(records: list[bytes]) -> dict[int, bytes]:
    return {r[0]: parse_record(r, r[0]) for r in records}


def test_ef05_records_byte_for_byte() -> None:
    assert ISSUER.records() == [
        bytes.fromhex("0110330300D15600000599110145FFFFFFFF"),  # the public example, byte for byte
        bytes.fromhex("020103"),
        bytes.fromhex("0304") + b"3.00",
        bytes.fromhex("040C33030001") + bytes(8),  # tag 04: 12 bytes
        bytes.fromhex("050420240101"),
        bytes.fromhex("060420341231"),
        bytes.fromhex("0709") + b"330001234",
    ]
    assert IssuerRecords.from_records(values(ISSUER.records())) == ISSUER
    assert ISSUER.region == "330300"
    assert card_serial(ISSUER.card_id) == 99110145
    # a shorter organisation is padded to tag 04's 12 bytes, a longer one cut
    assert IssuerRecords(*[*vars(ISSUER).values()][:3], b"\x33", *[*vars(ISSUER).values()][4:]).records()[3] == (
        bytes((0x04, ORG_SIZE, 0x33)) + bytes(ORG_SIZE - 1))


def test_records_by_number_as_public_readers_read_them() -> None:
    """EF05 record n is tag n, EF06 record n is tag n + 7; by the current EF (P2 04) or by SFI."""
    assert RECORD_NUMBERS[0x01] == (0xEF05, 1) and RECORD_NUMBERS[0x07] == (0xEF05, 7)
    assert RECORD_NUMBERS[0x08] == (0xEF06, 1) and RECORD_NUMBERS[0x0D] == (0xEF06, 6)
    assert C.select_ef(0xEF05).encode() == bytes.fromhex("00A4020002EF05")
    assert C.read_by_number(0x0D).encode() == bytes.fromhex("00B2060400")
    assert C.read_by_number(0x02, "sfi").encode() == bytes.fromhex("00B2022C00")
    assert C.read_by_number(0x0D, "sfi").encode() == bytes.fromhex("00B2063400")


def test_ef06_records_gbk_name_zero_padded_and_bcd_birth_date() -> None:
    records = HOLDER.records()
    assert records[0] == bytes.fromhex("0812") + b"11010519491231002X"
    assert records[1] == bytes.fromhex("091E") + bytes.fromhex("C2C0C7ECBEFC") + bytes(24)  # 吕庆军 in GBK
    assert records[2:] == [bytes.fromhex("0A0101"), bytes.fromhex("0B0101"), bytes.fromhex("0C03341800"),
                           bytes.fromhex("0D0419580302")]
    assert HolderRecords.from_records(values(records)) == HOLDER
    assert HOLDER.masked() == "吕** 110105************"


def test_malformed_records_are_format_errors() -> None:
    with pytest.raises(FormatError, match="malformed"):
        parse_record(bytes.fromhex("0905C2C0"))
    with pytest.raises(FormatError, match="expected record 09"):
        parse_record(bytes.fromhex("0801AA"), T_NAME)
    with pytest.raises(FormatError, match="EF06 incomplete"):
        HolderRecords.from_records(values(HOLDER.records()[:3]))
    with pytest.raises(FormatError, match="BCD date"):
        IssuerRecords.from_records({**values(ISSUER.records()), 5: bytes.fromhex("2024AA01")})
    with pytest.raises(FormatError):
        record(1, bytes(256))


@given(tag=st.integers(0, 255), value=st.binary(max_size=255))
def test_record_round_trip(tag: int, value: bytes) -> None:
    assert parse_record(record(tag, value), tag) == value


@given(st.text(alphabet="王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高伟芳娜敏静磊洋", min_size=1, max_size=15))
def test_gbk_names_round_trip(name: str) -> None:
    holder = HolderRecords("110105194912310021", name, 2, 1, bytes(3), date(2000, 2, 29))
    raw = holder.records()[1]
    assert len(raw) == 32 and raw.endswith(bytes(30 - 2 * len(name)))
    assert HolderRecords.from_records(values(holder.records())).name == name


def test_card_identifier_layout() -> None:
    assert card_identifier("330300", 1) == bytes.fromhex("330300D156000005000000000001FFFF")
    # images written while the padding was on the left still give their serial
    assert card_serial(bytes.fromhex("330300D156000005FFFF000000000001")) == 1
    assert card_identifier("110000", 9876543210123456) == bytes.fromhex("110000D1560000059876543210123456")
    assert card_serial(card_identifier("330300", 42)) == 42
    for region, serial in (("33030", 1), ("33O300", 1), ("330300", 10**16), ("330300", -1)):
        with pytest.raises(FormatError):
            card_identifier(region, serial)
    with pytest.raises(FormatError):
        card_serial(bytes.fromhex("330300A000000632FFFF000000000001"))


@given(st.integers(0, 10**16 - 1))
def test_card_serial_round_trip(serial: int) -> None:
    assert card_serial(card_identifier("440300", serial)) == serial


def test_ssn_check_digits_iso_7064_mod_11_2() -> None:
    # published specimen numbers of GB 11643
    assert ssn_check_digit("11010519491231002") == "X"
    assert ssn_check_digit("44052418800101001") == "4"
    assert ssn_check_digit("51010819850101001") == "6"  # by hand: weighted sum 171, 171 mod 11 = 6


def test_pin_and_authentication_commands_byte_for_byte() -> None:
    assert C.verify_pin("123456").encode() == bytes.fromhex("0020000003123456")
    assert C.pin_query().encode() == bytes.fromhex("00200000")
    assert C.change_pin("123456", "654321").encode() == bytes.fromhex("0024000006123456654321")
    assert C.unblock_pin("888888", "135790").encode() == bytes.fromhex("002C000006888888135790")
    assert C.internal_authenticate(bytes(range(8))).encode() == bytes.fromhex("00880001080001020304050607" "08")
    assert C.internal_authenticate(bytes(8), key_id=2).encode()[:5] == bytes.fromhex("0088000208")
    assert C.external_authenticate(bytes.fromhex("1122334455667788")).encode() == \
        bytes.fromhex("00820001081122334455667788")
    assert C.challenge().encode() == bytes.fromhex("0084000008")
    assert C.select_ssse().encode() == bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF00")
    assert C.read_ssse_record(0x09, sfi=6).encode() == bytes.fromhex("00B2093000")
    for bad in ("12345", "1234567", "12345a", "１２３４５６"):
        with pytest.raises(FormatError):
            C.verify_pin(bad)
    with pytest.raises(FormatError):
        C.internal_authenticate(bytes(7))
    with pytest.raises(FormatError):
        C.external_authenticate(bytes(9))


def test_card_side_parsers() -> None:
    assert C.parse_verify(C.verify_pin("123456")) == bytes.fromhex("123456")
    assert C.parse_verify(C.pin_query()) is None
    assert C.parse_pin_pair(C.change_pin("123456", "654321")) == (bytes.fromhex("123456"), bytes.fromhex("654321"))
    assert C.parse_auth(C.internal_authenticate(bytes(16), 3), 16) == (3, bytes(16))
    cases: list[tuple[Callable[[], object], int]] = [
        (lambda: C.parse_verify(CommandAPDU(0x00, 0x20, 0x00, 0x00, b"\x12\x34")), 0x6700),
        (lambda: C.parse_verify(CommandAPDU(0x00, 0x20, 0x01, 0x00, b"\x12\x34\x56")), 0x6A86),
        (lambda: C.parse_pin_pair(CommandAPDU(0x00, 0x24, 0x00, 0x00, bytes(5))), 0x6700),
        (lambda: C.parse_pin_pair(CommandAPDU(0x00, 0x2C, 0x00, 0x81, bytes(6))), 0x6A86),
        (lambda: C.parse_auth(C.internal_authenticate(bytes(8)), 16), 0x6700),
        (lambda: C.parse_auth(CommandAPDU(0x00, 0x88, 0x01, 0x01, bytes(8)), 8), 0x6A86),
    ]
    for parse, sw in cases:
        with pytest.raises(C.MalformedCommand) as info:
            parse()
        assert info.value.sw == sw
