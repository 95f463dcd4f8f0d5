"""The channel: 61xx GET RESPONSE, 6Cxx resend, raw mode, chaining, observers."""

from __future__ import annotations

import pytest

from cardlib.apdu import CommandAPDU
from cardlib.channel import Channel, Exchange
from cardlib.errors import ProtocolError
from cardlib.readers.pyhost import HostedReader
from tests.cards import EchoCard, T0Card


def _channel(card: object, **kw: object) -> Channel:
    reader = HostedReader([card])  # type: ignore[list-item]
    reader.connect()
    return Channel(reader, **kw)  # type: ignore[arg-type]


def test_get_response_joins_pieces() -> None:
    card = T0Card()
    ch = _channel(card)
    seen: list[Exchange] = []
    ch.add_observer(seen.append)
    resp = ch.transmit(CommandAPDU.from_hex("00A4040008A000000632010105"))
    assert resp.ok and resp.data.hex().upper().startswith("6F128408A000000632010105")
    assert [e.command.hex().upper() for e in seen] == ["00A4040008A000000632010105", "00C0000016"]
    assert all(e.duration >= 0 for e in seen)


def test_long_get_response_chain() -> None:
    resp = _channel(T0Card()).transmit(CommandAPDU.from_hex("00CA000000"))
    assert resp.ok and resp.data == bytes(i & 0xFF for i in range(300))


def test_wrong_le_resent() -> None:
    card = T0Card()
    resp = _channel(card).transmit(CommandAPDU.from_hex("00B0000000"))
    assert resp.data == bytes.fromhex("0102030405060708")
    assert card.seen[-1].hex().upper() == "00B0000008"


def test_raw_mode_shows_card_answers() -> None:
    ch = _channel(T0Card(), raw=True)
    assert ch.transmit(CommandAPDU.from_hex("00B0000000")).sw == 0x6C08
    assert ch.transmit(CommandAPDU.from_hex("00A4040008A000000632010105")).sw == 0x6116


def test_command_chaining() -> None:
    card = EchoCard()
    ch = _channel(card, max_chain=100)
    resp = ch.transmit(CommandAPDU(0x00, 0xDA, 0x01, 0x02, bytes(range(250))))
    assert [a[0] for a in card.seen] == [0x10, 0x10, 0x00]
    assert [a[4] for a in card.seen] == [100, 100, 50]
    assert resp.data == bytes(range(200, 250))


def test_send_checks_status() -> None:
    from cardlib.errors import StatusError

    ch = _channel(T0Card())
    with pytest.raises(StatusError, match="6D00"):
        ch.send(CommandAPDU.from_hex("00FF000000"), what="PROPRIETARY")


def test_broken_card_answers() -> None:
    class Mute(EchoCard):
        def process(self, apdu: bytes) -> bytes:
            return b"\x90"

    with pytest.raises(ProtocolError, match="needs SW1 SW2"):
        _channel(Mute()).transmit(b"\x00\xa4\x00\x00")

    class Endless(EchoCard):
        def process(self, apdu: bytes) -> bytes:
            return b"\x61\x01" if apdu[1] != 0xC0 else b"\x00\x61\x01"

    with pytest.raises(ProtocolError, match="kept answering 61xx"):
        _channel(Endless()).transmit(b"\x00\xa4\x00\x00")
