"""Each trick of cardlib.fastpath gives what the plain path gives."""

from __future__ import annotations

import inspect

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4
from hypothesis import given
from hypothesis import strategies as st

from cardlib import fastpath
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.channel import Channel
from cardlib.readers.pyhost import HostedReader
from tests.cards import EchoCard


def _plain_mac(key: bytes, message: bytes, sm4: bool) -> bytes:
    """ISO/IEC 9797-1 algorithm 1, padding method 2, zero IV, a context of its own; 4 bytes."""
    block = 16 if sm4 else 8
    padded = message + b"\x80" + bytes(-(len(message) + 1) % block)
    algorithm = SM4(key) if sm4 else TripleDES(key * 3)
    return Cipher(algorithm, modes.CBC(bytes(block))).encryptor().update(padded)[-block:][:4]


@given(key=st.binary(min_size=16, max_size=16), sm4=st.booleans(),
       messages=st.lists(st.binary(max_size=48), min_size=1, max_size=8))
def test_a_chained_cbc_mac_gives_a_fresh_contexts_mac_for_every_message_in_turn(
        key: bytes, sm4: bool, messages: list[bytes]) -> None:
    key = key if sm4 else key[:8]
    block = 16 if sm4 else 8
    algorithm = SM4(key) if sm4 else TripleDES(key * 3)
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


@given(cla=st.sampled_from([0x00, 0x80, 0x84]), ins=st.integers(0, 0xFF).filter(lambda i: i not in (0x84, 0xC0)),
       data=st.binary(max_size=40), le=st.one_of(st.none(), st.integers(1, 256)), limit=st.integers(1, 48))
def test_a_command_as_bytes_crosses_the_wire_as_the_same_command_as_a_value(
        cla: int, ins: int, data: bytes, le: int | None, limit: int) -> None:
    """The single-frame test Channel.transmit keeps inline for bytes: the same exchanges and
    the same answer as the command given as a CommandAPDU (chained or not)."""
    command = CommandAPDU(cla, ins, 0, 0, data, le)
    answers, cards = [], []
    for form in (command, command.encode()):
        card = EchoCard()
        reader = HostedReader([card])
        reader.connect()
        answers.append(Channel(reader, max_chain=limit).transmit(form))
        cards.append(card.seen)
    assert answers[0] == answers[1] and cards[0] == cards[1]
