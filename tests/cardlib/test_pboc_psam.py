"""PSAM command wire formats (reference §2, §8): bytes, the factor order, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.keys import purse_factors
from cardlib.pboc import psam as W

H = bytes.fromhex
ISSUER = H("01011000FFFFFFFF")
SERIAL = H("00005170010170907984")


def wire(cmd: CommandAPDU) -> str:
    return cmd.encode().hex().upper()


def test_fixed_commands() -> None:
    assert wire(W.read_terminal_number()) == "00B0960006"
    assert wire(W.read_app_data()) == "00B0970019"
    assert wire(W.select_psam_app()) == "00A4040C10A0000006324D4F542E435053414D3031"
    assert W.PSAM_AID[5:] == b"MOT.CPSAM01"
    assert wire(W.credit_sam_for_purchase(H("56988A13"))) == "807200000456988A13"
    assert wire(W.encrypt_data(bytes(8))) == "80FA000008" + "00" * 8 + "08"
    assert wire(W.mac_data(H("1122334400000000"), H("841E000004"))) == "80FA05000D1122334400000000841E00000404"
    assert wire(W.InitDescrypt(W.USAGE_MAINTENANCE, 1, (H("5170010170907984"),)).to_apdu()) == (
        "801A3601085170010170907984")


def test_key_usage_bytes_carry_the_levels() -> None:
    usages = {W.USAGE_SSSE_INTERNAL: 1, W.USAGE_SSSE_EXTERNAL: 1, W.USAGE_MAINTENANCE: 1, W.USAGE_PURCHASE: 2}
    assert {u: W.InitDescrypt(u, 1, ()).levels for u in usages} == usages
    assert (W.USAGE_SSSE_INTERNAL, W.USAGE_SSSE_EXTERNAL, W.USAGE_MAINTENANCE, W.USAGE_PURCHASE) == (0x27, 0x28, 0x36, 0x42)


def test_init_sam_for_purchase_layout_lists_the_card_factor_first() -> None:
    factors = W.purchase_factors(ISSUER, SERIAL)
    assert factors == (H("5170010170907984"), ISSUER)
    assert W.derivation_factors(factors) == purse_factors(ISSUER, SERIAL)  # the one place that knows the order
    cmd = W.InitSamForPurchase(H("11223344"), 0, 0x1000, 6, H("20120229"), H("135100"), 1, 0, factors).to_apdu()
    assert wire(cmd) == ("80700000" "24" "11223344" "0000" "00001000" "06" "20120229" "135100" "01" "00"
                         "5170010170907984" "01011000FFFFFFFF" "08")
    assert W.InitSamForPurchase.from_apdu(cmd).factors == factors


def test_malformed_psam_commands() -> None:
    with pytest.raises(FormatError, match=r"24 bytes is not 20 \+ 8·N"):
        W.InitSamForPurchase.from_apdu(CommandAPDU(0x80, 0x70, 0, 0, bytes(0x14 + 4), 8))
    with pytest.raises(FormatError, match="N ≥ 1"):
        W.InitSamForPurchase.from_apdu(CommandAPDU(0x80, 0x70, 0, 0, bytes(0x14), 8))
    with pytest.raises(FormatError, match="card_random must be 4 bytes"):
        W.InitSamForPurchase(H("112233"), 0, 1, 6, H("20120229"), H("135100"), 1, 0, (bytes(8),)).to_apdu()
    with pytest.raises(FormatError, match="card_seq 65536 does not fit"):
        W.InitSamForPurchase(bytes(4), 0x10000, 1, 6, bytes(4), bytes(3), 1, 0, (bytes(8),)).to_apdu()
    with pytest.raises(FormatError, match="at least one factor"):
        W.InitSamForPurchase(bytes(4), 0, 1, 6, bytes(4), bytes(3), 1, 0, ()).to_apdu()
    with pytest.raises(FormatError, match="each of factors must be 8 bytes"):
        W.InitDescrypt(0x36, 1, (bytes(7),)).to_apdu()
    with pytest.raises(FormatError, match=r"9 bytes is not 0 \+ 8·N"):
        W.InitDescrypt.from_apdu(CommandAPDU(0x80, 0x1A, 0x36, 1, bytes(9)))
    with pytest.raises(FormatError, match="two 8-byte factors"):
        W.derivation_factors((bytes(8),))
    with pytest.raises(FormatError, match="psam.descrypt_mac"):
        W.mac_data(bytes(4), b"x")
    with pytest.raises(FormatError):
        W.InitSamResponse.decode(bytes(9))
    with pytest.raises(FormatError):
        W.credit_sam_for_purchase(bytes(3))


@given(st.binary(min_size=4, max_size=4), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 255),
       st.binary(min_size=4, max_size=4), st.binary(min_size=3, max_size=3), st.integers(0, 255), st.integers(0, 255),
       st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=3))
def test_init_sam_round_trip(rnd: bytes, seq: int, amount: int, t: int, d: bytes, tm: bytes, ver: int, alg: int,
                             factors: list[bytes]) -> None:
    req = W.InitSamForPurchase(rnd, seq, amount, t, d, tm, ver, alg, tuple(factors))
    cmd = CommandAPDU.decode(req.to_apdu().encode())
    assert len(cmd.data) == 0x14 + 8 * len(factors)
    assert W.InitSamForPurchase.from_apdu(cmd) == req


@given(st.integers(0, 0xFFFFFFFF), st.binary(min_size=4, max_size=4), st.integers(0, 255), st.integers(0, 255),
       st.lists(st.binary(min_size=8, max_size=8), max_size=3))
def test_responses_and_descrypt_round_trip(seq: int, mac: bytes, usage: int, index: int, factors: list[bytes]) -> None:
    assert W.InitSamResponse.decode(W.InitSamResponse(seq, mac).encode()) == W.InitSamResponse(seq, mac)
    req = W.InitDescrypt(usage, index, tuple(factors))
    if factors:
        assert W.InitDescrypt.from_apdu(CommandAPDU.decode(req.to_apdu().encode())) == req


@given(st.binary(min_size=4, max_size=4), st.booleans(), st.integers(1, 31))
def test_init_sam_command_without_the_apdu_checks_is_what_the_checks_build(rnd: bytes, as_bytearray: bool,
                                                                          levels: int) -> None:
    factors = tuple(bytes([i]) * 8 for i in range(levels))  # 31 levels: more than a short APDU carries
    card_random = bytearray(rnd) if as_bytearray else rnd
    cmd = W.InitSamForPurchase(card_random, 1, 2, 9, bytes(4), bytes(3), 1, 0, factors).to_apdu()  # type: ignore[arg-type]
    again = CommandAPDU(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le)
    assert type(cmd.data) is bytes and cmd == again and cmd.encode() == again.encode()
    assert W.InitSamForPurchase.from_apdu(CommandAPDU.decode(cmd.encode())).factors == factors
