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


class Scripted(EchoCard):
    """Answers from a queue, whatever the command (to drive the channel exactly)."""

    def __init__(self, *answers: str) -> None:
        super().__init__()
        self.answers = [bytes.fromhex(a) for a in answers]

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        return self.answers.pop(0)


@pytest.mark.parametrize(
    ("cla", "get_cla"),
    [(0x00, 0x00), (0x01, 0x01), (0x03, 0x03), (0x0C, 0x00), (0x41, 0x41), (0x6F, 0x4F), (0x80, 0x00), (0x84, 0x00)],
)
def test_get_response_on_the_command_channel(cla: int, get_cla: int) -> None:
    card = Scripted("6102", "AABB9000")
    resp = _channel(card).transmit(CommandAPDU(cla, 0xB2, 1, 4, le=256))
    assert resp.data == b"\xaa\xbb" and resp.sw == 0x9000
    assert card.seen[1] == bytes((get_cla, 0xC0, 0x00, 0x00, 0x02))


def test_get_response_256_and_6cxx_inside_get_response() -> None:
    card = Scripted("6100", "6C03", "0102039000")
    resp = _channel(card).transmit(b"\x00\xca\x00\x00\x00")
    assert card.seen[1:] == [bytes.fromhex("00C0000000"), bytes.fromhex("00C0000003")]
    assert resp.data == b"\x01\x02\x03"


def test_6cxx_then_61xx_then_error_sw_kept() -> None:
    card = Scripted("6C10", "01026101", "036A82")
    resp = _channel(card).transmit(b"\x00\xb0\x00\x00\x01")
    assert card.seen == [bytes.fromhex("00B0000001"), bytes.fromhex("00B0000010"), bytes.fromhex("00C0000001")]
    assert resp.data == b"\x01\x02\x03" and resp.sw == 0x6A82 and not resp.ok


def test_6c00_resends_with_le_256() -> None:
    card = Scripted("6C00", "9000")
    _channel(card).transmit(b"\x00\xb0\x00\x00\x01")
    assert card.seen[1] == bytes.fromhex("00B0000000")


def test_raw_mode_keeps_data_and_no_retry() -> None:
    card = Scripted("01026105")
    resp = _channel(card, raw=True).transmit(b"\x00\xb0\x00\x00\x00")
    assert (resp.data, resp.sw, len(card.seen)) == (b"\x01\x02", 0x6105, 1)


def test_chaining_uses_reader_limit_and_stops_on_error() -> None:
    card = Scripted("9000", "6A80", "9000")
    ch = _channel(card)
    ch.reader.max_command_data = 255
    resp = ch.transmit(CommandAPDU(0x80, 0xDC, 0, 0, bytes(600), le=4))
    assert resp.sw == 0x6A80 and len(card.seen) == 2  # the rest is not sent
    assert [a[0] for a in card.seen] == [0x90, 0x90] and all(a[4] == 0xFF for a in card.seen)


def test_chaining_last_piece_carries_le_and_cla() -> None:
    card = EchoCard()
    ch = _channel(card, max_chain=4)
    ch.transmit(CommandAPDU(0x00, 0xDA, 0, 0, bytes(range(10)), le=2))
    assert [a.hex().upper() for a in card.seen] == ["10DA00000400010203", "10DA00000404050607", "00DA0000020809" "02"]


def test_already_chained_command_too_long() -> None:
    from cardlib.errors import FormatError

    with pytest.raises(FormatError, match="already chained"):
        _channel(EchoCard(), max_chain=4).transmit(CommandAPDU(0x10, 0xDA, 0, 0, bytes(10)))


def test_extended_commands_pass_a_reader_that_takes_them() -> None:
    from tests.cards import LongCard

    card = LongCard()
    resp = _channel(card).transmit(CommandAPDU(0, 0xB0, 0, 0, le=65536))
    assert len(resp.data) == 65536 and card.seen[0].hex().upper() == "00B00000000000"


def test_observers_see_every_wire_exchange_and_can_leave() -> None:
    import time

    card = T0Card()
    seen: list[Exchange] = []
    other: list[Exchange] = []
    ch = _channel(card, observers=[seen.append])
    ch.add_observer(other.append)
    ch.transmit(CommandAPDU.from_hex("00CA000000"))
    assert [e.command.hex().upper() for e in seen] == ["00CA000000", "00C0000000", "00C000002C"]
    assert seen[-1].response[-2:] == b"\x90\x00" and seen == other
    assert all(e.reader == "py" and e.duration >= 0 for e in seen)
    assert abs(seen[0].started - time.time()) < 3600  # a wall-clock time, not a perf counter
    ch.remove_observer(other.append)
    ch.transmit(CommandAPDU.from_hex("00B0000008"))
    assert len(seen) == 4 and len(other) == 3


def test_timeout_reaches_the_reader() -> None:
    got: list[float | None] = []

    class Recording(HostedReader):
        def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
            got.append(timeout)
            return super().transmit(apdu, timeout)

    reader = Recording([EchoCard()])
    reader.connect()
    ch = Channel(reader, timeout=2.5)
    ch.transmit(b"\x00\x84\x00\x00\x08")
    ch.transmit(b"\x00\x84\x00\x00\x08", timeout=0.5)
    assert got == [2.5, 0.5]
    assert ch.reader is reader


def test_send_returns_response_and_expect_ok_false() -> None:
    ch = _channel(T0Card())
    assert ch.send(CommandAPDU.from_hex("00B0000008")).data == bytes.fromhex("0102030405060708")
    assert ch.send(b"\x00\xff\x00\x00", expect_ok=False).sw == 0x6D00


def test_card_removed_propagates() -> None:
    from cardlib.errors import CardRemovedError

    card = EchoCard()
    ch = _channel(card)
    card.torn = True
    with pytest.raises(CardRemovedError):
        ch.transmit(b"\x00\x84\x00\x00\x08")
    assert ch.reader.is_card_present() is False


def test_bytes_and_values_give_equal_responses() -> None:
    from cardlib.apdu import ResponseAPDU
    from cardlib.errors import FormatError

    ch = _channel(EchoCard())
    by_bytes = ch.transmit(bytes.fromhex("0084000004"))
    by_value = ch.transmit(CommandAPDU(0, 0x84, 0, 0, le=4))
    assert by_bytes == by_value == ResponseAPDU(b"\x01\x02\x03\x04", 0x9000)
    assert hash(by_bytes) == hash(ResponseAPDU(b"\x01\x02\x03\x04", 0x9000))
    with pytest.raises(FormatError, match="too short"):
        ch.transmit(b"\x00\x84")


def test_long_bytes_are_parsed_and_chained() -> None:
    card = EchoCard()
    ch = _channel(card, max_chain=8)
    ch.transmit(CommandAPDU(0x00, 0xDA, 0, 0, bytes(12)).encode())
    assert [a[0] for a in card.seen] == [0x10, 0x00]
    from cardlib.errors import FormatError

    with pytest.raises(FormatError, match="Lc mismatch"):  # too long for one exchange: parsed first
        ch.transmit(bytes.fromhex("00DA000014") + bytes(10))
    assert len(card.seen) == 2
