"""Fuzzing every decoder and every virtual card (issue 7).

The rule: whatever comes in (random bytes, random text, or — to reach deep —
a valid encoding with bytes flipped, cut or inserted, or a valid JSON/TOML
document with values of the wrong type, out of range or cut short), out
comes either a value or a typed error of ``cardlib.errors`` (a YktError).
Never an IndexError, KeyError, ValueError, UnicodeDecodeError, struct.error
or TypeError from inside. Virtual cards answer every APDU stream with a
well-formed response, and no stream without valid keys moves money.

Random-bytes fuzzing that lives next to its module already (TLV, ATR, PN532
frames, the vpcd split stream, card-image values) is not repeated here.
Examples per test scale with the hypothesis profile (tests/conftest.py):
``YKT_FULL=1`` runs twenty times more.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.atr import build_contactless_atr, parse_atr
from cardlib.batch import read_batch
from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.errors import CardRemovedError, ReaderTimeoutError, YktError
from cardlib.iso import get_challenge, read_binary, read_record, select_aid
from cardlib.keys import IssuerKeys, KeyEntry, load_issuer_keys, test_issuer
from cardlib.pboc import capp, macs
from cardlib.pboc import files as F
from cardlib.pboc import psam as W
from cardlib.pboc import purse as P
from cardlib.readers.pn532 import Pn532Reader, parse_targets
from cardlib.readers.pn532_frames import FrameParser, command, response
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.replay import TraceReplayReader
from cardlib.script import parse_script
from cardlib.settlement import verify_records
from cardlib.ssse import commands as C
from cardlib.ssse import files as S
from cardlib.tlv import Tlv, parse, to_json
from cardlib.trace import Masker, parse_trace, read_trace
from simulators.faults import CORRUPT, DROP, TEAR_AFTER, TEAR_BEFORE, Fault, FaultyCard
from simulators.image import card_from_json, card_to_json, load_card, save_image
from simulators.issuer import sample_card
from simulators.pn532 import Pn532Emulator
from simulators.psam import make_psam
from simulators.ssc import SocialSecurityCard
from simulators.vpcd import GET_ATR, POWER_ON, RESET, VpcdBridge, frame, read_message
from terminal.config import load_config, parse_config
from terminal.denylist import DenyList, build_denylist, parse_serial_lines
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app
from terminal.taps import parse_taps, read_taps
from tests.reliability.site import Site, purchases_journal

T = TypeVar("T")
BASE = settings.default.max_examples  # 100 in CI, 2000 with YKT_FULL=1


def budget(n: int) -> settings:
    """``n`` examples in the CI profile, scaled with the profile (and YKT_EXAMPLES)."""
    return settings(max_examples=max(3, BASE * n // 100), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def typed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """The value, or None for a typed error; anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except YktError:
        return None


# --- mutations of valid encodings ---------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, valid: bytes, max_ops: int = 3) -> bytes:
    """A valid encoding with a few bytes flipped, cut, inserted, dropped or repeated."""
    out = bytearray(valid)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "repeat"]))
        i = draw(st.integers(0, len(out))) if out else 0
        if op == "flip" and i < len(out):
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and i < len(out):
            out[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x81, 0x82, 0x84]) | st.integers(0, 255))
        elif op == "truncate":
            del out[i:]
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del out[i : i + draw(st.integers(1, 4))]
        elif op == "repeat":
            out[i:i] = out[i : i + draw(st.integers(1, 8))]
    return bytes(out)


def _mutated_text(draw: st.DrawFn, text: str) -> str:
    chars = list(text)
    i = draw(st.integers(0, len(chars)))
    op = draw(st.sampled_from(["cut", "char", "drop", "lower", "append", "empty"]))
    if op == "cut":
        return text[:i]
    if op == "char" and i < len(chars):
        chars[i] = draw(st.sampled_from(["G", "0", " ", "-", "é", "\x00", "\u4e00", "Z", "."]))
    elif op == "drop" and i < len(chars):
        del chars[i]
    elif op == "lower":
        return text.lower()
    elif op == "append":
        return text + draw(st.sampled_from(["0", "00", "F", "x", "\n"]))
    elif op == "empty":
        return ""
    return "".join(chars)


EDGE_INTS = [-1, 0, 1, 255, 256, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**32, 2**63, -(2**63),
             2**64, 10**30]
EDGE_FLOATS = [0.5, -0.5, 1e308, -1e308, math.inf, -math.inf, math.nan, 1e-300]
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=5,
)


def _mutated_value(draw: st.DrawFn, old: Any) -> Any:
    """A value near ``old`` but wrong: another type, out of range, cut short."""
    if draw(st.integers(0, 4)) == 0:
        return draw(ANY_JSON)
    if isinstance(old, bool):
        return draw(st.sampled_from([not old, 0, 1, "true", None, []]))
    if isinstance(old, int):
        return draw(st.sampled_from([*EDGE_INTS, old + 1, old - 1, -old, float(old), str(old), None, True, [old]]))
    if isinstance(old, float):
        return draw(st.sampled_from([*EDGE_FLOATS, int(old) if math.isfinite(old) else 0, str(old), None]))
    if isinstance(old, str):
        return _mutated_text(draw, old) if draw(st.booleans()) else draw(st.sampled_from([None, 0, [old], {}, old * 40]))
    if isinstance(old, list):
        return draw(st.sampled_from([[], old[:1], old + old, None, {}, "x"]))
    if isinstance(old, dict):
        return draw(st.sampled_from([{}, [], None, "x", 0]))
    return draw(ANY_JSON)


def json_paths(obj: Any, prefix: tuple[Any, ...] = (), long_lists: int = 40) -> list[tuple[Any, ...]]:
    """Every path into a JSON tree (long lists such as an RNG state: their first items only)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += json_paths(v, (*prefix, k), long_lists)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:long_lists] if len(obj) > long_lists else obj):
            out += json_paths(v, (*prefix, i), long_lists)
    return out


@st.composite
def mutated_json(draw: st.DrawFn, valid: Any, paths: list[tuple[Any, ...]] | None = None, max_ops: int = 3) -> Any:
    """A copy of a valid JSON/TOML tree with a few values replaced, deleted or added."""
    obj = copy.deepcopy(valid)
    candidates = paths if paths is not None else json_paths(valid)
    for _ in range(draw(st.integers(1, max_ops))):
        path = draw(st.sampled_from(candidates))
        node = obj
        try:
            for step in path[:-1]:
                node = node[step]
            last = path[-1]
            op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
            if op == "delete":
                del node[last]
            elif op == "add" and isinstance(node, dict):
                node[draw(st.sampled_from(["extra", "x", str(last) + "_", ""]))] = draw(ANY_JSON)
            else:
                node[last] = _mutated_value(draw, node[last])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the path
    return obj


# --- APDU -------------------------------------------------------------------------------------------

apdus = st.builds(
    CommandAPDU, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.one_of(st.binary(max_size=20), st.binary(min_size=250, max_size=300)),
    st.one_of(st.none(), st.integers(1, 300), st.sampled_from([256, 65536])),
)


@budget(100)
@given(apdus, st.booleans(), st.data())
def test_command_apdu_mutations_decode_or_format_error(cmd: CommandAPDU, extended: bool, data: st.DataObject) -> None:
    valid = cmd.encode(extended or cmd.needs_extended)
    assert CommandAPDU.decode(valid) == cmd
    raw = data.draw(mutated_bytes(valid))
    got = typed(CommandAPDU.decode, raw)
    if got is not None:
        assert CommandAPDU.decode(got.encode()) == got
    typed(CommandAPDU.from_hex, data.draw(st.sampled_from([raw.hex(" "), "0x" + raw.hex(), raw.hex()[:-1], raw.hex() + "g"])))


@budget(60)
@given(st.binary(max_size=300))
def test_response_apdu_any_bytes(raw: bytes) -> None:
    r = typed(ResponseAPDU.decode, raw)
    if r is not None:
        assert r.encode() == raw and isinstance(r.meaning, str)
        assert typed(r.check, "X") is (r if r.ok else None)


# --- TLV and ATR: valid encodings mutated (random bytes are fuzzed in their own tests) ----------------

tags = st.sampled_from([0x84, 0x50, 0x88, 0x9F0C, 0x5F2D, 0xDF8101, 0x01, 0x80])
templates = st.sampled_from([0x6F, 0xA5, 0x61, 0xBF0C, 0x62, 0x70])
tlv_trees = st.recursive(
    st.builds(Tlv, tags, st.binary(max_size=140)),
    lambda kids: st.builds(lambda t, c: Tlv(t, b"", tuple(c)), templates, st.lists(kids, max_size=3)),
    max_leaves=8,
)


@budget(100)
@given(st.lists(tlv_trees, min_size=1, max_size=3), st.booleans(), st.data())
def test_tlv_mutated_encodings(objs: list[Tlv], strict: bool, data: st.DataObject) -> None:
    raw = data.draw(mutated_bytes(b"".join(o.encode() for o in objs)))
    parsed = typed(parse, raw, strict=strict)
    for obj in parsed or []:
        to_json(obj)
        obj.find(0x9F0C)


@st.composite
def valid_atrs(draw: st.DrawFn) -> bytes:
    hist = draw(st.binary(max_size=15))
    if draw(st.booleans()):
        return build_contactless_atr(hist)
    ta, tc = draw(st.integers(0, 255)), draw(st.integers(0, 255))
    return bytes((0x3B, 0x50 | len(hist), ta, tc)) + hist


@budget(80)
@given(valid_atrs(), st.data())
def test_atr_mutated_encodings(valid: bytes, data: st.DataObject) -> None:
    atr = typed(parse_atr, data.draw(mutated_bytes(valid)))
    if atr is not None:
        atr.describe()
        assert atr.fi >= 0 and atr.di >= 0 and atr.guard_time >= 0 and atr.tck_valid in (None, True, False)


# --- PN532: the driver's side (frames themselves: tests/cardlib/test_pn532_frames.py) -------------------


@st.composite
def target_lists(draw: st.DrawFn) -> bytes:
    """InListPassiveTarget answers as a chip sends them, then mutated."""
    targets = draw(st.lists(st.tuples(st.binary(min_size=2, max_size=2), st.sampled_from([0x00, 0x08, 0x20, 0x28]),
                                      st.binary(min_size=4, max_size=10), st.binary(max_size=20)), max_size=2))
    out = bytearray((len(targets),))
    for tg, (sens, sel, uid, hist) in enumerate(targets, 1):
        out += bytes((tg,)) + sens + bytes((sel, len(uid))) + uid
        if sel & 0x20:
            ats = bytes((0x78, 0x80, 0x70, 0x02)) + hist
            out += bytes((len(ats) + 1,)) + ats
    return draw(st.one_of(st.just(bytes(out)), mutated_bytes(bytes(out))))


@budget(100)
@given(target_lists())
def test_pn532_target_lists(raw: bytes) -> None:
    for target in typed(parse_targets, raw) or []:
        typed(build_contactless_atr, target.historical_bytes[:15])  # what connect() does with it


class ChipLine:
    """A serial port whose far end is the PN532 emulator; once armed, the chip's
    frames are mutated: bytes flipped or cut, or a well-formed frame carrying
    fuzzed parameters (so they reach the driver's decoders)."""

    def __init__(self, emu: Pn532Emulator, data: st.DataObject) -> None:
        self.emu, self.data = emu, data
        self.timeout = 0.02
        self.armed = False
        self._in = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self._in)

    def read(self, n: int) -> bytes:
        if not self._in:
            threading.Event().wait(0.001)
        chunk = bytes(self._in[:n])
        del self._in[:n]
        return chunk

    def _mutate(self, out: bytes) -> bytes:
        if not self.armed or len(out) < 8 or self.data.draw(st.integers(0, 3)) > 0:
            return out
        if self.data.draw(st.booleans()):
            return self.data.draw(mutated_bytes(out))
        code = (out[6] - 1) & 0xFF  # D5 code+1 of a normal frame
        return response(code, self.data.draw(st.one_of(st.binary(max_size=30), mutated_bytes(out[7:-2]))))

    def write(self, data: bytes) -> int:
        for out in self.emu.receive(bytes(data)):
            self._in += self._mutate(out)
        return len(data)

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self._in.clear()

    def close(self) -> None:
        pass


@budget(25)
@given(st.data())
def test_pn532_driver_with_a_chip_answering_mutated_frames(data: st.DataObject) -> None:
    card = sample_card(3)
    emu = Pn532Emulator([card])
    line = ChipLine(emu, data)
    reader = Pn532Reader(line, timeout=0.03, ack_timeout=0.01, retries=1)
    line.armed = True
    typed(reader.connect)
    for apdu in data.draw(st.lists(st.sampled_from([select_aid(P.PURSE_AID), P.GetBalance().to_apdu(),
                                                     read_binary(0, 30, sfi=0x15)]), max_size=3)):
        answer = typed(reader.transmit, apdu.encode())
        if answer is not None and len(answer) >= 2:
            ResponseAPDU.decode(answer)
    typed(reader.is_card_present)
    typed(reader.disconnect)
    assert card.balance == 5000


host_frames = st.builds(command,
                        st.sampled_from([0x00, 0x02, 0x04, 0x06, 0x08, 0x12, 0x14, 0x16, 0x32, 0x40, 0x42, 0x44,
                                         0x4A, 0x52, 0x54, 0x60]),
                        st.binary(max_size=12))


@budget(80)
@given(st.lists(st.one_of(host_frames, host_frames.flatmap(mutated_bytes), st.binary(max_size=20)), max_size=8))
def test_pn532_emulator_reads_any_host_bytes(chunks: list[bytes]) -> None:
    emu = Pn532Emulator([sample_card(4)])
    parser = FrameParser()
    for chunk in chunks:
        for out in emu.receive(chunk):
            assert parser.feed(out), out.hex()  # every answer is a whole frame
    assert emu.cards[0].balance == 5000 if emu.cards else True


# --- vpcd: the card's side of the length-prefixed link --------------------------------------------------

vpcd_messages = st.one_of(
    st.sampled_from([bytes((GET_ATR,)), bytes((POWER_ON,)), bytes((RESET,)), b"\x00", b"\x09", b""]),
    st.sampled_from([select_aid(P.PURSE_AID).encode(), P.GetBalance().to_apdu().encode(),
                     read_record(1, sfi=0x18, le=23).encode()]),
    st.binary(min_size=2, max_size=300),
)


@budget(50)
@given(st.lists(vpcd_messages, max_size=10), st.binary(max_size=5), st.data())
def test_vpcd_bridge_answers_every_message(messages: list[bytes], tail: bytes, data: st.DataObject) -> None:
    """Whatever pcscd's side sends, each APDU and ATR poll gets one framed answer with a
    status word, and the card model never fails (no 6F00, nothing logged)."""
    card = sample_card(5)
    bridge = VpcdBridge(card)
    stream = b"".join(frame(m) for m in messages)
    stream = data.draw(st.one_of(st.just(stream), mutated_bytes(stream))) + tail
    a, b = socket.socketpair()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("simulators.vpcd").addHandler(handler)
    try:
        a.sendall(stream)
        a.shutdown(socket.SHUT_WR)
        bridge._session(b)
        b.close()
        answers = []
        while (m := read_message(a)) is not None:
            answers.append(m)
    finally:
        logging.getLogger("simulators.vpcd").removeHandler(handler)
        a.close()
        b.close()
    assert not records, [r.getMessage() for r in records]
    for answer in answers:
        assert answer == card.atr or (len(answer) >= 2 and answer[-2:] != b"\x6f\x00")
    if stream == b"".join(frame(m) for m in messages):
        assert len(answers) == sum(1 for m in messages if len(m) > 1 or m == bytes((GET_ATR,)))
    assert card.balance == 5000


# --- card images: type-aware value mutations and corrupted files, then a real tap ------------------------

CARD_IMAGE = card_to_json(sample_card(6))
CARD_PATHS = json_paths(CARD_IMAGE, long_lists=3)
PSAM_IMAGE = card_to_json(make_psam())
PSAM_PATHS = json_paths(PSAM_IMAGE, long_lists=3)
CLOCK_AT = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
BUS = {"terminal": {"role": "bus_validator", "name": "bus", "line": "K1"}, "fares": {"flat": 200}}


def image_secrets(image: dict[str, Any]) -> list[str]:
    out = [image["ssse"]["pin"], image["ssse"]["puk"]]
    out += [k["key"] for k in image["keys"].values()]
    return [s for s in out if isinstance(s, str) and len(s) >= 6]


def terminal_app(tmp: Path, cfg: dict[str, Any] = BUS) -> Any:
    clock = Clock.fixed(CLOCK_AT)
    sam = HostedReader([make_psam()])
    sam.connect()
    return make_app(parse_config(cfg), PsamClient(Channel(sam), test=True), Journal(tmp / "j.db", clock), clock)


@budget(60)
@given(mutated_json(CARD_IMAGE, CARD_PATHS))
def test_card_images_mutated_then_tapped(tmp_path_factory: pytest.TempPathFactory, image: dict[str, Any]) -> None:
    """An image with wrong types, ranges or cut hex loads as a card or fails with a FormatError
    that names no secret; a card that loads, however odd its files, gets a decision at a
    validator (the terminal decodes everything it reads from it)."""
    try:
        card = card_from_json(image)
    except YktError as exc:
        for secret in image_secrets(CARD_IMAGE):
            assert secret not in str(exc) and secret.lower() not in str(exc)
        return
    except Exception as exc:
        raise AssertionError(f"untyped {type(exc).__name__}: {exc}") from exc
    assert isinstance(card, SocialSecurityCard)
    app = terminal_app(tmp_path_factory.mktemp("tap"))
    reader = HostedReader([card])
    decision = app.tap(reader)
    assert decision.reason.value in {e["reason"] for e in app.journal.events()}
    app.journal.close()


@budget(40)
@given(mutated_json(PSAM_IMAGE, PSAM_PATHS))
def test_psam_images_mutated(image: dict[str, Any]) -> None:
    psam = typed(card_from_json, image)
    if psam is not None:
        for apdu in (W.read_terminal_number(), W.select_psam_app(), W.read_app_data()):
            assert len(psam.process(apdu.encode())) >= 2


@budget(40)
@given(st.data())
def test_card_image_files_corrupted(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("img") / "card.json"
    save_image(sample_card(7), path)
    path.write_bytes(data.draw(mutated_bytes(path.read_bytes(), max_ops=2)))
    card = typed(load_card, path, persist=False)
    if card is not None:
        assert len(card.process(select_aid(P.PURSE_AID).encode())) >= 2


# --- key files ----------------------------------------------------------------------------------------------

KEY_FILE = test_issuer().to_json()


@budget(60)
@given(mutated_json(KEY_FILE), st.booleans(), st.data())
def test_key_files_mutated(tmp_path_factory: pytest.TempPathFactory, obj: Any, as_bytes: bool,
                           data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("keys") / "issuer.json"
    text = json.dumps(obj, allow_nan=True)
    path.write_bytes(data.draw(mutated_bytes(text.encode())) if as_bytes else text.encode())
    try:
        keys = load_issuer_keys(path)
    except YktError as exc:
        for entry in KEY_FILE["keys"].values():
            assert entry["key"] not in str(exc).upper()
        return
    assert isinstance(keys, IssuerKeys) and "key=<16 bytes masked>" in repr(keys.mpk)
    assert KeyEntry.from_json(keys.mpk.to_json()) == keys.mpk


# --- terminal configuration (TOML) -----------------------------------------------------------------------

CONFIGS = [
    {"terminal": {"role": "bus_validator", "name": "bus", "line": "K101", "id": "000000000042"},
     "fares": {"flat": 200, "segments": [[5, 200], [10, 300]], "max_fare": 800},
     "transfer": {"window_minutes": 90, "discount": 100},
     "windows": {"recovery_seconds": 120, "repeat_tap_seconds": 60},
     "concessions": [{"name": "elder", "min_age": 65, "pay_percent": 0}, {"card_type": "student", "pay_percent": 50}],
     "region": {"local": "3303", "visitor_surcharge_percent": 20, "rules": {"31": 150}},
     "paths": {"journal": "j.db", "denylist": "deny.bin"}, "journal": {"sync": "write_ahead"},
     "psam": {"reader": "sim?kind=psam", "key_index": 1}, "timezone": "Asia/Shanghai"},
    {"terminal": {"role": "metro_gate", "station": "S01"},
     "fares": {"bands": [[6, 300], [12.5, 400]], "stations": {"S01": 0, "S05": 8.5}, "overtime_minutes": 240,
               "overtime_surcharge": 300, "zones": {}, "zone_bands": []},
     "gate": {"direction": "auto"}, "windows": {"anti_passback_seconds": 300.5}},
    {"terminal": {"role": "identity_gate"}, "fares": {"admission": 4000, "admission_visitor": 6000},
     "gate": {"free_entry_age": 65, "daily_limit": 2, "require_pin": True, "authenticate_card": False}},
]
TOML_TEXTS = [
    """[terminal]\nrole = "bus_validator"\nline = "K1"\n\n[fares]\nflat = 200\nsegments = [[5, 200], [10, 300]]\n\n[windows]\nrecovery_seconds = 120\n""",
    """timezone = "Asia/Shanghai"\n[terminal]\nrole = "metro_gate"\nstation = "S01"\n[fares]\nbands = [[6, 300], [12.5, 400]]\n[fares.stations]\nS01 = 0\nS05 = 8.5\n[gate]\ndirection = "entry"\n""",
]
TOML_EXTRAS = [1979, 3.5, math.inf, math.nan, -1, 2**62, "x", True, date(2026, 1, 1), time(8, 0),
               datetime(2026, 1, 1, 8, 0), [], {}, [[1, 2], [3]], {"a": 1}]


@budget(100)
@given(st.sampled_from(CONFIGS).flatmap(mutated_json), st.data())
def test_configurations_mutated(cfg: dict[str, Any], data: st.DataObject) -> None:
    """TOML gives dates, times, inf and nan as well: those get their turn too."""
    paths = json_paths(cfg)
    if paths and data.draw(st.booleans()):
        path = data.draw(st.sampled_from(paths))
        node: Any = cfg
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = data.draw(st.sampled_from(TOML_EXTRAS))
        except (KeyError, IndexError, TypeError):
            pass
    typed(parse_config, cfg)


@budget(60)
@given(st.sampled_from(TOML_TEXTS), st.data())
def test_configuration_files_corrupted(tmp_path_factory: pytest.TempPathFactory, text: str, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("cfg") / "t.toml"
    path.write_bytes(data.draw(mutated_bytes(text.encode())))
    typed(load_config, path)


# --- tap scripts, APDU scripts, traces ------------------------------------------------------------------------

TAP_LINES = [
    {"card": "cards/adult.json", "time": "2026-11-28T08:15:00+08:00", "note": "first"},
    {"card": "cards/adult.json", "advance": 30, "tear": {"at": 3, "when": "after"}},
    {"card": "a.json", "second": "b.json", "tear": {"ins": "54", "when": "before"}},
]


@budget(100)
@given(st.lists(st.sampled_from(TAP_LINES).flatmap(mutated_json), min_size=1, max_size=3), st.data())
def test_tap_scripts_mutated(tmp_path_factory: pytest.TempPathFactory, lines: list[Any], data: st.DataObject) -> None:
    text = "\n".join(json.dumps(line, allow_nan=True) for line in lines)
    for step in typed(parse_taps, text) or []:
        assert step.advance >= 0 and math.isfinite(step.advance)
        assert step.tear is None or step.tear.ins is None or 0 <= step.tear.ins <= 0xFF
    path = tmp_path_factory.mktemp("taps") / "taps.jsonl"
    path.write_bytes(data.draw(mutated_bytes(text.encode())))
    typed(read_taps, path)


SCRIPT = """# select the purse
00 A4 04 00 08 A000000632010105 => 9000
echo balance
80 5C 00 02 04
<= XXXXXXXX9000
reset
00 B2 01 C4 17 => *9000
00 84 00 00 08 => ????????????????9000
exit
"""


@budget(80)
@given(st.one_of(mutated_bytes(SCRIPT.encode()), st.binary(max_size=60)), st.binary(max_size=12))
def test_apdu_scripts_mutated(raw: bytes, response: bytes) -> None:
    steps = typed(parse_script, raw.decode("utf-8", "replace"))
    for step in steps or []:
        if step.expect is not None:
            step.expect.matches(response)


TRACE = [
    {"atr": "3B8880010000000000718100F9", "reader": "card"},
    {"t": "2026-11-28T08:15:00.1+08:00", "reader": "card", "command": "00A4040008A000000632010105",
     "response": "6F108408A000000632010105A5049F0C00" + "9000", "duration_ms": 1.5},
    {"t": "2026-11-28T08:15:00.2+08:00", "reader": "card", "command": "0020000003******", "response": "9000",
     "duration_ms": 0.4},
]


@budget(80)
@given(st.lists(st.sampled_from(TRACE).flatmap(mutated_json), min_size=1, max_size=4), st.data())
def test_traces_mutated_and_replayed(tmp_path_factory: pytest.TempPathFactory, lines: list[Any],
                                     data: st.DataObject) -> None:
    trace = typed(parse_trace, [json.dumps(line, allow_nan=True) for line in lines])
    if trace is not None:
        replay = TraceReplayReader(trace)
        replay.connect()
        for entry in trace:
            typed(replay.transmit, data.draw(st.sampled_from([bytes(len(entry.command) // 2),
                                                              bytes.fromhex("00A4040008A000000632010105")])))
    path = tmp_path_factory.mktemp("trace") / "t.jsonl"
    path.write_bytes(data.draw(mutated_bytes("\n".join(json.dumps(x) for x in TRACE).encode())))
    typed(read_trace, path)


@budget(80)
@given(st.lists(st.tuples(st.one_of(apdus.map(lambda c: c.encode(c.needs_extended)), st.binary(max_size=12)),
                          st.binary(max_size=40)), max_size=6))
def test_trace_masking_takes_any_exchange(exchanges: list[tuple[bytes, bytes]]) -> None:
    """The recorder's masker sees every command of every session: it must never fail one."""
    masker = Masker()
    for cmd, resp in exchanges:
        shown = masker.command(cmd)
        assert len(shown) == 2 * len(cmd)
        assert len(masker.response(cmd, resp)) == 2 * len(resp)


# --- deny lists and settlement batches --------------------------------------------------------------------------

LISTED = [bytes.fromhex(f"3303{i:016d}") for i in range(40)]


@budget(60)
@given(st.data())
def test_deny_list_files_corrupted(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("deny") / "deny.bin"
    build_denylist(LISTED, path, 3)
    valid = path.read_bytes()
    region = data.draw(st.sampled_from(["header", "index", "entries", "anywhere"]))
    start = {"header": 0, "index": 64, "entries": len(valid) - 400, "anywhere": 0}[region]
    head, tail = valid[:start], valid[start:]
    corrupted = head + data.draw(mutated_bytes(tail[:64] if region == "header" else tail))
    if region == "header":
        corrupted += tail[64:]
    path.write_bytes(corrupted)
    deny = typed(DenyList, path)
    if deny is None:
        return
    with deny:
        assert corrupted == valid, "a changed file passed the checks of opening"  # format 3 fails closed
        for serial in [*LISTED[:5], bytes(10), b"short"]:
            assert isinstance(serial in deny, bool)
        assert len(list(deny)) == len(deny)


@budget(40)
@given(st.text(max_size=80))
def test_deny_list_sources_any_text(text: str) -> None:
    for serial in typed(lambda: list(parse_serial_lines(text.splitlines()))) or []:
        assert len(serial) == 10


@pytest.fixture(scope="module")
def batch_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real settlement batch: three purchases exported from a journal."""
    folder = tmp_path_factory.mktemp("batch")
    journal = purchases_journal(folder / "j.db", 3)
    with open(folder / "b.jsonl", "w", encoding="utf-8") as out:
        journal.export_batch(out)
    journal.close()
    return (folder / "b.jsonl").read_text(encoding="utf-8")


@budget(60)
@given(st.data())
def test_settlement_batches_mutated(tmp_path_factory: pytest.TempPathFactory, batch_text: str,
                                    data: st.DataObject) -> None:
    lines = batch_text.splitlines(keepends=True)
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = json.dumps(data.draw(mutated_json(json.loads(lines[i]))), allow_nan=True) + "\n"
        raw = "".join(lines).encode()
    else:
        raw = data.draw(mutated_bytes(batch_text.encode()))
    path = tmp_path_factory.mktemp("b") / "b.jsonl"
    path.write_bytes(raw)
    read = typed(read_batch, path)
    if read is not None:
        report = verify_records(read[1], test_issuer())
        assert report.checked == len(read[1])


# --- the purse, PSAM and SSSE wire formats ------------------------------------------------------------------------

TID = bytes.fromhex("000000000042")
D4, T3, MAC4 = bytes.fromhex("20261128"), bytes.fromhex("081500"), bytes.fromhex("01020304")
FACTORS = (bytes(range(8)), bytes(range(8, 16)))
VALID_COMMANDS = [
    P.GetBalance().to_apdu(), P.InitializeForLoad(1, 100, TID).to_apdu(), P.CreditForLoad(D4, T3, MAC4).to_apdu(),
    P.InitializeForPurchase(1, 100, TID).to_apdu(), P.InitializeForPurchase(1, 0, TID, capp=True).to_apdu(),
    P.UpdateCappDataCache(0x2702, b"\x27\x02" + bytes(20)).to_apdu(), P.DebitForPurchase(7, D4, T3, MAC4).to_apdu(),
    P.GetTransactionProve(6, 1).to_apdu(), P.ApplicationBlock(True, MAC4).to_apdu(),
    P.ApplicationUnblock(MAC4).to_apdu(),
    W.InitSamForPurchase(MAC4, 1, 100, 6, D4, T3, 1, 0, FACTORS).to_apdu(), W.credit_sam_for_purchase(MAC4),
    W.InitDescrypt(0x42, 1, FACTORS).to_apdu(), W.encrypt_data(bytes(8)), W.mac_data(bytes(8), bytes(5)),
    C.verify_pin("654321"), C.change_pin("654321", "111111"), C.unblock_pin("000000", "111111"),
    C.internal_authenticate(bytes(8)), C.external_authenticate(bytes(16)), C.pin_query(),
    select_aid(P.PURSE_AID), select_aid(S.SSSE_AID), get_challenge(8), get_challenge(4),
    read_binary(0, 30, sfi=0x15), read_record(1, sfi=0x18, le=23), read_record(0x08, sfi=0x06),
]
COMMAND_PARSERS: list[Callable[[CommandAPDU], Any]] = [
    P.GetBalance.from_apdu, P.InitializeForLoad.from_apdu, P.CreditForLoad.from_apdu,
    P.InitializeForPurchase.from_apdu, P.UpdateCappDataCache.from_apdu, P.DebitForPurchase.from_apdu,
    P.GetTransactionProve.from_apdu, P.ApplicationBlock.from_apdu, P.ApplicationUnblock.from_apdu,
    W.InitSamForPurchase.from_apdu, W.InitDescrypt.from_apdu, C.parse_verify, C.parse_pin_pair,
    lambda c: C.parse_auth(c, 8), lambda c: C.parse_auth(c, 16),
]


@budget(150)
@given(st.sampled_from(VALID_COMMANDS), st.data())
def test_command_parsers_take_any_command(valid: CommandAPDU, data: st.DataObject) -> None:
    cmd = typed(CommandAPDU.decode, data.draw(st.one_of(st.just(valid.encode()), mutated_bytes(valid.encode()))))
    if cmd is None:
        return
    for parse_command in COMMAND_PARSERS:
        value = typed(parse_command, cmd)
        if value is not None and hasattr(value, "to_apdu"):
            typed(value.to_apdu)  # what a card parsed, a terminal can write again
    if (factors := typed(W.InitDescrypt.from_apdu, cmd)) is not None:
        typed(W.derivation_factors, factors.factors)


WHEN = datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING)
VALID_ANSWERS: list[tuple[Callable[[bytes], Any], bytes]] = [
    (P.InitializeForLoadResponse.decode, P.InitializeForLoadResponse(100, 1, 1, 0, MAC4, MAC4).encode()),
    (P.InitializeForPurchaseResponse.decode, P.InitializeForPurchaseResponse(-5, 1, 100, 1, 0, MAC4).encode()),
    (P.DebitResponse.decode, P.DebitResponse(MAC4, MAC4).encode()),
    (P.ProveResponse.decode, P.ProveResponse(MAC4, MAC4).encode()),
    (P.decode_balance, P.encode_balance(-100)),
    (lambda raw: P.decode_balance(raw, signed=True), P.encode_balance(-100)),
    (W.InitSamResponse.decode, W.InitSamResponse(7, MAC4).encode()),
    (F.PublicData.decode, F.PublicData(bytes(8), bytes(10), date(2024, 1, 1), date(2034, 12, 31)).encode()),
    (F.HolderData.decode, F.HolderData(1, "王伟", "330300198709059616").encode()),
    (F.ManagementData.decode, F.ManagementData(b"\x33\x00", b"\x33\x03").encode()),
    (F.TransactionRecord.decode, F.TransactionRecord(1, 100, 6, TID, WHEN).encode()),
    (F.TripRecord.decode, F.TripRecord(6, bytes(8), 2, bytes(4), 200, 800, WHEN).encode()),
    (F.PsamAppData.decode, F.PsamAppData(1, bytes(8), bytes(8), date(2024, 1, 1), date(2034, 1, 1)).encode()),
    (F.parse_bcd_date, F.bcd_date(date(2026, 2, 28))),
    (lambda raw: macs.parse_bcd_datetime(raw[:4], raw[4:]), D4 + T3),
    (S.parse_record, S.record(S.T_NAME, "王伟".encode("gbk"))),
    (S.card_serial, S.card_identifier("330300", 12345)),
    # the 0x1A codec (cardlib/pboc/capp.py) in place of the gate's and the validator's own decoders
    (lambda raw: capp.metro_trip(capp.CappRecord.decode(raw)),
     capp.metro_entry(capp.CappRecord.blank(capp.METRO_RECORD), "S01", WHEN, TID, 100).encode()),
    (lambda raw: capp.bus_ride(capp.CappRecord.decode(raw)),
     capp.with_bus_ride(capp.CappRecord.blank(capp.BUS_RECORD), capp.BusRide("K101", WHEN, TID, 200)).encode()),
]


@budget(150)
@given(st.sampled_from(VALID_ANSWERS), st.data())
def test_answer_and_record_decoders(case: tuple[Callable[[bytes], Any], bytes], data: st.DataObject) -> None:
    """Mutated valid encodings, and random bytes of exactly the right size (they pass the
    length check and reach the field decoding: BCD dates, GBK text, signed balances)."""
    decode, valid = case
    raw = data.draw(st.one_of(mutated_bytes(valid), st.binary(min_size=len(valid), max_size=len(valid))))
    value = typed(decode, raw)
    if value is not None and hasattr(value, "encode") and not isinstance(value, (bytes, capp.MetroTrip, capp.BusRide)):
        typed(value.encode)  # (a terminal writes trips with its own station and line, checked by the configuration)
    if isinstance(value, F.HolderData):
        value.name.encode("utf-8")


_CARD = sample_card(8)
ISSUER_VALUES = {rec[0]: rec[2:] for rec in _CARD.issuer_records().records()}
HOLDER_VALUES = {rec[0]: rec[2:] for rec in _CARD.holder_records().records()}


@budget(80)
@given(st.sampled_from([ISSUER_VALUES, HOLDER_VALUES]), st.data())
def test_ssse_records_mutated(values: dict[int, bytes], data: st.DataObject) -> None:
    changed = dict(values)
    for tag in data.draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=3)):
        if data.draw(st.integers(0, 4)) == 0:
            changed.pop(tag, None)
        else:
            changed[tag] = data.draw(st.one_of(mutated_bytes(values[tag]), st.binary(max_size=len(values[tag]))))
    issuer = typed(S.IssuerRecords.from_records, changed)
    if issuer is not None:
        assert isinstance(issuer.region, str)
        typed(issuer.records)
    holder = typed(S.HolderRecords.from_records, changed)
    if holder is not None:
        holder.masked()
        typed(holder.records)


# --- virtual cards: APDU streams that reach deep, without a single valid key -------------------------------------

INTERESTING_INS = [0xA4, 0xB0, 0xB2, 0xD6, 0xDC, 0xE2, 0x84, 0x20, 0x24, 0x2C, 0x82, 0x88, 0x50, 0x52, 0x54,
                   0x5C, 0x5A, 0x1E, 0x18, 0xC0, 0x70, 0x72, 0x1A, 0xFA]
step_apdus = st.one_of(
    st.binary(max_size=24),
    st.builds(lambda cla, ins, p1, p2, data, le: CommandAPDU(cla, ins, p1, p2, data, le).encode(),
              st.sampled_from([0x00, 0x04, 0x0C, 0x80, 0x84, 0xFF, 0x40]), st.sampled_from(INTERESTING_INS),
              st.integers(0, 255), st.integers(0, 255), st.binary(max_size=24), st.one_of(st.none(), st.integers(1, 256))),
    st.sampled_from(VALID_COMMANDS).map(lambda c: c.encode()),
    st.sampled_from(VALID_COMMANDS).flatmap(lambda c: mutated_bytes(c.encode(), max_ops=1)),
    # a session opened for real, then closed with a made-up MAC
    st.tuples(st.sampled_from([P.InitializeForPurchase(1, 100, TID), P.InitializeForPurchase(1, 0, TID, capp=True),
                               P.InitializeForLoad(1, 500, TID)]),
              st.binary(min_size=4, max_size=4), st.integers(0, 2**32 - 1))
    .map(lambda t: t[0].to_apdu().encode() + b"|" + P.DebitForPurchase(t[2], D4, T3, t[1]).to_apdu().encode()
         + b"|" + P.CreditForLoad(D4, T3, t[1]).to_apdu().encode()),
    st.binary(min_size=4, max_size=4).map(
        lambda mac: get_challenge(4).encode() + b"|" + P.ApplicationBlock(False, mac).to_apdu().encode()),
    st.binary(min_size=16, max_size=16).map(
        lambda c: select_aid(S.SSSE_AID).encode() + b"|" + get_challenge(8).encode() + b"|"
        + C.external_authenticate(c[:8]).encode()),
)


def _stream(steps: list[bytes]) -> Iterator[bytes]:
    for step in steps:
        yield from (step.split(b"|") if b"|" in step and len(step) > 24 else [step])


def _purse_state(card: SocialSecurityCard) -> tuple[Any, ...]:
    s = card.purse.state
    return (s.balance, s.online_seq, s.offline_seq, s.blocked, card.ssse.state.pin, card.ssse.state.puk)


@budget(100)
@given(st.integers(0, 3), st.booleans(), st.lists(step_apdus, max_size=25))
def test_card_streams_never_fail_nor_move_money(seed: int, t0: bool, steps: list[bytes]) -> None:
    card = sample_card(seed)
    card.t0_style = t0
    before = _purse_state(card)
    for apdu in _stream(steps):
        answer = card.process(apdu)
        r = ResponseAPDU.decode(answer)
        assert r.sw != SW.SW_UNKNOWN, apdu.hex()  # an exception swallowed inside the card
        if t0 and r.sw1 == 0x61:
            ResponseAPDU.decode(card.process(CommandAPDU(0, 0xC0, 0, 0, le=r.sw2 or 256).encode()))
    assert _purse_state(card) == before


@budget(80)
@given(st.lists(step_apdus, max_size=25))
def test_psam_streams_never_fail_nor_verify_a_made_up_mac2(steps: list[bytes]) -> None:
    psam = make_psam(seed=1)
    for apdu in _stream(steps):
        r = ResponseAPDU.decode(psam.process(apdu))
        assert r.sw != SW.SW_UNKNOWN, apdu.hex()
        if apdu[:2] == b"\x80\x72":
            assert r.sw != SW.SW_OK, "a made-up MAC2 verified"


faults = st.one_of(st.none(), st.none(), st.none(), st.sampled_from([TEAR_BEFORE, TEAR_AFTER, DROP, CORRUPT]),
                   st.integers(0, 0xFFFF).map(lambda sw: Fault("force_sw", sw=sw)))


@budget(60)
@given(st.lists(st.tuples(step_apdus, faults), max_size=20))
def test_faulty_cards_raise_only_what_a_fault_says(steps: list[tuple[bytes, Fault | None]]) -> None:
    """Behind the faults wrapper a card tears (CardRemovedError) or loses an answer
    (ReaderTimeoutError) exactly when a fault says so; every other answer is well formed."""
    inner = sample_card(2)
    before = _purse_state(inner)
    plan: dict[int, Fault | None] = {}
    card = FaultyCard(inner, lambda n, apdu: plan.get(n))
    for step, fault in steps:
        for apdu in _stream([step]):
            plan[card.count + 1] = fault
            kind = fault.kind if fault else None
            try:
                answer = card.process(apdu)
            except CardRemovedError:
                assert kind in ("tear_before", "tear_after")
                card.reinsert()
                card.reset()
                continue
            except ReaderTimeoutError:
                assert kind == "drop"
                continue
            assert kind not in ("tear_before", "tear_after", "drop")
            assert len(answer) >= 2
    assert _purse_state(inner) == before


class HostileCard:
    """A real card whose answers are now and then mutated on their way to the terminal."""

    def __init__(self, card: SocialSecurityCard, data: st.DataObject) -> None:
        self.card, self.data = card, data
        self.atr = card.atr

    def reset(self) -> bytes:
        return self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        answer = self.card.process(apdu)
        if self.data.draw(st.integers(0, 5)) == 0:
            return self.data.draw(st.one_of(mutated_bytes(answer), st.binary(max_size=4)))
        return answer


@budget(40)
@given(st.sampled_from(["bus", "metro", "museum"]), st.data())
def test_terminal_flows_against_hostile_answers(tmp_path_factory: pytest.TempPathFactory, role: str,
                                                data: st.DataObject) -> None:
    """Every answer a terminal decodes during a tap (FCI, records, balance, INITIALIZE, DEBIT,
    SAM answers stay genuine) may come back cut or flipped: the tap still ends in a decision,
    recorded as an event, and never raises."""
    cfg = {"bus": BUS, "metro": {"terminal": {"role": "metro_gate", "station": "S01"},
                                 "fares": {"bands": [[6, 300]], "stations": {"S01": 0}}},
           "museum": {"terminal": {"role": "identity_gate"}, "fares": {"admission": 500}}}[role]
    app = terminal_app(tmp_path_factory.mktemp("hostile"), cfg)
    journal, clock = app.journal, app.clock
    card = HostileCard(sample_card(9), data)
    for _ in range(2):
        app.tap(HostedReader([card]))
        clock.advance(600)
    assert len(journal.events()) == 2
    journal.close()


DEEP = 100_000  # brackets: past what a recursive parser can descend


@pytest.mark.parametrize("reader", ["keys", "image", "taps", "trace", "batch", "config"])
def test_documents_nested_too_deep_are_typed_errors(tmp_path: Path, reader: str) -> None:
    """A crafted file of nested brackets makes json and tomllib raise RecursionError."""
    path = tmp_path / "deep"
    path.write_text(("a = " if reader == "config" else "") + "[" * DEEP + "\n", encoding="utf-8")
    read: Callable[[Path], Any] = {
        "keys": load_issuer_keys, "image": load_card, "taps": read_taps, "trace": read_trace,
        "batch": read_batch, "config": load_config}[reader]
    with pytest.raises(YktError):
        read(path)
    if reader == "batch":
        path.write_text('{"type": "header", "batch_id": "B", "terminal": "", "count": 1, "total_amount": 0, '
                        '"sha256": ""}\n' + "[" * DEEP + "\n", encoding="utf-8")
        with pytest.raises(YktError, match="line 2"):
            read(path)


@budget(40)
@given(st.sampled_from(["bus", "metro"]), st.text(max_size=12))
def test_any_station_or_line_the_configuration_takes_can_be_written(tmp_path_factory: pytest.TempPathFactory,
                                                                     role: str, code: str) -> None:
    """The configuration refuses a station or line the card's record cannot hold (non-ASCII
    or longer than 8); one it takes goes on the card at the first tap without an error."""
    cfg: dict[str, Any] = (
        {"terminal": {"role": "bus_validator", "line": code}, "fares": {"flat": 200}} if role == "bus" else
        {"terminal": {"role": "metro_gate", "station": code}, "fares": {"flat": 300}})
    if typed(parse_config, cfg) is None:
        return
    app = terminal_app(tmp_path_factory.mktemp("code"), cfg)
    decision = app.tap(HostedReader([sample_card(10)]))
    assert decision.open, decision
    app.journal.close()


class ScriptedCard:
    """Answers with the next of a list of raw answers (then with nothing at all)."""

    atr = build_contactless_atr(b"SCRIPT")

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)

    def reset(self) -> bytes:
        return self.atr

    def process(self, apdu: bytes) -> bytes:
        return self.answers.pop(0) if self.answers else b""


status_words = st.one_of(st.sampled_from([b"\x61\x00", b"\x61\x10", b"\x6c\x00", b"\x6c\x08", b"\x90\x00", b"\x6a\x82"]),
                         st.binary(min_size=2, max_size=2))
raw_answers = st.one_of(status_words, st.tuples(st.binary(max_size=40), status_words).map(b"".join),
                        st.binary(max_size=3))


@budget(80)
@given(st.sampled_from(VALID_COMMANDS), st.lists(raw_answers, max_size=12), st.booleans())
def test_channel_takes_any_answers(cmd: CommandAPDU, answers: list[bytes], as_bytes: bool) -> None:
    """61xx and 6Cxx loops, answers without SW, GET RESPONSE refused: the channel ends in a
    response or a typed error."""
    reader = HostedReader([ScriptedCard(answers)])
    reader.connect()
    response = typed(Channel(reader).transmit, cmd.encode() if as_bytes else cmd)
    assert response is None or 0 <= response.sw <= 0xFFFF


def test_a_full_capp_file_refuses_the_whole_debit(tmp_path: Path) -> None:
    """An image whose 0x1A file is full of other records: the composite DEBIT cannot store
    its record, so it happens not at all (it debited, then failed with 6F00 and no TAC)."""
    image = card_to_json(sample_card(11))
    (capp,) = [f for f in image["files"] if f["sfi"] == F.CAPP_SFI]
    capp["records"] = [((0x2801 + i).to_bytes(2, "big") + bytes(126)).hex() for i in range(18)]
    card = card_from_json(image)
    assert isinstance(card, SocialSecurityCard)
    site = Site(tmp_path)
    with pytest.raises(YktError) as refused:
        site.wallet(card).composite_purchase(100, F.capp_record(0x2702, b"OUT"))
    assert "6A84" in str(refused.value)
    assert card.balance == 5000 and card.purse.state.offline_seq == 0
    assert [r.state for r in site.journal.records()] == ["failed"]
    site.close()
