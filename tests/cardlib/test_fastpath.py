"""Each trick of cardlib.fastpath gives what the plain path gives."""

from __future__ import annotations

import inspect

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4
from hypothesis import given
from hypothesis import strategies as st

from cardlib import crypto, fastpath
from cardlib.apdu import ResponseAPDU


def _plain_mac(key: bytes, message: bytes, sm4: bool) -> bytes:
    """ISO/IEC 9797-1 algorithm 1, padding method 2, zero IV, a context of its own; 4 bytes."""
    block = 16 if sm4 else 8
    padded = message + b"\x80" + bytes(-(len(message) + 1) % block)
    algorithm = SM4(key) if sm4 else crypto.TripleDES(key * 3)
    return Cipher(algorithm, modes.CBC(bytes(block))).encryptor().update(padded)[-block:][:4]


@given(key=st.binary(min_size=16, max_size=16), sm4=st.booleans(),
       messages=st.lists(st.binary(max_size=48), min_size=1, max_size=8))
def test_a_chained_cbc_mac_gives_a_fresh_contexts_mac_for_every_message_in_turn(
        key: bytes, sm4: bool, messages: list[bytes]) -> None:
    key = key if sm4 else key[:8]
    block = 16 if sm4 else 8
    algorithm = SM4(key) if sm4 else crypto.TripleDES(key * 3)
    mac = fastpath.chained_cbc_mac(Cipher(algorithm, modes.CBC(bytes(block))).encryptor().update, block)
    got = [mac(int.from_bytes(m, "big"), len(m)) for m in messages]
    assert got == [_plain_mac(key, m, sm4) for m in messages]


def test_scard_transmit_is_the_function_pyscards_wrapper_only_passes_on_to() -> None:
    scard = pytest.importorskip("smartcard.scard")
    transmit = fastpath.scard_transmit(scard)
    assert transmit is scard._scard.SCardTransmit
    # the premise of the trick: after its docstring the wrapper is that one call
    body = inspect.getsource(scard.SCardTransmit).rsplit('"""', 1)[1]
    assert body.strip() == "return _scard.SCardTransmit(hcard, pioSendPci, apducommand)"


@given(data=st.binary(max_size=300), sw=st.integers(0, 0xFFFF))
def test_a_fast_response_is_the_response_apdu_the_constructor_builds(data: bytes, sw: int) -> None:
    fast, plain = fastpath.response(data, sw), ResponseAPDU(data, sw)
    assert type(fast) is ResponseAPDU
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert (fast.data, fast.sw, fast.sw1, fast.sw2, fast.encode()) == (data, sw, plain.sw1, plain.sw2, plain.encode())
