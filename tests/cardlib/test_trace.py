"""Traces: JSON Lines, masking of PINs, keys and personal data, reading, replay."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU
from cardlib.channel import Channel, Exchange
from cardlib.errors import FormatError, MismatchError, NoCardError
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import open_reader
from cardlib.readers.replay import DEFAULT_ATR, TraceReplayReader, open_trace_reader
from cardlib.trace import (
    Masker,
    Trace,
    TraceEntry,
    TraceRecorder,
    concrete,
    matches,
    read_trace,
    secret,
)
from tests.cards import HOLDER_NAME, HOLDER_SSN, EchoCard, HolderCard


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _record(card: object, *apdus: str, mask_personal: bool = True) -> list[dict[str, object]]:
    stream = io.StringIO()
    reader = HostedReader([card], name="slot")  # type: ignore[list-item]
    recorder = TraceRecorder(stream, "slot", mask_personal=mask_personal)
    recorder.header(reader.connect())
    channel = Channel(reader, observers=[recorder])
    for apdu in apdus:
        channel.transmit(bytes.fromhex(apdu))
    return _lines(stream)


def test_line_format() -> None:
    header, line = _record(EchoCard(), "0084000004")
    assert header == {"atr": "3B80800101", "reader": "slot"}
    assert set(line) == {"t", "reader", "command", "response", "duration_ms"}
    assert line["command"] == "0084000004" and line["response"] == "010203049000"
    assert str(line["t"]).endswith("+08:00")  # Beijing time, with its offset
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


@pytest.mark.parametrize(
    ("command", "masked"),
    [
        ("0020000003123456", "0020000003******"),  # VERIFY
        ("002400000612345665432100", "0024000006************00"),  # CHANGE REFERENCE DATA, Le kept
        ("002C000003123456", "002C000003******"),  # RESET RETRY COUNTER
        ("805E0100071234560465432100", "805E010007**************00"),  # PBOC CHANGE PIN
        ("84D4010010" + "11" * 16, "84D4010010" + "**" * 16),  # WRITE KEY
        ("00200000000003123456", "00200000000003******"),  # extended Lc
        ("0020000000", "0020000000"),  # a PIN status query carries no PIN
    ],
)
def test_pin_and_key_bytes_masked(command: str, masked: str) -> None:
    assert Masker().command(bytes.fromhex(command)) == masked
    assert len(masked) == len(command)


def test_not_secret_commands_kept() -> None:
    masker = Masker()
    for command in ("801A270110" + "11" * 16, "00D6000003123456", "00A4040008A000000632010105"):
        assert masker.command(bytes.fromhex(command)) == command.upper()


def test_secret_block_masks_both_ways() -> None:
    stream = io.StringIO()
    reader = HostedReader([EchoCard()], name="slot")
    reader.connect()
    channel = Channel(reader, observers=[TraceRecorder(stream, "slot")])
    with secret():
        channel.transmit(bytes.fromhex("80FA000004CAFEBABE04"))
    channel.transmit(bytes.fromhex("80FA000004CAFEBABE04"))
    hidden, shown = _lines(stream)
    assert hidden["command"] == "80FA000004********04" and hidden["response"] == "********9000"
    assert shown["command"] == "80FA000004CAFEBABE04" and shown["response"] == "CAFEBABE9000"


def test_holder_records_masked_by_select_and_by_sfi() -> None:
    name_hex = HOLDER_NAME.hex().upper()
    lines = _record(
        HolderCard(),
        "00A4020002EF06",
        "00B2090000",  # current EF is EF06: masked
        "00B2080000",
        "00A4020002EF05",
        "00B2090000",  # EF05 selected now: not the holder file (card says 6A82)
        "00B2093400",  # SFI 6 in P2: masked whatever is selected
    )
    entries = lines[1:]
    assert entries[1]["response"] == "**" * (2 + len(HOLDER_NAME)) + "9000"
    assert entries[2]["response"] == "**" * (2 + len(HOLDER_SSN)) + "9000"
    assert entries[4]["response"] == "6A82"
    assert entries[5]["response"] == "**" * (2 + len(HOLDER_NAME)) + "9000"
    assert name_hex not in json.dumps(lines) and HOLDER_SSN.hex().upper() not in json.dumps(lines)


def test_purse_holder_file_masked_and_kept_on_request() -> None:
    masked = _record(HolderCard(), "00B0960037")[1]["response"]
    assert masked == "**" * 22 + "9000"
    shown = _record(HolderCard(), "00B0960037", mask_personal=False)[1]["response"]
    assert HOLDER_NAME.hex().upper() in str(shown)
    other = _record(HolderCard(), "00B0950000")[1]["response"]  # file 0x15 is not personal
    assert "*" not in str(other)


def test_personal_data_arriving_in_get_response_masked() -> None:
    lines = _record(HolderCard(t0=True), "00A4020002EF06", "00B2090000", "0084000008")
    read, get_response = lines[2], lines[3]
    assert read["response"] == "6106" and get_response["command"] == "00C0000006"
    assert get_response["response"] == "**" * (2 + len(HOLDER_NAME)) + "9000"
    assert lines[4]["response"] == "6D00"  # the next command is not personal any more
    assert HOLDER_NAME.hex().upper() not in json.dumps(lines)


def test_pin_masked_even_when_personal_data_shown() -> None:
    line = _record(HolderCard(), "0020000003123456", mask_personal=False)[1]
    assert line["command"] == "0020000003******" and line["response"] == "9000"


def test_each_reader_keeps_its_own_selection() -> None:
    stream = io.StringIO()
    recorder = TraceRecorder(stream)
    name = b"\x09\x02\xd5\xc5\x90\x00"
    recorder(Exchange(bytes.fromhex("00A4020002EF06"), b"\x90\x00", 0.0, 0.0, "card"))
    recorder(Exchange(bytes.fromhex("00A4020002EF05"), b"\x90\x00", 0.0, 0.0, "psam"))
    recorder(Exchange(bytes.fromhex("00B2090000"), name, 0.0, 0.0, "card"))
    recorder(Exchange(bytes.fromhex("00B2090000"), name, 0.0, 0.0, "psam"))
    card, psam = _lines(stream)[2:]
    assert card["response"] == "********9000" and psam["response"] == "0902D5C59000"


def test_recorder_file_truncates_or_appends(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"atr": "3B01", "reader": "old"}\n')  # an earlier trace is replaced
    with TraceRecorder(path, "r") as rec:
        rec.header(b"\x3b\x00")
    assert path.read_text().splitlines() == ['{"atr": "3B00", "reader": "r"}']
    with TraceRecorder(path, "r", append=True) as rec:
        rec(Exchange(b"\x00\x84\x00\x00\x01", b"\x01\x90\x00", 0.0, 0.0, "r"))
    assert len(read_trace(path)) == 1
    rec.close()
    rec(Exchange(b"\x00\x84\x00\x00\x01", b"\x01\x90\x00", 0.0, 0.0, "r"))  # after close: ignored
    with pytest.raises(FormatError, match="cannot write trace"):
        TraceRecorder(tmp_path / "no" / "dir.jsonl")


def test_read_trace_entries(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"atr": "3B00", "reader": "card"}\n'
        "\n"
        '{"t": "2026-11-28T08:15:00+08:00", "reader": "card", "command": "0084000004", '
        '"response": "010203049000", "duration_ms": 1.5}\n'
        '{"atr": "3B8F8001", "reader": "psam"}\n'
        '{"reader": "psam", "command": "00b0960006", "response": "************9000"}\n'
    )
    trace = read_trace(path)
    assert isinstance(trace, list) and len(trace) == 2 and trace.atr == bytes.fromhex("3B00")
    assert trace[0] == TraceEntry("0084000004", "010203049000", 1.5, "card", "2026-11-28T08:15:00+08:00", 3)
    assert trace[1].command == "00B0960006" and trace[1].line == 5 and trace.entries == tuple(trace)
    psam = trace.for_reader("psam")
    assert psam.atr == bytes.fromhex("3B8F8001") and [e.line for e in psam] == [5]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"atr": "3B00"}\nnot json\n', "line 2: not JSON"),
        ('{"command": "00"}\n', "line 1: missing 'response'"),
        ('{"response": "9000"}\n', "line 1: missing 'command'"),
        ('{"command": "0G", "response": "9000"}\n', "line 1: command has '0G', not hex"),
        ('{"command": "000", "response": "9000"}\n', "line 1: command must be hex"),
        ('{"command": 12, "response": "9000"}\n', "line 1: command must be hex"),
        ('{"command": "00", "response": "90"}\n', "line 1: a response needs SW1 SW2"),
        ('{"command": "00", "response": "9000", "duration_ms": "fast"}\n', "line 1: duration_ms"),
        ('{"atr": "3B**"}\n', "line 1: the ATR cannot be masked"),
        ('\n\n[1]\n', "line 3: expected a JSON object"),
    ],
)
def test_broken_traces_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(FormatError, match=message):
        read_trace(path)


def test_unreadable_trace_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="cannot read trace"):
        read_trace(tmp_path / "missing.jsonl")
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FormatError, match="not UTF-8"):
        read_trace(binary)


@given(st.binary(min_size=1, max_size=40), st.data())
def test_masked_bytes_match_anything(data: bytes, draw: st.DataObject) -> None:
    hidden = draw.draw(st.sets(st.integers(0, len(data) - 1)))
    pattern = "".join("**" if i in hidden else f"{b:02X}" for i, b in enumerate(data))
    assert matches(pattern, data)
    assert matches(pattern, bytes(b ^ 0xFF if i in hidden else b for i, b in enumerate(data)))
    assert concrete(pattern, 0xAA) == bytes(0xAA if i in hidden else b for i, b in enumerate(data))
    if len(hidden) < len(data):
        i = min(set(range(len(data))) - hidden)
        assert not matches(pattern, data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :])
    assert not matches(pattern, data + b"\x00")


def _trace_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    return path


def test_replay_answers_in_order(tmp_path: Path) -> None:
    path = _trace_file(
        tmp_path,
        '{"atr": "3B00"}\n'
        '{"command": "0020000003******", "response": "9000"}\n'
        '{"command": "00B2090000", "response": "********9000"}\n',
    )
    reader = TraceReplayReader(path)
    assert reader.name == f"trace:{path}"
    with pytest.raises(NoCardError):
        reader.transmit(bytes.fromhex("0020000003123456"))
    assert reader.connect() == bytes.fromhex("3B00") and reader.is_card_present()
    assert reader.transmit(bytes.fromhex("0020000003999999")) == b"\x90\x00"
    assert reader.transmit(bytes.fromhex("00B2090000")) == bytes(4) + b"\x90\x00"
    assert reader.remaining == 0 and reader.position == 2
    with pytest.raises(MismatchError, match="trace exhausted: command 3"):
        reader.transmit(b"\x00\x84\x00\x00\x08")


def test_replay_mismatch_names_entry_expected_and_got(tmp_path: Path) -> None:
    path = _trace_file(tmp_path, '{"command": "0084000008", "response": "9000"}\n' '{"command": "00B0960006", "response": "9000"}\n')
    reader = open_reader(f"trace:{path}")
    assert reader.connect() == DEFAULT_ATR  # no header: the default ATR
    reader.transmit(bytes.fromhex("0084000008"))
    with pytest.raises(MismatchError, match=r"trace entry 2 \(line 2\) differs: expected 00B0960006, got 00B0960007") as info:
        reader.transmit(bytes.fromhex("00B0960007"))
    assert info.value.exit_code == 1


def test_replay_one_reader_of_several(tmp_path: Path) -> None:
    path = _trace_file(
        tmp_path,
        '{"atr": "3B00", "reader": "card"}\n{"atr": "3B01", "reader": "psam"}\n'
        '{"reader": "psam", "command": "00B0960006", "response": "0000000000019000"}\n'
        '{"reader": "card", "command": "0084000004", "response": "010203049000"}\n',
    )
    card = open_reader(f"trace:{path}?reader=card")
    assert card.connect() == bytes.fromhex("3B00")
    assert card.transmit(bytes.fromhex("0084000004"))[:4] == b"\x01\x02\x03\x04"
    with pytest.raises(FormatError, match="no exchange of reader 'nobody'"):
        open_trace_reader(str(path), {"reader": "nobody"})
    with pytest.raises(FormatError, match="unknown option"):
        open_trace_reader(str(path), {"speed": "1"})
    with pytest.raises(FormatError, match="trace:PATH"):
        open_trace_reader("", {})


def test_round_trip_through_channel(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    reader = HostedReader([HolderCard(t0=True)], name="card")
    with TraceRecorder(path, "card") as recorder:
        recorder.header(reader.connect())
        live = Channel(reader, observers=[recorder])
        commands = [CommandAPDU.from_hex(c) for c in ("00A4020002EF06", "00B2090000", "0020000003123456")]
        answers = [live.transmit(c) for c in commands]
    replay = Channel(TraceReplayReader(Trace(read_trace(path).atr, read_trace(path))))
    assert replay.reader.connect() == bytes.fromhex("3B80800101")
    again = [replay.transmit(c) for c in commands]
    assert [a.sw for a in again] == [a.sw for a in answers]
    assert again[1].data == bytes(len(answers[1].data))  # the name stays hidden in replay
    assert again[0] == answers[0] and again[2] == answers[2]
