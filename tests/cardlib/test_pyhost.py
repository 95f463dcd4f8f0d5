"""The in-process host reader (py: URIs): the field, connect rules, tears, factories."""

from __future__ import annotations

import pytest

from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MultipleCardsError,
    NoCardError,
    ReaderUnavailableError,
)
from cardlib.readers.base import Disposition
from cardlib.readers.pyhost import HostedReader, open_py_reader
from cardlib.readers.registry import open_reader
from tests.cards import ATR_T0, ATR_T1, EchoCard, T0Card

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)

ECHO_SINGLETON = EchoCard()  # a ready-made card object, not a factory


def make_cards(count: str = "1", atr: str = "3B80800101") -> list[EchoCard]:
    return [EchoCard(bytes.fromhex(atr)) for _ in range(int(count))]


def not_a_card() -> object:
    return 42


def test_field_insert_remove() -> None:
    a, b = EchoCard(), EchoCard()
    reader = HostedReader(name="field")
    assert len(reader.cards) == 0 and not reader.is_card_present()
    with pytest.raises(NoCardError, match="no card in field"):
        reader.connect()
    reader.insert(a)
    reader.insert(a)  # already there: once
    assert list(reader.cards) == [a] and reader.is_card_present()
    reader.insert(b)
    with pytest.raises(MultipleCardsError) as info:
        reader.connect()
    assert info.value.count == 2 and info.value.exit_code == 1
    reader.remove(a)
    assert list(reader.cards) == [b]
    reader.remove(a)  # not there: nothing happens
    assert reader.connect() == ATR_T1 and reader.atr == ATR_T1 and reader.card is b
    reader.remove()
    assert reader.cards == () and reader.card is None
    with pytest.raises(NoCardError):
        reader.transmit(b"\x00\x84\x00\x00\x08")
    with pytest.raises(NoCardError):
        _ = reader.atr


def test_equal_cards_are_still_two() -> None:
    class Same(EchoCard):
        def __eq__(self, other: object) -> bool:
            return isinstance(other, Same)

        __hash__ = EchoCard.__hash__

    one, two = Same(), Same()
    reader = HostedReader([one])
    reader.insert(two)
    assert len(reader.cards) == 2
    reader.remove(two)
    assert reader.cards[0] is one


def test_connect_resets_and_transmit_reaches_the_card() -> None:
    card = T0Card()
    reader = HostedReader([card])
    assert reader.connect() == ATR_T0
    assert reader.transmit(bytes.fromhex("00B0000008"))[-2:] == b"\x90\x00"
    assert card.seen == [bytes.fromhex("00B0000008")]


def test_not_connected_transmit() -> None:
    reader = HostedReader([EchoCard()])
    with pytest.raises(NoCardError, match="no card connected"):
        reader.transmit(b"\x00\x84\x00\x00\x08")


def test_torn_card_leaves_the_field() -> None:
    card = EchoCard()
    reader = HostedReader([card])
    reader.connect()
    card.torn = True
    with pytest.raises(CardRemovedError):
        reader.transmit(b"\x00\x84\x00\x00\x08")
    assert reader.cards == () and reader.card is None
    card.torn = False
    reader.insert(card)
    reader.connect()
    assert reader.transmit(b"\x00\x84\x00\x00\x02") == b"\x01\x02\x90\x00"


def test_torn_during_connect() -> None:
    card = EchoCard()
    card.torn = True
    reader = HostedReader([card])
    with pytest.raises(CardRemovedError):
        reader.connect()
    assert reader.cards == ()


def test_disconnect_dispositions() -> None:
    resets: list[int] = []

    class Counting(EchoCard):
        def reset(self) -> bytes:
            resets.append(1)
            return super().reset()

    reader = HostedReader([Counting()])
    reader.connect()
    reader.disconnect()
    assert len(resets) == 1  # LEAVE: no reset
    reader.connect()
    reader.disconnect(Disposition.RESET)
    assert len(resets) == 3
    with pytest.raises(NoCardError):
        reader.transmit(b"\x00\x84\x00\x00\x08")
    reader.close()  # closing twice is fine
    reader.close()


def test_open_py_reader_factories() -> None:
    reader = open_py_reader("tests.cards:t0_card", {})
    assert reader.name == "py:tests.cards:t0_card" and reader.connect() == ATR_T0
    two = open_py_reader("tests.cardlib.test_pyhost:make_cards", {"count": "2"})
    assert len(two.cards) == 2
    one = open_reader("py:tests.cardlib.test_pyhost:make_cards?atr=3B00")
    assert one.connect() == bytes.fromhex("3B00")
    assert open_py_reader("tests.cardlib.test_pyhost:ECHO_SINGLETON", {}).cards == (ECHO_SINGLETON,)
    assert isinstance(open_py_reader("tests.cards:EchoCard", {}).cards[0], EchoCard)


@pytest.mark.parametrize(
    ("target", "options", "error", "message"),
    [
        ("tests.cards", {}, FormatError, "package.module:factory"),
        (":t0_card", {}, FormatError, "package.module:factory"),
        ("tests.cards:", {}, FormatError, "package.module:factory"),
        ("tests.cards:nope", {}, ReaderUnavailableError, "no 'nope'"),
        ("no_such_module_xyz:card", {}, ReaderUnavailableError, "'no_such_module_xyz' is code and is not allowed"),
        (".relative:card", {}, ReaderUnavailableError, "is not allowed"),
        ("tests.cardlib.test_pyhost:not_a_card", {}, FormatError, "int, not a card"),
        ("tests.cards:t0_card", {"speed": "9"}, FormatError, "does not take these options"),
        ("tests.cardlib.test_pyhost:ECHO_SINGLETON", {"x": "1"}, FormatError, "takes no options"),
        ("tests.cards:ATR_T0", {}, FormatError, "not a card"),
    ],
)
def test_open_py_reader_errors(target: str, options: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        open_py_reader(target, options)
