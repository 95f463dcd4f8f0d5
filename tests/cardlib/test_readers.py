"""Readers by URI, the in-process host reader and trace replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardlib.channel import Channel
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MismatchError,
    MultipleCardsError,
    NoCardError,
    ReaderUnavailableError,
)
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import available_schemes, open_reader, parse_uri, register
from cardlib.trace import TraceRecorder, read_trace
from tests.cards import EchoCard

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)


def test_parse_uri() -> None:
    u = parse_uri("pn532:/dev/ttyS1?baud=115200&timeout=0.5")
    assert (u.scheme, u.target, u.options) == ("pn532", "/dev/ttyS1", {"baud": "115200", "timeout": "0.5"})
    assert parse_uri("py:tests.cards:echo_card").target == "tests.cards:echo_card"
    assert parse_uri("pcsc:Virtual PCD 00 00").target == "Virtual PCD 00 00"
    assert str(parse_uri("pcsc:0?share=exclusive")) == "pcsc:0?share=exclusive"
    for bad in ("", "?x=1", "a b:c", "pcsc:0?share"):
        with pytest.raises(FormatError):
            parse_uri(bad)


def test_schemes_and_unknown() -> None:
    assert {"sim", "py", "pcsc", "pn532", "trace"} <= set(available_schemes())
    with pytest.raises(ReaderUnavailableError, match="unknown reader scheme 'nfc'"):
        open_reader("nfc:usb")


def test_register_custom_backend() -> None:
    made: list[tuple[str, dict[str, str]]] = []

    def factory(target: str, options: dict[str, str]) -> HostedReader:
        made.append((target, options))
        return HostedReader([EchoCard()], name="mine")

    from cardlib.readers import registry

    register("mine", factory)
    try:
        reader = open_reader("mine:slot1?x=1")
        assert reader.name == "mine" and made == [("slot1", {"x": "1"})]
    finally:
        registry._registered.pop("mine", None)  # other tests list the schemes


def test_py_reader_card_life() -> None:
    reader = open_reader("py:tests.cards:echo_card")
    assert isinstance(reader, HostedReader)
    atr = reader.connect()
    assert atr == reader.atr == bytes.fromhex("3B80800101")
    assert reader.transmit(bytes.fromhex("0084000004")) == bytes.fromhex("010203049000")
    card = reader.cards[0]
    card.torn = True  # type: ignore[attr-defined]
    with pytest.raises(CardRemovedError):
        reader.transmit(bytes.fromhex("0084000004"))
    assert not reader.is_card_present()
    with pytest.raises(NoCardError):
        reader.connect()
    card.torn = False  # type: ignore[attr-defined]
    reader.insert(card)
    assert reader.wait_for_card(0.1)
    reader.connect()


def test_py_reader_errors() -> None:
    with pytest.raises(MultipleCardsError, match="2 cards"):
        open_reader("py:tests.cards:two_cards").connect()
    with pytest.raises(FormatError, match="package.module:factory"):
        open_reader("py:tests.cards")
    with pytest.raises(ReaderUnavailableError, match="no 'nope'"):
        open_reader("py:tests.cards:nope")
    with pytest.raises(ReaderUnavailableError, match="not allowed to run"):
        open_reader("py:no_such_module_here:x")


def test_record_and_replay(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    reader = open_reader("py:tests.cards:t0_card")
    recorder = TraceRecorder(path, reader.name)
    recorder.header(reader.connect())
    ch = Channel(reader, observers=[recorder])
    ch.transmit(bytes.fromhex("00A4040008A000000632010105"))
    ch.transmit(bytes.fromhex("0020000003123456"))  # a PIN: masked
    recorder.close()
    text = path.read_text()
    assert "123456" not in text and "******" in text
    trace = read_trace(path)
    assert len(trace.entries) == 3  # SELECT, GET RESPONSE, VERIFY
    replay = open_reader(f"trace:{path}")
    ch2 = Channel(replay)
    assert replay.connect() == bytes.fromhex("3B00")
    assert ch2.transmit(bytes.fromhex("00A4040008A000000632010105")).data.hex().upper().startswith("6F12")
    assert ch2.transmit(bytes.fromhex("0020000003999999")).sw == 0x6D00  # masked PIN matches any
    with pytest.raises(MismatchError, match="trace exhausted"):
        ch2.transmit(bytes.fromhex("00B0000008"))


def test_replay_mismatch_names_entry(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"atr": "3B00"}\n{"command": "0084000008", "response": "11223344556677889000"}\n')
    reader = open_reader(f"trace:{path}")
    reader.connect()
    with pytest.raises(MismatchError, match="entry 1 .line 2. differs: expected 0084000008, got 0084000004"):
        reader.transmit(bytes.fromhex("0084000004"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not JSON"),
        ('{"command": "00"}\n', "line 1: missing 'response'"),
        ('{"command": "0G", "response": "9000"}\n', "not hex"),
        ('[1]\n', "expected a JSON object"),
    ],
)
def test_broken_traces(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(FormatError, match=message):
        read_trace(path)


def test_personal_data_masked(tmp_path: Path) -> None:
    from cardlib.channel import Exchange

    path = tmp_path / "t.jsonl"
    rec = TraceRecorder(path, "x")
    name = "张三".encode("gbk")
    rec(Exchange(bytes.fromhex("00A4020002EF06"), b"\x90\x00", 0.001, 0.0, "x"))
    rec(Exchange(bytes.fromhex("00B2090000"), b"\x09\x04" + name + b"\x90\x00", 0.001, 0.0, "x"))
    rec.close()
    text = path.read_text()
    assert name.hex().upper() not in text and "9000" in text
    unmasked = tmp_path / "u.jsonl"
    rec2 = TraceRecorder(unmasked, "x", mask_personal=False)
    rec2(Exchange(bytes.fromhex("00B2093400"), b"\x09\x04" + name + b"\x90\x00", 0.001, 0.0, "x"))
    rec2.close()
    assert name.hex().upper() in unmasked.read_text()
