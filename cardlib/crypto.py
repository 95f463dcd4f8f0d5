"""Block ciphers and MACs of the purse and PSAM (PBOC/JR/T 0025 e-purse, JT/T 978).

DES and 2-key 3DES (ISO/IEC 18033-3), SM4 (GB/T 32907), ISO/IEC 9797-1 MAC
algorithms 1 and 3 with padding method 2, key diversification and session
keys as profiled by JT/T 978 / PBOC EP; the SM4 formulas are the project's profile
(docs/protocol.md, "Algorithms"). Keys never appear in messages.
"""

from __future__ import annotations

import enum
import hmac
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from cardlib import fastpath
from cardlib.errors import FormatError

try:  # cryptography >= 43 keeps TripleDES among the "decrepit" ciphers
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    with warnings.catch_warnings():  # its deprecation notice is ours to handle, not the user's
        warnings.simplefilter("ignore")
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES


class Algorithm(enum.Enum):
    """The purse's algorithm; a property of a card's key set."""

    TDES = "3des"
    SM4 = "sm4"

    @property
    def alg_id(self) -> int:
        """The algorithm byte of the 8050 response (00 3DES; 04 SM4 in our profile)."""
        return 0x00 if self is Algorithm.TDES else 0x04

    @property
    def block_size(self) -> int:
        return 8 if self is Algorithm.TDES else 16

    @classmethod
    def from_alg_id(cls, value: int) -> Algorithm:
        found = _BY_ALG_ID.get(value)  # a lookup: every purchase asks
        if found is None:
            raise FormatError(f"unknown algorithm id {value:02X}")
        return found

    @classmethod
    def parse(cls, text: str) -> Algorithm:
        try:
            return cls(text.strip().lower())  # by value, as journals and key files write it
        except ValueError:
            raise FormatError(f"unknown algorithm {text!r}: expected 3des or sm4") from None


_BY_ALG_ID = {alg.alg_id: alg for alg in Algorithm}


def _need(name: str, data: bytes, *sizes: int) -> None:
    if len(data) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise FormatError(f"{name} must be {want} bytes, got {len(data)}")


def _blocks(name: str, data: bytes, block: int) -> None:
    if len(data) % block:
        raise FormatError(f"{name} must be a multiple of {block} bytes, got {len(data)}")


def _cipher(key: bytes, sm4: bool, mode: modes.Mode) -> Cipher[Any]:
    return Cipher(SM4(key) if sm4 else TripleDES(key), mode)


# Callers pass whole blocks only (checked before): without padding a context
# holds nothing back, update() gives every block and finalize() nothing more.


def _run_ecb(key: bytes, data: bytes, sm4: bool, decrypt: bool = False) -> bytes:
    cipher = _cipher(key, sm4, modes.ECB())
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(data) + context.finalize()


def _run_cbc(key: bytes, iv: bytes, data: bytes, sm4: bool) -> bytes:
    context = _cipher(key, sm4, modes.CBC(iv)).encryptor()
    return context.update(data) + context.finalize()


def _ede(key16: bytes) -> bytes:
    """2-key 3DES as the 3-key form K1 K2 K1."""
    return key16 + key16[:8]


def des_encrypt(key8: bytes, data: bytes) -> bytes:
    """Single DES ECB (as 3DES with K1 = K2 = K3)."""
    _need("DES key", key8, 8)
    _blocks("DES data", data, 8)
    return _run_ecb(key8 * 3, data, False)


def des_decrypt(key8: bytes, data: bytes) -> bytes:
    _need("DES key", key8, 8)
    _blocks("DES data", data, 8)
    return _run_ecb(key8 * 3, data, False, decrypt=True)


def tdes_encrypt(key16: bytes, data: bytes) -> bytes:
    """2-key 3DES EDE, ECB."""
    _need("3DES key", key16, 16)
    _blocks("3DES data", data, 8)
    return _run_ecb(_ede(key16), data, False)


def tdes_decrypt(key16: bytes, data: bytes) -> bytes:
    _need("3DES key", key16, 16)
    _blocks("3DES data", data, 8)
    return _run_ecb(_ede(key16), data, False, decrypt=True)


def tdes_cbc_encrypt(key16: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    _need("3DES key", key16, 16)
    _need("IV", iv, 8)
    _blocks("3DES data", data, 8)
    return _run_cbc(_ede(key16), iv, data, False)


def sm4_encrypt(key16: bytes, data: bytes) -> bytes:
    """SM4 (GB/T 32907) ECB."""
    _need("SM4 key", key16, 16)
    _blocks("SM4 data", data, 16)
    return _run_ecb(key16, data, True)


def sm4_decrypt(key16: bytes, data: bytes) -> bytes:
    _need("SM4 key", key16, 16)
    _blocks("SM4 data", data, 16)
    return _run_ecb(key16, data, True, decrypt=True)


def sm4_cbc_encrypt(key16: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    _need("SM4 key", key16, 16)
    _need("IV", iv, 16)
    _blocks("SM4 data", data, 16)
    return _run_cbc(key16, iv, data, True)


def encrypt_block(key16: bytes, data: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """ECB with the algorithm's cipher (3DES with a 16-byte key, or SM4)."""
    if algorithm is Algorithm.SM4:
        return sm4_encrypt(key16, data)
    return tdes_encrypt(key16, data)


def decrypt_block(key16: bytes, data: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    if algorithm is Algorithm.SM4:
        return sm4_decrypt(key16, data)
    return tdes_decrypt(key16, data)


def pad_m2(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: always 80, then 00 to a block multiple."""
    if block <= 0:
        raise FormatError(f"block size must be positive, got {block}")
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def mac_alg1(key8: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC) with single DES, padding 2; 8 bytes.

    The purse's MAC1/MAC2/TAC.
    """
    _need("DES key", key8, 8)
    _need("IV", iv, 8)
    return _run_cbc(key8 * 3, iv, pad_m2(data), False)[-8:]


def retail_mac(key16: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (retail MAC), padding 2; 8 bytes.

    CBC with the left key, then the last block decrypted with the right key
    and encrypted again with the left one.
    """
    _need("retail MAC key", key16, 16)
    _need("IV", iv, 8)
    left = key16[:8] * 3
    last = _run_cbc(left, iv, pad_m2(data), False)[-8:]
    return _run_ecb(left, _run_ecb(key16[8:] * 3, last, False, decrypt=True), False)


def sm4_cbc_mac(key16: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """SM4 CBC-MAC, padding 2 to 16 bytes; the last block (16 bytes)."""
    _need("SM4 key", key16, 16)
    _need("IV", iv, 16)
    return _run_cbc(key16, iv, pad_m2(data, 16), True)[-16:]


def diversify(master: bytes, factor8: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """One level: 3DES_MK(F) ‖ 3DES_MK(~F) (JR/T 0025); SM4_MK(F ‖ ~F) in the project's SM4 profile."""
    _need("master key", master, 16)
    _need("diversification factor", factor8, 8)
    inverted = bytes(b ^ 0xFF for b in factor8)
    if algorithm is Algorithm.SM4:
        return _run_ecb(master, factor8 + inverted, True)
    return _run_ecb(_ede(master), factor8 + inverted, False)


def diversify_levels(
    master: bytes, factors: Sequence[bytes], algorithm: Algorithm = Algorithm.TDES
) -> bytes:
    """Several levels, applied in the order given (the caller owns the order)."""
    key = master
    for factor in factors:
        key = diversify(key, factor, algorithm)
    return key


def session_key(card_key16: bytes, input8: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """3DES: 8-byte session key 3DES_K(input8) (JR/T 0025); SM4: 16 bytes from input8 ‖ 80 00…00 (the project's profile)."""
    _need("card key", card_key16, 16)
    _need("session key input", input8, 8)
    if algorithm is Algorithm.SM4:
        return _run_ecb(card_key16, input8 + b"\x80" + bytes(7), True)
    return _run_ecb(_ede(card_key16), input8, False)


def purse_mac(session_key: bytes, data: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """MAC1, MAC2, TAC: 4 bytes (DES MAC algorithm 1, or SM4 CBC-MAC in our profile)."""
    if algorithm is Algorithm.SM4:
        return sm4_cbc_mac(session_key, data)[:4]
    return mac_alg1(session_key, data)[:4]


def purse_mac_number_function(key: bytes, algorithm: Algorithm = Algorithm.TDES) -> Callable[[int, int], bytes]:
    """``purse_mac`` with the key set up once, for many MACs under one key (settlement
    checks every TAC of a card with the same key), over a message given as its
    big-endian value and its length in bytes (settlement writes the TAC input from
    the record's text straight into a number). One CBC context serves them all
    (:func:`cardlib.fastpath.chained_cbc_mac`); one caller at a time; the key lives
    as long as the function the caller holds. A value that does not fit its length
    raises OverflowError."""
    if algorithm is Algorithm.SM4:
        _need("SM4 key", key, 16)
        context = _cipher(key, True, modes.CBC(bytes(16))).encryptor()
        return fastpath.chained_cbc_mac(context.update, 16)
    _need("DES key", key, 8)
    context = _cipher(key * 3, False, modes.CBC(bytes(8))).encryptor()
    return fastpath.chained_cbc_mac(context.update, 8)


def purse_mac_function(key: bytes, algorithm: Algorithm = Algorithm.TDES) -> Callable[[bytes], bytes]:
    """``purse_mac`` with the key set up once (see ``purse_mac_number_function``)."""
    of_number = purse_mac_number_function(key, algorithm)
    return lambda data: of_number(int.from_bytes(data, "big"), len(data))


def tac_key(dtk16: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """3DES: left 8 bytes xor right 8 bytes of DTK (JR/T 0025); SM4: DTK itself (the project's profile)."""
    _need("DTK", dtk16, 16)
    if algorithm is Algorithm.SM4:
        return dtk16
    return _xor(dtk16[:8], dtk16[8:])


def line_mac(
    key16: bytes, data: bytes, iv: bytes, algorithm: Algorithm = Algorithm.TDES
) -> bytes:
    """Line-protection MAC (e.g. APPLICATION BLOCK; ISO/IEC 9797-1 algorithm 3, the project's profile): 4 bytes.

    3DES: retail MAC with an 8-byte IV; SM4: SM4 CBC-MAC with the IV
    right-padded with 00 to 16 bytes.
    """
    if algorithm is Algorithm.SM4:
        _need("IV", iv, 8, 16)
        return sm4_cbc_mac(key16, data, iv.ljust(16, b"\x00"))[:4]
    return retail_mac(key16, data, iv)[:4]


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare MACs without leaking where they differ."""
    return hmac.compare_digest(a, b)
