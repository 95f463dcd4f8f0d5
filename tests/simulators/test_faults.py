"""Fault injection: every fault, every way of choosing the APDU, the card contract kept."""

from __future__ import annotations

import pytest

from cardlib.channel import Channel
from cardlib.errors import CardRemovedError, FormatError, ReaderTimeoutError
from cardlib.readers.base import Card
from cardlib.readers.pyhost import HostedReader
from simulators.faults import (
    CORRUPT,
    DELAY,
    DROP,
    FORCE_SW,
    TEAR_AFTER,
    TEAR_BEFORE,
    TRUNCATE,
    Fault,
    FaultyCard,
)
from tests.cards import ATR_T1, EchoCard

CHALLENGE = bytes.fromhex("0084000004")
ANSWER = bytes.fromhex("010203049000")


def _faulty() -> tuple[EchoCard, FaultyCard]:
    inner = EchoCard()
    return inner, FaultyCard(inner)


def test_card_contract_kept() -> None:
    inner, card = _faulty()
    assert isinstance(card, Card)
    assert card.atr == ATR_T1 and card.reset() == ATR_T1
    assert card.process(CHALLENGE) == ANSWER and card.count == 1 and card.log == []
    assert inner.seen == [CHALLENGE]


def test_tear_before_not_processed_until_reinsert() -> None:
    inner, card = _faulty()
    card.at(2, TEAR_BEFORE)
    card.process(CHALLENGE)
    with pytest.raises(CardRemovedError, match="before APDU 2"):
        card.process(CHALLENGE)
    assert len(inner.seen) == 1 and card.removed
    with pytest.raises(CardRemovedError):
        card.process(CHALLENGE)
    with pytest.raises(CardRemovedError):
        card.reset()
    assert card.count == 2  # APDUs sent while out of the field are not numbered
    card.reinsert()
    assert card.reset() == ATR_T1 and card.process(CHALLENGE) == ANSWER
    assert card.count == 3 and card.log == [(2, "tear_before")]


def test_tear_after_processed_no_answer() -> None:
    inner, card = _faulty()
    card.at(1, TEAR_AFTER)
    with pytest.raises(CardRemovedError, match="after APDU 1 was processed"):
        card.process(CHALLENGE)
    assert inner.seen == [CHALLENGE] and card.removed


def test_drop_processed_then_timeout() -> None:
    inner, card = _faulty()
    card.at(1, DROP)
    with pytest.raises(ReaderTimeoutError, match="no answer to APDU 1"):
        card.process(CHALLENGE)
    assert inner.seen == [CHALLENGE] and not card.removed
    assert card.process(CHALLENGE) == ANSWER  # a lost answer is not a tear


def test_corrupt_flips_data_bits_keeps_sw() -> None:
    _, card = _faulty()
    card.at(1, CORRUPT).at(2, CORRUPT)
    corrupted = card.process(CHALLENGE)
    assert corrupted[-2:] == b"\x90\x00" and corrupted[:-2] != ANSWER[:-2] and len(corrupted) == len(ANSWER)
    status_only = card.process(bytes.fromhex("00A40000"))
    assert status_only != b"\x90\x00" and len(status_only) == 2


def test_truncate_cuts_the_data_and_keeps_the_sw() -> None:
    inner, card = _faulty()
    card.at(1, TRUNCATE(2)).at(2, TRUNCATE(9))
    assert card.process(CHALLENGE) == bytes.fromhex("01029000") and inner.seen == [CHALLENGE]
    assert card.process(CHALLENGE) == ANSWER  # nothing to cut
    with pytest.raises(FormatError):
        TRUNCATE(-1)


def test_force_sw_without_processing() -> None:
    inner, card = _faulty()
    card.on_ins(0x84, FORCE_SW(0x6581))
    assert card.process(CHALLENGE) == b"\x65\x81" and inner.seen == []
    with pytest.raises(FormatError):
        FORCE_SW(0x10000)


def test_delay_then_processed() -> None:
    inner, card = _faulty()
    card.at(1, DELAY(0.0))
    assert card.process(CHALLENGE) == ANSWER and card.log == [(1, "delay")]
    assert DELAY(0.25) == Fault("delay", seconds=0.25)
    with pytest.raises(FormatError):
        DELAY(-1)


def test_on_ins_occurrence_counts_from_arming() -> None:
    inner, card = _faulty()
    card.process(bytes.fromhex("0054000004"))  # before arming: not counted
    card.on_ins(0x54, FORCE_SW(0x6F00), occurrence=2)
    assert card.process(bytes.fromhex("0054000004"))[-2:] == b"\x90\x00"
    assert card.process(CHALLENGE) == ANSWER  # another INS
    assert card.process(bytes.fromhex("0054000004")) == b"\x6f\x00"
    assert card.process(bytes.fromhex("0054000004"))[-2:] == b"\x90\x00"  # fired once
    assert card.log == [(4, "force_sw")]
    with pytest.raises(FormatError):
        card.on_ins(0x54, DROP, occurrence=0)
    with pytest.raises(FormatError):
        card.at(0, DROP)


def test_schedule_and_clear() -> None:
    calls: list[tuple[int, bytes]] = []

    def every_third(n: int, apdu: bytes) -> Fault | None:
        calls.append((n, apdu))
        return FORCE_SW(0x6A82) if n % 3 == 0 else None

    _, card = _faulty()
    card.schedule(every_third)
    answers = [card.process(CHALLENGE) for _ in range(6)]
    assert [a == b"\x6a\x82" for a in answers] == [False, False, True, False, False, True]
    assert [n for n, _ in calls] == [1, 2, 3, 4, 5, 6] and calls[0][1] == CHALLENGE
    card.at(8, TEAR_BEFORE)
    card.clear()
    assert all(card.process(CHALLENGE) == ANSWER for _ in range(4))
    constructed = FaultyCard(EchoCard(), schedule=lambda n, apdu: DROP if n == 1 else None)
    with pytest.raises(ReaderTimeoutError):
        constructed.process(CHALLENGE)


def test_torn_card_leaves_the_reader_and_comes_back() -> None:
    _, card = _faulty()
    card.on_ins(0x84, TEAR_AFTER)
    reader = HostedReader([card])
    reader.connect()
    channel = Channel(reader)
    with pytest.raises(CardRemovedError):
        channel.transmit(CHALLENGE)
    assert not reader.is_card_present()
    card.reinsert()
    reader.insert(card)
    reader.connect()
    assert channel.transmit(CHALLENGE).data == b"\x01\x02\x03\x04"
