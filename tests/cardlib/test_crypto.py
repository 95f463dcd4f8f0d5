"""Byte-exact vectors of reference §3 (public, recomputed) and §8 (our SM4 profile)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.crypto import (
    Algorithm,
    des_decrypt,
    des_encrypt,
    diversify,
    line_mac,
    mac_alg1,
    pad_m2,
    purse_mac,
    retail_mac,
    session_key,
    sm4_encrypt,
    tac_key,
    tdes_decrypt,
    tdes_encrypt,
)
from cardlib.errors import FormatError
from cardlib.pboc import macs

H = bytes.fromhex
TDES, SM4 = Algorithm.TDES, Algorithm.SM4
DPK = H("11223344556677888877665544332211")
DTK = H("479E71BEFF107A76138D34F84B2031FF")


def test_3des_purchase_example() -> None:
    sespk = macs.purchase_session_key(DPK, H("11223344"), 0, 1, TDES)
    assert sespk == H("003238ABC57659DD")
    date, time = H("20120229"), H("135100")
    assert macs.purchase_mac1(sespk, 0x1000, 6, H("001122334455"), date, time, TDES) == H("F15CAB75")
    assert macs.purchase_mac2(sespk, 0x1000, TDES) == H("56988A13")


def test_3des_load_example() -> None:
    seslk = macs.load_session_key(DPK, H("11223344"), 0, TDES)
    assert seslk == H("9B1D924E05595603")
    assert macs.load_mac1(seslk, 0, 0x1000, 1, H("001122334455"), TDES) == H("2988AE5A")
    assert macs.load_mac2(seslk, 0x1000, 1, H("001122334455"), H("20111221"), H("214822"), TDES) == H("3A845BF0")


def test_tac_and_diversification() -> None:
    assert tac_key(DTK) == H("54134546B4304B89")
    term = H("001122334455")
    assert macs.purchase_tac(DTK, 0x1000, 6, term, 1, H("20111221"), H("214822"), TDES) == H("926FF1B6")
    assert macs.load_tac(DTK, 0x2000, 0, 0x1000, 2, term, H("20111221"), H("214822"), TDES) == H("78644D7B")
    assert diversify(DPK, H("5170010170907984")) == H("3051877EDE406829D50CA4CA5D461F41")


def test_sm4_profile() -> None:
    sespk = macs.purchase_session_key(DPK, H("11223344"), 0, 1, SM4)
    assert sespk == H("9D9CE1CC45B1F817FA2CBF52C3FC18D5")
    date, time, term = H("20120229"), H("135100"), H("001122334455")
    assert macs.purchase_mac1(sespk, 0x1000, 6, term, date, time, SM4) == H("9454C578")
    assert macs.purchase_mac2(sespk, 0x1000, SM4) == H("1553DDE1")
    assert macs.purchase_tac(DTK, 0x1000, 6, term, 1, date, time, SM4) == H("B0EE23A1")
    assert diversify(DPK, H("5170010170907984"), SM4) == H("0AB0BF02ABC66125B63BB8E388ABB413")


def test_gbt_32907_block() -> None:
    key = H("0123456789abcdeffedcba9876543210")
    assert sm4_encrypt(key, key) == H("681edf34d206965e86b3e94f536e4246")


def test_padding_method_2() -> None:
    assert pad_m2(b"") == H("8000000000000000")
    assert pad_m2(bytes(8)) == bytes(8) + H("8000000000000000")
    assert len(pad_m2(b"x" * 15, 16)) == 16


def test_mac_alg1_by_hand() -> None:
    key, data = H("0123456789ABCDEF"), bytes(range(13))
    blocks = pad_m2(data)
    state = bytes(8)
    for i in range(0, len(blocks), 8):
        state = des_encrypt(key, bytes(a ^ b for a, b in zip(state, blocks[i : i + 8], strict=True)))
    assert mac_alg1(key, data) == state


def test_retail_mac_by_hand() -> None:
    key, data, iv = H("0123456789ABCDEFFEDCBA9876543210"), bytes(range(20)), H("1122334400000000")
    blocks = pad_m2(data)
    state = iv
    for i in range(0, len(blocks), 8):
        state = des_encrypt(key[:8], bytes(a ^ b for a, b in zip(state, blocks[i : i + 8], strict=True)))
    expected = des_encrypt(key[:8], des_decrypt(key[8:], state))
    assert retail_mac(key, data, iv) == expected
    assert line_mac(key, data, iv) == expected[:4]


def test_session_key_sizes_and_errors() -> None:
    assert len(session_key(DPK, bytes(8))) == 8
    assert len(session_key(DPK, bytes(8), SM4)) == 16
    with pytest.raises(FormatError, match="16 bytes"):
        tdes_encrypt(bytes(15), bytes(8))
    with pytest.raises(FormatError, match="multiple of 8"):
        tdes_encrypt(DPK, bytes(7))
    with pytest.raises(FormatError) as info:
        diversify(DPK, bytes(7))
    assert DPK.hex() not in str(info.value).lower()


def test_algorithm_ids() -> None:
    assert Algorithm.from_alg_id(0) is TDES and Algorithm.from_alg_id(4) is SM4
    assert Algorithm.parse("SM4") is SM4
    with pytest.raises(FormatError):
        Algorithm.from_alg_id(2)
    with pytest.raises(FormatError):
        Algorithm.parse("aes")


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=64).filter(lambda b: len(b) % 8 == 0))
def test_3des_round_trip(key: bytes, data: bytes) -> None:
    assert tdes_decrypt(key, tdes_encrypt(key, data)) == data


@given(st.binary(max_size=40), st.sampled_from([TDES, SM4]))
def test_purse_mac_is_4_bytes_and_keyed(data: bytes, alg: Algorithm) -> None:
    k1 = session_key(DPK, bytes(8), alg)
    assert len(purse_mac(k1, data, alg)) == 4
    # padding method 2 keeps a trailing 00 byte significant
    assert purse_mac(k1, data, alg) != purse_mac(k1, data + b"\x00", alg)
