"""ISO/IEC 14443-4 blocks through the PN532 emulator's InCommunicateThru, byte by byte.

A host running ISO-DEP itself (nfcpy, libnfc's presence check) turns automatic
RATS off, sends RATS and then I-, R- and S-blocks; the emulator carries each
frame to the card's ISO-DEP layer and back (UM0701-02 §7.3.9; the chip adds
and checks the CRC). WTX and lost blocks come from fault injection.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib import isodep
from cardlib.errors import FormatError
from cardlib.iso import select_aid
from cardlib.isodep import Block, BlockKind, parse_ats, parse_block
from cardlib.pboc import purse as P
from cardlib.readers.pn532_frames import (
    IN_COMMUNICATE_THRU,
    IN_DATA_EXCHANGE,
    IN_LIST_PASSIVE_TARGET,
    SET_PARAMETERS,
    parse_frame,
)
from simulators.issuer import issue_card
from simulators.pn532 import Pn532Emulator
from tests.cards import EchoCard

SELECT = select_aid(P.PURSE_AID).encode()
BALANCE = P.GetBalance().to_apdu().encode()


def chip(emulator: Pn532Emulator, code: int, params: bytes = b"") -> bytes:
    """One command to the chip (no line): the response parameters after the code."""
    frame = parse_frame(emulator.handle(bytes((code,)) + params))
    assert frame.code == code + 1
    return frame.data[1:]


def thru(emulator: Pn532Emulator, block: bytes) -> bytes:
    """InCommunicateThru: status 00 and the card's frame; b'' when the chip timed out (01)."""
    answer = chip(emulator, IN_COMMUNICATE_THRU, block)
    if answer == b"\x01":
        return b""
    assert answer[:1] == b"\x00", answer.hex()
    return answer[1:]


@pytest.fixture
def field() -> Pn532Emulator:
    """A card listed without automatic RATS (as nfcpy asks), then activated by RATS E0 80."""
    emulator = Pn532Emulator([issue_card(seed=8)])
    chip(emulator, SET_PARAMETERS, b"\x00")
    listed = chip(emulator, IN_LIST_PASSIVE_TARGET, b"\x01\x00")
    assert listed[0] == 1 and listed.endswith(emulator.targets[0].uid)  # no ATS appended
    ats = thru(emulator, bytes.fromhex("E080"))
    assert ats == emulator.targets[0].ats()
    return emulator


def card_answer(emulator: Pn532Emulator, apdu: bytes) -> bytes:
    return emulator.cards[0].process(apdu)


# --- the block codec ------------------------------------------------------------------------------


def test_block_codec_byte_exact() -> None:
    assert isodep.i_block(0, b"\x00\xa4") == bytes.fromhex("0200A4")
    assert isodep.i_block(1, b"\x01", chaining=True) == bytes.fromhex("1301")
    assert isodep.i_block(1, b"\x01", cid=5) == bytes.fromhex("0B0501")
    assert isodep.r_ack(0) == bytes.fromhex("A2") and isodep.r_ack(1) == bytes.fromhex("A3")
    assert isodep.r_nak(0) == bytes.fromhex("B2") and isodep.r_nak(1, cid=2) == bytes.fromhex("BB02")
    assert isodep.s_wtx(1) == bytes.fromhex("F201") and isodep.s_deselect() == bytes.fromhex("C2")
    assert parse_block(bytes.fromhex("1201AB")) == Block(BlockKind.I, 0, True, inf=b"\x01\xab")
    assert parse_block(bytes.fromhex("0F0342AA")) == Block(BlockKind.I, 1, cid=3, nad=0x42, inf=b"\xaa")
    assert parse_block(bytes.fromhex("B3")) == Block(BlockKind.R, 1, nak=True)
    assert parse_block(bytes.fromhex("FA0117")).wtxm == 0x17 and parse_block(bytes.fromhex("FA0117")).cid == 1
    assert parse_block(bytes.fromhex("CA04")) == Block(BlockKind.S, deselect=True, cid=4)
    for bad in ("", "E080", "A200", "F2", "C200", "22"):
        with pytest.raises(FormatError):
            parse_block(bytes.fromhex(bad))
    with pytest.raises(FormatError):
        isodep.s_wtx(60)


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    kind = draw(st.sampled_from(BlockKind))
    cid = draw(st.none() | st.integers(0, 14))
    if kind is BlockKind.I:
        return Block(kind, draw(st.integers(0, 1)), draw(st.booleans()), cid=cid,
                     nad=draw(st.none() | st.integers(0, 255)), inf=draw(st.binary(max_size=40)))
    if kind is BlockKind.R:
        return Block(kind, draw(st.integers(0, 1)), nak=draw(st.booleans()), cid=cid)
    if draw(st.booleans()):
        return Block(kind, deselect=True, cid=cid)
    return Block(kind, cid=cid, inf=bytes((draw(st.integers(1, isodep.MAX_WTXM)),)))


@given(blocks())
def test_every_block_reads_back_as_written(block: Block) -> None:
    assert parse_block(block.encode()) == block


@given(st.binary(max_size=8))
def test_any_frame_parses_or_is_refused_typed(frame: bytes) -> None:
    try:
        block = parse_block(frame)
    except FormatError:
        return
    assert parse_block(block.encode()) == block  # only the CID byte's power level is not kept
    assert block.encode()[2 if block.cid is not None else 1:] == frame[2 if block.cid is not None else 1:]


def test_ats_gives_frame_size_and_waiting_time() -> None:
    ats = parse_ats(bytes.fromhex("0D78807002594B542D53534333"))  # the emulator's ATS
    assert (ats.fsc, ats.fwi, ats.sfgi, ats.cid_supported, ats.nad_supported) == (256, 7, 0, True, False)
    assert ats.historical_bytes == b"YKT-SSC3"
    assert ats.fwt == pytest.approx(4096 / 13.56e6 * 128)  # (256 × 16 / fc) × 2^7 ≈ 38.7 ms
    assert parse_ats(b"\x01").fsc == 32 and parse_ats(b"\x01").fwt == pytest.approx(4096 / 13.56e6 * 16)
    with pytest.raises(FormatError):
        parse_ats(bytes.fromhex("0578"))


# --- each block type through InCommunicateThru -----------------------------------------------------


def test_i_blocks_toggle_the_block_number(field: Pn532Emulator) -> None:
    select = thru(field, b"\x02" + SELECT)
    assert select[:1] == b"\x02" and select[-2:] == b"\x90\x00"
    balance = thru(field, b"\x03" + BALANCE)
    assert balance == b"\x03" + card_answer(field, BALANCE)
    assert thru(field, b"\x02" + BALANCE)[:1] == b"\x02"


def test_i_block_with_cid_is_answered_with_it(field: Pn532Emulator) -> None:
    answer = thru(field, b"\x0a\x00" + SELECT)
    assert answer[:2] == b"\x0a\x00" and answer[-2:] == b"\x90\x00"


def test_chaining_from_the_reader_gets_r_ack(field: Pn532Emulator) -> None:
    assert thru(field, b"\x12" + SELECT[:6]) == bytes.fromhex("A2")  # I(0) chained → R(ACK) 0
    assert thru(field, b"\x13" + SELECT[6:]) == bytes.fromhex("A3")  # I(1) chained → R(ACK) 1
    assert thru(field, b"\x02" + b"")[:1] == b"\x02"  # the last piece: the card's answer in I(0)


def test_chaining_to_the_reader_waits_for_r_ack() -> None:
    emulator = Pn532Emulator([EchoCard()])
    chip(emulator, SET_PARAMETERS, b"\x00")
    chip(emulator, IN_LIST_PASSIVE_TARGET, b"\x01\x00")
    thru(emulator, bytes.fromhex("E000"))  # FSDI 0: the reader takes frames of 16 bytes
    data = bytes(range(20))
    apdu = bytes.fromhex("00DA0000") + bytes((len(data),)) + data
    first = thru(emulator, b"\x02" + apdu)
    assert first == b"\x12" + (data + b"\x90\x00")[:13]  # 16 - PCB - CRC: 13 bytes, chaining set
    again = thru(emulator, bytes.fromhex("A2"))  # R(ACK) with the card's own number: once more
    assert again == first
    second = thru(emulator, bytes.fromhex("A3"))  # R(ACK) 1: the next piece
    assert second == b"\x03" + (data + b"\x90\x00")[13:]


def test_r_nak_with_the_other_number_gets_r_ack(field: Pn532Emulator) -> None:
    thru(field, b"\x02" + SELECT)
    assert thru(field, bytes.fromhex("B3")) == bytes.fromhex("A2")  # presence check (nfcpy, libnfc)


def test_s_wtx_by_fault_injection(field: Pn532Emulator) -> None:
    field.inject_wtx(3)
    assert thru(field, b"\x02" + BALANCE) == bytes.fromhex("F203")  # the card asks for 3 × FWT
    answer = thru(field, bytes.fromhex("F203"))  # the reader grants it
    assert answer == b"\x02" + card_answer(field, BALANCE)
    field.inject_wtx(1, 2)  # two requests in a row
    assert thru(field, b"\x03" + BALANCE) == bytes.fromhex("F201")
    assert thru(field, bytes.fromhex("F201")) == bytes.fromhex("F202")
    assert thru(field, bytes.fromhex("F202"))[:1] == b"\x03"


def test_block_lost_on_the_way_to_the_card(field: Pn532Emulator) -> None:
    before = field.cards[0].balance
    field.lose_block_to_card()
    assert thru(field, b"\x02" + SELECT) == b""  # status 01: the chip heard nothing
    assert thru(field, bytes.fromhex("B2")) == bytes.fromhex("A3")  # R(NAK) 0 → R(ACK) 1: send it again
    assert thru(field, b"\x02" + SELECT)[-2:] == b"\x90\x00"
    assert field.cards[0].balance == before


def test_answer_lost_on_the_way_back(field: Pn532Emulator) -> None:
    thru(field, b"\x02" + SELECT)
    field.lose_block_from_card()
    assert thru(field, b"\x03" + BALANCE) == b""  # the card answered, the chip heard nothing
    answer = thru(field, bytes.fromhex("B3"))  # R(NAK) 1: the card's own number → the last block again
    assert answer == b"\x03" + card_answer(field, BALANCE)
    assert not field.faults_pending


def test_s_deselect_puts_the_card_to_sleep(field: Pn532Emulator) -> None:
    assert thru(field, bytes.fromhex("C2")) == bytes.fromhex("C2")
    assert thru(field, b"\x02" + SELECT) == b""  # asleep: no answer
    assert thru(field, bytes.fromhex("E080")) == field.targets[0].ats()  # RATS wakes it again
    assert thru(field, b"\x02" + SELECT)[-2:] == b"\x90\x00"


def test_in_data_exchange_still_runs_iso_dep_in_the_chip(field: Pn532Emulator) -> None:
    answer = chip(field, IN_DATA_EXCHANGE, b"\x01" + SELECT)
    assert answer[:1] == b"\x00" and answer[-2:] == b"\x90\x00"
