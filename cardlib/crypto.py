"""Block ciphers and MACs of the purse and PSAM (reference §3 and §8).

DES and 2-key 3DES (ISO/IEC 18033-3), SM4 (GB/T 32907), ISO/IEC 9797-1 MAC
algorithms 1 and 3 with padding method 2, key diversification and session
keys as profiled by JT/T 978 / PBOC EP. Keys never appear in messages.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from cardlib.errors import FormatError

try:  # cryptography >= 43 keeps TripleDES among the "decrepit" ciphers
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
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
        for alg in cls:
            if alg.alg_id == value:
                return alg
        raise FormatError(f"unknown algorithm id {value:02X}")

    @classmethod
    def parse(cls, text: str) -> Algorithm:
        for alg in cls:
            if alg.value == text.strip().lower():
                return alg
        raise FormatError(f"unknown algorithm {text!r}: expected 3des or sm4")


def _need(name: str, data: bytes, *sizes: int) -> None:
    if len(data) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise FormatError(f"{name} must be {want} bytes, got {len(data)}")


def _blocks(name: str, data: bytes, block: int) -> None:
    if len(data) % block:
        raise FormatError(f"{name} must be a multiple of {block} bytes, got {len(data)}")


@lru_cache(maxsize=4096)
def _ecb(key: bytes, sm4: bool) -> Cipher[Any]:
    algo = SM4(key) if sm4 else TripleDES(key)
    return Cipher(algo, modes.ECB())


def _tdes_key(key: bytes) -> bytes:
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    _need("3DES key", key, 8, 16)
    return key


def des_encrypt(key8: bytes, data: bytes) -> bytes:
    _need("DES key", key8, 8)
    _blocks("DES data", data, 8)
    enc = _ecb(key8 * 3, False).encryptor()
    return enc.update(data) + enc.finalize()


def des_decrypt(key8: bytes, data: bytes) -> bytes:
    _need("DES key", key8, 8)
    _blocks("DES data", data, 8)
    dec = _ecb(key8 * 3, False).decryptor()
    return dec.update(data) + dec.finalize()


def tdes_encrypt(key16: bytes, data: bytes) -> bytes:
    """2-key 3DES EDE, ECB."""
    _need("3DES key", key16, 16)
    _blocks("3DES data", data, 8)
    enc = _ecb(_tdes_key(key16), False).encryptor()
    return enc.update(data) + enc.finalize()


def tdes_decrypt(key16: bytes, data: bytes) -> bytes:
    _need("3DES key", key16, 16)
    _blocks("3DES data", data, 8)
    dec = _ecb(_tdes_key(key16), False).decryptor()
    return dec.update(data) + dec.finalize()


def tdes_cbc_encrypt(key16: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    _need("3DES key", key16, 16)
    _need("IV", iv, 8)
    _blocks("3DES data", data, 8)
    enc = Cipher(TripleDES(_tdes_key(key16)), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def sm4_encrypt(key16: bytes, data: bytes) -> bytes:
    """SM4 (GB/T 32907) ECB."""
    _need("SM4 key", key16, 16)
    _blocks("SM4 data", data, 16)
    enc = _ecb(key16, True).encryptor()
    return enc.update(data) + enc.finalize()


def sm4_decrypt(key16: bytes, data: bytes) -> bytes:
    _need("SM4 key", key16, 16)
    _blocks("SM4 data", data, 16)
    dec = _ecb(key16, True).decryptor()
    return dec.update(data) + dec.finalize()


def sm4_cbc_encrypt(key16: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    _need("SM4 key", key16, 16)
    _need("IV", iv, 16)
    _blocks("SM4 data", data, 16)
    enc = Cipher(SM4(key16), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


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
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def mac_alg1(key8: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 1 with single DES, padding 2; 8 bytes."""
    _need("DES key", key8, 8)
    _need("IV", iv, 8)
    enc = Cipher(TripleDES(key8 * 3), modes.CBC(iv)).encryptor()
    out = enc.update(pad_m2(data)) + enc.finalize()
    return out[-8:]


def retail_mac(key16: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (retail MAC), padding 2; 8 bytes."""
    _need("retail MAC key", key16, 16)
    _need("IV", iv, 8)
    left, right = key16[:8], key16[8:]
    enc = Cipher(TripleDES(left * 3), modes.CBC(iv)).encryptor()
    last = (enc.update(pad_m2(data)) + enc.finalize())[-8:]
    return des_encrypt(left, des_decrypt(right, last))


def sm4_cbc_mac(key16: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """SM4 CBC-MAC, padding 2 to 16 bytes; the last block (16 bytes)."""
    _need("SM4 key", key16, 16)
    _need("IV", iv, 16)
    return sm4_cbc_encrypt(key16, pad_m2(data, 16), iv)[-16:]


def diversify(master: bytes, factor8: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """One level: 3DES_MK(F) ‖ 3DES_MK(~F) (§3); SM4_MK(F ‖ ~F) in the SM4 profile (§8)."""
    _need("master key", master, 16)
    _need("diversification factor", factor8, 8)
    inverted = bytes(b ^ 0xFF for b in factor8)
    if algorithm is Algorithm.SM4:
        return sm4_encrypt(master, factor8 + inverted)
    return tdes_encrypt(master, factor8 + inverted)


def diversify_levels(
    master: bytes, factors: Sequence[bytes], algorithm: Algorithm = Algorithm.TDES
) -> bytes:
    """Several levels, applied in the order given."""
    key = master
    for factor in factors:
        key = diversify(key, factor, algorithm)
    return key


def session_key(card_key16: bytes, input8: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """3DES: 8-byte session key; SM4: 16 bytes from input8 ‖ 80 00…00 (§8)."""
    _need("session key input", input8, 8)
    if algorithm is Algorithm.SM4:
        return sm4_encrypt(card_key16, input8 + b"\x80" + bytes(7))
    return tdes_encrypt(card_key16, input8)


def purse_mac(key: bytes, data: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """MAC1, MAC2, TAC: 4 bytes (DES MAC alg 1, or SM4 CBC-MAC)."""
    if algorithm is Algorithm.SM4:
        return sm4_cbc_mac(key, data)[:4]
    return mac_alg1(key, data)[:4]


def tac_key(dtk16: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """3DES: left 8 bytes xor right 8 bytes of DTK; SM4: DTK itself."""
    _need("DTK", dtk16, 16)
    if algorithm is Algorithm.SM4:
        return dtk16
    return _xor(dtk16[:8], dtk16[8:])


def line_mac(
    key16: bytes, data: bytes, iv: bytes, algorithm: Algorithm = Algorithm.TDES
) -> bytes:
    """Line-protection MAC (e.g. APPLICATION BLOCK): retail MAC, or SM4 CBC-MAC; 4 bytes."""
    if algorithm is Algorithm.SM4:
        return sm4_cbc_mac(key16, data, iv.ljust(16, b"\x00")[:16])[:4]
    return retail_mac(key16, data, iv)[:4]


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
