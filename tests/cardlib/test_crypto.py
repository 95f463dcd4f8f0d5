"""Ciphers and MACs: published vectors, reference §3/§8 vectors, and hand computations."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib import crypto
from cardlib.crypto import (
    Algorithm,
    constant_time_equal,
    decrypt_block,
    des_decrypt,
    des_encrypt,
    diversify,
    diversify_levels,
    encrypt_block,
    line_mac,
    mac_alg1,
    pad_m2,
    purse_mac,
    retail_mac,
    session_key,
    sm4_cbc_encrypt,
    sm4_cbc_mac,
    sm4_decrypt,
    sm4_encrypt,
    tac_key,
    tdes_cbc_encrypt,
    tdes_decrypt,
    tdes_encrypt,
)
from cardlib.errors import FormatError

H = bytes.fromhex
TDES, SM4 = Algorithm.TDES, Algorithm.SM4
MK = H("11223344556677888877665544332211")
DTK = H("479E71BEFF107A76138D34F84B2031FF")
FACTOR = H("5170010170907984")

keys16 = st.binary(min_size=16, max_size=16)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _cbc_by_hand(encrypt_one: object, data: bytes, iv: bytes) -> bytes:
    """CBC built from single-block ECB calls, independent of the library's CBC mode."""
    size, state, out = len(iv), iv, b""
    for i in range(0, len(data), size):
        state = encrypt_one(_xor(state, data[i : i + size]))  # type: ignore[operator]
        out += state
    return out


# --- published block-cipher vectors --------------------------------------------------------


def test_des_published_vector() -> None:
    # the worked DES example found in most textbooks (FIPS 46 walk-throughs)
    key, plain, cipher = H("133457799BBCDFF1"), H("0123456789ABCDEF"), H("85E813540F0AB405")
    assert des_encrypt(key, plain) == cipher
    assert des_decrypt(key, cipher) == plain


def test_tdes_is_ede_with_k1_k2_k1() -> None:
    k1, k2, block = H("0123456789ABCDEF"), H("FEDCBA9876543210"), H("1122334455667788")
    expected = des_encrypt(k1, des_decrypt(k2, des_encrypt(k1, block)))
    assert tdes_encrypt(k1 + k2, block) == expected
    assert tdes_decrypt(k1 + k2, expected) == block
    # with K1 = K2 it degenerates to single DES
    assert tdes_encrypt(k1 + k1, block) == des_encrypt(k1, block)


def test_gbt_32907_block() -> None:
    key = H("0123456789abcdeffedcba9876543210")
    assert sm4_encrypt(key, key) == H("681edf34d206965e86b3e94f536e4246")
    assert sm4_decrypt(key, H("681edf34d206965e86b3e94f536e4246")) == key


def test_cbc_modes_match_hand_chaining() -> None:
    data = bytes(range(48))
    iv8, iv16 = H("0102030405060708"), bytes(range(16, 32))
    assert tdes_cbc_encrypt(MK, data, iv8) == _cbc_by_hand(lambda b: tdes_encrypt(MK, b), data, iv8)
    assert sm4_cbc_encrypt(MK, data, iv16) == _cbc_by_hand(lambda b: sm4_encrypt(MK, b), data, iv16)
    assert tdes_cbc_encrypt(MK, data)[:8] == tdes_encrypt(MK, data[:8])  # default IV is zero


def test_encrypt_block_dispatches_on_algorithm() -> None:
    block16 = bytes(range(16))
    assert encrypt_block(MK, block16, TDES) == tdes_encrypt(MK, block16)
    assert encrypt_block(MK, block16, SM4) == sm4_encrypt(MK, block16)
    assert decrypt_block(MK, encrypt_block(MK, block16, SM4), SM4) == block16
    assert decrypt_block(MK, encrypt_block(MK, block16, TDES), TDES) == block16


# --- ISO/IEC 9797-1 -------------------------------------------------------------------------


def test_padding_method_2() -> None:
    assert pad_m2(b"") == H("8000000000000000")
    assert pad_m2(H("01020304050607")) == H("0102030405060780")
    assert pad_m2(bytes(8)) == bytes(8) + H("8000000000000000")
    assert pad_m2(b"x" * 15, 16) == b"x" * 15 + b"\x80"
    assert pad_m2(b"x" * 16, 16) == b"x" * 16 + b"\x80" + bytes(15)


@given(st.binary(max_size=70), st.sampled_from([8, 16]))
def test_padding_method_2_properties(data: bytes, block: int) -> None:
    padded = pad_m2(data, block)
    assert len(padded) % block == 0 and 1 <= len(padded) - len(data) <= block
    assert padded[: len(data)] == data and padded[len(data)] == 0x80
    assert not any(padded[len(data) + 1 :])


def test_mac_alg1_by_hand() -> None:
    key, data = H("0123456789ABCDEF"), bytes(range(13))
    state = _cbc_by_hand(lambda b: des_encrypt(key, b), pad_m2(data), bytes(8))[-8:]
    assert mac_alg1(key, data) == state
    iv = H("A1A2A3A4A5A6A7A8")
    assert mac_alg1(key, data, iv) == _cbc_by_hand(lambda b: des_encrypt(key, b), pad_m2(data), iv)[-8:]


@pytest.mark.parametrize("size", [0, 7, 8, 20])
def test_retail_mac_by_hand(size: int) -> None:
    key, iv = H("0123456789ABCDEFFEDCBA9876543210"), H("1122334400000000")
    data = bytes(range(size))
    state = _cbc_by_hand(lambda b: des_encrypt(key[:8], b), pad_m2(data), iv)[-8:]
    expected = des_encrypt(key[:8], des_decrypt(key[8:], state))
    assert retail_mac(key, data, iv) == expected
    assert line_mac(key, data, iv) == expected[:4]
    # with both halves equal, MAC algorithm 3 equals MAC algorithm 1
    assert retail_mac(key[:8] * 2, data, iv) == mac_alg1(key[:8], data, iv)


def test_sm4_cbc_mac_and_line_mac() -> None:
    data, iv8 = bytes(range(21)), H("CAFEBABE00000000")
    expected = _cbc_by_hand(lambda b: sm4_encrypt(MK, b), pad_m2(data, 16), bytes(16))[-16:]
    assert sm4_cbc_mac(MK, data) == expected
    assert line_mac(MK, data, iv8, SM4) == sm4_cbc_mac(MK, data, iv8 + bytes(8))[:4]
    assert line_mac(MK, data, iv8 + bytes(8), SM4) == line_mac(MK, data, iv8, SM4)


# --- reference §3 / §8 primitives -----------------------------------------------------------


def test_diversification_vectors() -> None:
    assert diversify(MK, FACTOR) == H("3051877EDE406829D50CA4CA5D461F41")
    assert diversify(MK, FACTOR, SM4) == H("0AB0BF02ABC66125B63BB8E388ABB413")
    # the formula of §3 by hand: 3DES_MK(F) ‖ 3DES_MK(~F)
    inverted = bytes(b ^ 0xFF for b in FACTOR)
    assert diversify(MK, FACTOR) == tdes_encrypt(MK, FACTOR) + tdes_encrypt(MK, inverted)


def test_diversify_levels_keeps_the_order_given() -> None:
    f1, f2 = H("99990000FFFFFFFF"), H("0000000000000001")
    for alg in (TDES, SM4):
        two = diversify_levels(MK, [f1, f2], alg)
        assert two == diversify(diversify(MK, f1, alg), f2, alg)
        assert two != diversify_levels(MK, [f2, f1], alg)
        assert diversify_levels(MK, [], alg) == MK


def test_session_keys() -> None:
    seed = H("1122334400000001")
    assert session_key(MK, seed) == H("003238ABC57659DD")
    assert session_key(MK, seed, SM4) == H("9D9CE1CC45B1F817FA2CBF52C3FC18D5")
    assert session_key(MK, seed, SM4) == sm4_encrypt(MK, seed + H("8000000000000000"))


def test_tac_key_fold() -> None:
    assert tac_key(DTK) == H("54134546B4304B89")
    assert tac_key(DTK, SM4) == DTK


def test_purse_mac_profiles() -> None:
    data = H("00001000")
    assert purse_mac(H("003238ABC57659DD"), data) == H("56988A13")
    assert purse_mac(H("003238ABC57659DD"), data) == mac_alg1(H("003238ABC57659DD"), data)[:4]
    sespk = H("9D9CE1CC45B1F817FA2CBF52C3FC18D5")
    assert purse_mac(sespk, data, SM4) == H("1553DDE1") == sm4_cbc_mac(sespk, data)[:4]


def test_algorithm_ids() -> None:
    assert TDES.alg_id == 0x00 and SM4.alg_id == 0x04
    assert TDES.block_size == 8 and SM4.block_size == 16
    assert Algorithm.from_alg_id(0) is TDES and Algorithm.from_alg_id(4) is SM4
    assert Algorithm.parse("SM4") is SM4 and Algorithm.parse("3des") is TDES
    with pytest.raises(FormatError, match="02"):
        Algorithm.from_alg_id(2)
    with pytest.raises(FormatError, match="3des or sm4"):
        Algorithm.parse("aes")


def test_constant_time_equal() -> None:
    assert constant_time_equal(H("01020304"), H("01020304"))
    assert not constant_time_equal(H("01020304"), H("01020305"))
    assert not constant_time_equal(H("01020304"), H("010203"))


# --- errors ---------------------------------------------------------------------------------


SECRET = H("A5C3E1F0B2D49687")  # a distinctive key, searched for in messages


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: des_encrypt(SECRET[:7], bytes(8)), "DES key must be 8 bytes, got 7"),
        (lambda: tdes_encrypt(SECRET + SECRET[:7], bytes(8)), "3DES key must be 16 bytes, got 15"),
        (lambda: tdes_encrypt(SECRET * 2, bytes(7)), "multiple of 8"),
        (lambda: sm4_encrypt(SECRET * 2, bytes(8)), "multiple of 16"),
        (lambda: sm4_encrypt(SECRET, bytes(16)), "SM4 key must be 16 bytes"),
        (lambda: tdes_cbc_encrypt(SECRET * 2, bytes(8), bytes(4)), "IV must be 8 bytes"),
        (lambda: mac_alg1(SECRET * 2, b""), "DES key must be 8 bytes, got 16"),
        (lambda: retail_mac(SECRET, b""), "retail MAC key must be 16 bytes"),
        (lambda: sm4_cbc_mac(SECRET * 2, b"", bytes(8)), "IV must be 16 bytes"),
        (lambda: diversify(SECRET * 2, bytes(7)), "factor must be 8 bytes"),
        (lambda: diversify(SECRET, bytes(8)), "master key must be 16 bytes"),
        (lambda: session_key(SECRET * 2, bytes(6)), "input must be 8 bytes"),
        (lambda: session_key(SECRET, bytes(8), SM4), "card key must be 16 bytes"),
        (lambda: tac_key(SECRET), "DTK must be 16 bytes"),
        (lambda: line_mac(SECRET * 2, b"", bytes(5), SM4), "IV must be 8 or 16 bytes"),
        (lambda: purse_mac(SECRET * 2, b""), "DES key must be 8 bytes"),
    ],
)
def test_length_errors_name_the_problem_not_the_key(call: object, message: str) -> None:
    with pytest.raises(FormatError, match=message) as info:
        call()  # type: ignore[operator]
    text = str(info.value) + repr(info.value)
    for part in (SECRET.hex(), SECRET.hex().upper(), SECRET[:4].hex(), SECRET[:4].hex().upper()):
        assert part not in text


def test_no_deprecation_warning_reaches_users() -> None:
    code = (
        "import cardlib.crypto as c, cardlib.keys as k;"
        "c.mac_alg1(bytes(8), b'x'); c.sm4_cbc_mac(bytes(16), b'x'); k.test_issuer()"
    )
    run = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# --- properties -----------------------------------------------------------------------------


@given(keys16, st.binary(max_size=64).map(lambda b: b[: len(b) // 8 * 8]))
def test_3des_round_trip(key: bytes, data: bytes) -> None:
    assert tdes_decrypt(key, tdes_encrypt(key, data)) == data


@given(keys16, st.binary(max_size=64).map(lambda b: b[: len(b) // 16 * 16]))
def test_sm4_round_trip(key: bytes, data: bytes) -> None:
    assert sm4_decrypt(key, sm4_encrypt(key, data)) == data


@given(st.binary(max_size=40), st.sampled_from([TDES, SM4]))
def test_purse_mac_is_4_bytes_and_keyed(data: bytes, alg: Algorithm) -> None:
    k1 = session_key(MK, bytes(8), alg)
    k2 = session_key(MK, bytes(7) + b"\x01", alg)
    assert len(purse_mac(k1, data, alg)) == 4
    assert purse_mac(k1, data, alg) != purse_mac(k2, data, alg)
    # padding method 2 keeps a trailing 00 byte significant
    assert purse_mac(k1, data, alg) != purse_mac(k1, data + b"\x00", alg)


@given(keys16, st.binary(min_size=8, max_size=8), st.sampled_from([TDES, SM4]))
def test_diversified_halves_differ_by_the_inverted_factor(
    master: bytes, factor: bytes, alg: Algorithm
) -> None:
    key = diversify(master, factor, alg)
    assert len(key) == 16
    inverted = bytes(b ^ 0xFF for b in factor)
    if alg is TDES:
        # each half is the master applied to F or ~F, so swapping F and ~F swaps the halves
        assert diversify(master, inverted, alg) == key[8:] + key[:8]
    else:
        assert decrypt_block(master, key, SM4) == factor + inverted


@given(key=st.binary(min_size=16, max_size=16), sm4=st.booleans(),
       messages=st.lists(st.binary(max_size=40), min_size=1, max_size=6))
def test_a_mac_function_gives_purse_mac_for_every_message_in_turn(key: bytes, sm4: bool,
                                                                   messages: list[bytes]) -> None:
    alg = Algorithm.SM4 if sm4 else Algorithm.TDES
    k = key if sm4 else key[:8]
    mac = crypto.purse_mac_function(k, alg)
    assert [mac(m) for m in messages] == [purse_mac(k, m, alg) for m in messages]


@given(key=st.binary(min_size=16, max_size=16), sm4=st.booleans(),
       messages=st.lists(st.binary(max_size=40), min_size=1, max_size=6), extra=st.integers(1, 2**70))
def test_a_number_mac_function_gives_purse_mac_and_refuses_what_does_not_fit(
        key: bytes, sm4: bool, messages: list[bytes], extra: int) -> None:
    alg = Algorithm.SM4 if sm4 else Algorithm.TDES
    k = key if sm4 else key[:8]
    mac = crypto.purse_mac_number_function(k, alg)
    assert [mac(int.from_bytes(m, "big"), len(m)) for m in messages] == [purse_mac(k, m, alg) for m in messages]
    size = len(messages[0])
    with pytest.raises(OverflowError):
        mac((1 << 8 * size) + extra - 1, size)  # one bit too long
    with pytest.raises(OverflowError):
        mac(-extra, size)
    assert mac(int.from_bytes(messages[0], "big"), size) == purse_mac(k, messages[0], alg)  # the chain survived
