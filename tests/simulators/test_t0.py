"""Strict T=0 (ISO/IEC 7816-3 §12.2, ISO/IEC 7816-4 §5.3.3): the bytes on the wire.

A case-4 command goes to a T=0 card without Le and its answer comes with 61xx
and GET RESPONSE; a T=1 or contactless card keeps Le. The protocol comes from
the ATR as a PC/SC reader takes it, in process and through pcscd with vpcd.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cardlib.apdu import CommandAPDU
from cardlib.atr import build_contactless_atr, parse_atr, speaks_t0
from cardlib.channel import Channel, Exchange, t0_command
from cardlib.iso import read_binary, select_aid
from cardlib.pboc import psam as W
from cardlib.readers.base import Card
from cardlib.readers.pyhost import HostedReader
from simulators.issuer import sample_card
from simulators.psam import PSAM_ATR, make_psam
from simulators.ssc import SocialSecurityCard
from simulators.vpcd import VpcdBridge
from tests.pcsc_support import pcscd, vpcd_card  # noqa: F401

INIT = W.InitSamForPurchase(bytes.fromhex("11223344"), 7, 300, 0x06, bytes.fromhex("20261128"),
                            bytes.fromhex("081500"), 1, 0x00,
                            (bytes.fromhex("0000000000000001"), bytes.fromhex("1122334455667788")))

def _atr(t0: int, interface: bytes, hist: bytes, tck: bool) -> bytes:
    body = bytes((t0,)) + interface + hist
    out = b"\x3b" + body
    if tck:
        x = 0
        for b in body:
            x ^= b
        out += bytes((x,))
    return out


class Recorder:
    """A card that writes down every command it receives (the wire, seen from the card)."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.received: list[bytes] = []

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def reset(self) -> bytes:
        return self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        self.received.append(bytes(apdu))
        return self.card.process(apdu)


def _wire(reader: HostedReader) -> tuple[Channel, list[Exchange]]:
    seen: list[Exchange] = []
    return Channel(reader, observers=[seen.append]), seen


# --- the ATR says which protocol --------------------------------------------------------------


def test_protocol_from_the_atr() -> None:
    assert parse_atr(PSAM_ATR).transmission_protocol == 0  # T0=68: no TD1, T=0 only
    assert speaks_t0(PSAM_ATR)
    both = _atr(0x80, bytes((0x80 | 0x00, 0x01)), b"", tck=True)  # TD1 T=0, TD2 T=1
    assert parse_atr(both).protocols == (0, 1)
    assert parse_atr(both).transmission_protocol == 1  # pcsc-lite prefers T=1 when offered
    specific = _atr(0x90, bytes((0x11, 0x10, 0x80 | 0x00)), b"", tck=False)  # TA1, TD1 → TA2 = 80: T=0
    assert parse_atr(specific).groups[1].ta == 0x80
    assert parse_atr(specific).transmission_protocol == 0
    assert not speaks_t0(build_contactless_atr(b"YKT-SSC3"))  # PC/SC part 3: contactless is T=1
    assert not speaks_t0(b"\x00")  # an ATR that does not parse: no T=0 rules applied


def test_t0_command_drops_le_of_case_4_only() -> None:
    case4 = INIT.to_apdu().encode()
    assert case4[-1] == 0x08 and t0_command(case4) == case4[:-1]
    assert t0_command(bytes.fromhex("00B0960006")) == bytes.fromhex("00B0960006")  # case 2
    assert t0_command(bytes.fromhex("8072000004AABBCCDD")) == bytes.fromhex("8072000004AABBCCDD")  # case 3
    assert t0_command(bytes.fromhex("00A40000")) == bytes.fromhex("00A40000")  # case 1


# --- in process -------------------------------------------------------------------------------


def test_case_4_goes_as_case_3_and_get_response_on_t0() -> None:
    psam = make_psam()
    reader = HostedReader([psam], name="psam")
    reader.connect()
    assert reader.t0
    channel, seen = _wire(reader)
    channel.transmit(select_aid(W.PSAM_AID, fci=False)).check()
    seen.clear()
    answer = channel.transmit(INIT.to_apdu()).check()
    body = INIT.to_apdu().encode()[:-1]  # 80 70 00 00 24 …, no Le
    assert [e.command for e in seen] == [body, bytes.fromhex("00C0000008")]
    assert seen[0].response == bytes.fromhex("6108")
    assert seen[1].response == answer.data + b"\x90\x00" and len(answer.data) == 8


def test_contactless_card_keeps_le() -> None:
    card = sample_card(seed=1)
    reader = HostedReader([card])
    reader.connect()
    assert not reader.t0
    channel, seen = _wire(reader)
    select = select_aid(bytes.fromhex("A000000632010105"))
    assert select.case == 4
    channel.transmit(select).check()
    assert [e.command for e in seen] == [select.encode()]  # with Le, one exchange


def test_raw_channel_sends_as_given() -> None:
    psam = make_psam()
    reader = HostedReader([psam])
    reader.connect()
    channel = Channel(reader, raw=True)
    channel.transmit(select_aid(W.PSAM_AID, fci=False)).check()
    assert channel.transmit(INIT.to_apdu()).sw == 0x6700  # what a T=0 card says to Lc and Le together


# --- the strict T=0 card ----------------------------------------------------------------------


def _t0_card() -> SocialSecurityCard:
    card = sample_card(seed=4)
    t0 = SocialSecurityCard(card.keys, card.purse.state, card.ssse.state, card.rng, atr=PSAM_ATR)
    t0.fs = card.fs  # the same personalised files behind a T=0 ATR
    t0.fs.reset()
    return t0


@pytest.mark.parametrize("make", [make_psam, _t0_card], ids=["psam", "card"])
def test_strict_t0_card_answers(make: Callable[[], Card]) -> None:
    card = make()
    card.reset()
    if isinstance(card, SocialSecurityCard):
        aid, ef = bytes.fromhex("A000000632010105"), 0x15
        size = 30
    else:
        aid, ef = W.PSAM_AID, 0x17
        size = 25
    case4 = select_aid(aid)  # 00 A4 04 00 Lc AID 00
    assert card.process(case4.encode()) == bytes.fromhex("6700")  # Lc and Le: refused
    answer = card.process(case4.encode()[:-1])  # case 3 on the wire
    assert answer[0] == 0x61 or answer == b"\x90\x00"
    if answer[0] == 0x61:
        fci = card.process(bytes((0x00, 0xC0, 0x00, 0x00, answer[1])))
        assert fci[-2:] == b"\x90\x00" and len(fci) == answer[1] + 2
    wrong = read_binary(0, 256, sfi=ef).encode()  # P3 = 00: 256 bytes asked
    assert card.process(wrong) == bytes((0x6C, size))
    right = read_binary(0, size, sfi=ef).encode()
    data = card.process(right)
    assert len(data) == size + 2 and data[-2:] == b"\x90\x00"
    assert card.process(bytes.fromhex("00C0000010")) == bytes.fromhex("6985")  # nothing waits


def test_get_response_with_a_wrong_le_gets_6cxx_and_pieces() -> None:
    psam = make_psam()
    psam.reset()
    psam.process(select_aid(W.PSAM_AID, fci=False).encode())
    assert psam.process(INIT.to_apdu().encode()[:-1]) == bytes.fromhex("6108")
    assert psam.process(bytes.fromhex("00C0000010")) == bytes.fromhex("6C08")  # asks for 16 of 8
    first = psam.process(bytes.fromhex("00C0000003"))
    assert len(first) == 5 and first[-2:] == bytes.fromhex("6105")
    rest = psam.process(bytes.fromhex("00C0000005"))
    assert len(rest) == 7 and rest[-2:] == b"\x90\x00"


def test_channel_resolves_6cxx_of_a_strict_card() -> None:
    psam = make_psam()
    reader = HostedReader([psam])
    reader.connect()
    channel, seen = _wire(reader)
    answer = channel.transmit(CommandAPDU(0x00, 0xB0, 0x96, 0x00, le=256)).check()
    assert len(answer.data) == 6
    assert [e.command for e in seen] == [bytes.fromhex("00B0960000"), bytes.fromhex("00B0960006")]


# --- through pcscd and vpcd -------------------------------------------------------------------


@pytest.mark.pcsc
def test_t0_on_the_wire_through_pcscd(vpcd_card: Callable[..., VpcdBridge]) -> None:  # noqa: F811
    from cardlib.readers.pcsc import PcscReader

    card = Recorder(make_psam())
    bridge = vpcd_card(card)
    reader = PcscReader(bridge.reader_name)
    try:
        reader.connect()
        assert reader.protocol == "T=0" and reader.t0  # pcscd took T=0 from the ATR
        channel = Channel(reader)
        channel.transmit(select_aid(W.PSAM_AID, fci=False)).check()
        card.received.clear()
        answer = channel.transmit(INIT.to_apdu()).check()
        assert len(answer.data) == 8
        assert card.received == [INIT.to_apdu().encode()[:-1], bytes.fromhex("00C0000008")]
    finally:
        reader.close()
