"""PC/SC through the real stack: pcscd + the vpcd driver + our bridge serving a card.

Every test but the first few talks to a real pcscd (marked ``pcsc``; one at a
time, as pcscd and the vpcd ports are machine-wide).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from cardlib.channel import Channel
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    NoCardError,
    ReaderTimeoutError,
    ReaderUnavailableError,
    SharingViolationError,
    TransportError,
)
from cardlib.readers.base import Disposition, EventKind, ReaderEvent
from cardlib.readers.pcsc_events import PcscWatcher
from cardlib.readers.registry import open_reader
from simulators.field import wait_for
from simulators.issuer import sample_card
from simulators.vpcd import POWER_OFF, RESET, VpcdBridge
from tests.cards import ATR_T0, EchoCard
from tests.pcsc_support import Pcscd, card_seen, pcscd, vpcd_card  # noqa: F401

SELECT = bytes.fromhex("00A4040008A000000632010105")
VPCD0 = "Virtual PCD 00 00"
Serve = Callable[..., VpcdBridge]


# --- without pcscd ---------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "kind"), [
    (0x8010001D, ReaderUnavailableError), (0x8010002E, ReaderUnavailableError),
    (0x80100017, ReaderUnavailableError), (0x80100009, ReaderUnavailableError),
    (0x80100069, CardRemovedError), (0x80100016, CardRemovedError), (0x8010000C, NoCardError),
    (0x8010000B, SharingViolationError), (0x8010000A, ReaderTimeoutError), (0x80100001, TransportError),
])
def test_pcsc_codes_become_typed_errors_naming_reader_and_code(code: int, kind: type) -> None:
    from cardlib.readers.pcsc import pcsc_error

    signed = code - (1 << 32)  # pyscard may return the code signed
    err = pcsc_error(signed, "transmit to 'ACS ACR122U 00 00'")
    assert type(err) is kind or (kind is ReaderUnavailableError and isinstance(err, kind))
    assert "ACS ACR122U 00 00" in str(err) and f"0x{code:08X}" in str(err)


def test_missing_pyscard_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smartcard", None)  # as if pyscard were not installed
    with pytest.raises(ReaderUnavailableError) as info:
        open_reader("pcsc")
    assert str(info.value) == ("PC/SC support needs pyscard: pip install 'yikatong[pcsc]' "
                               "(and Debian: apt install pcscd libpcsclite-dev)")


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(FormatError, match="unknown option"):
        open_reader("pcsc?speed=9600")
    with pytest.raises(FormatError, match="not a number"):
        open_reader("pcsc?timeout=soon")


# --- on a real pcscd -------------------------------------------------------------------------


class CountingCard(EchoCard):
    def __init__(self, atr: bytes = EchoCard().atr) -> None:
        super().__init__(atr)
        self.resets = 0

    def reset(self) -> bytes:
        self.resets += 1
        return super().reset()


@pytest.fixture
def echo(vpcd_card: Serve) -> Iterator[VpcdBridge]:  # noqa: F811
    yield vpcd_card(CountingCard())


@pytest.mark.pcsc
def test_list_shows_the_virtual_reader_with_the_cards_atr(vpcd_card: Serve) -> None:  # noqa: F811
    from cardlib.readers.pcsc import list_pcsc_readers

    card = sample_card(seed=4)
    vpcd_card(card)
    readers = {r.name: r for r in list_pcsc_readers()}
    assert readers[VPCD0].card_present and readers[VPCD0].atr == card.atr
    assert not readers["Virtual PCD 00 01"].card_present and readers["Virtual PCD 00 01"].atr == b""
    reader = open_reader("pcsc:Virtual PCD 00 00")
    try:
        assert reader.connect() == card.atr
        assert Channel(reader).transmit(SELECT).ok
    finally:
        reader.close()


@pytest.mark.pcsc
def test_readers_by_index_and_substring(echo: VpcdBridge) -> None:
    for uri in ("pcsc", "pcsc:0", "pcsc:pcd 00 00"):
        with open_reader(uri) as reader:
            assert reader.name == VPCD0
    with open_reader("pcsc:1") as reader:
        assert reader.name == "Virtual PCD 00 01"
    with pytest.raises(ReaderUnavailableError, match=r"only \d+ reader"):  # 2, or 8 with the station slots
        open_reader("pcsc:99")
    with pytest.raises(ReaderUnavailableError, match="no PC/SC reader matches"):
        open_reader("pcsc:Omnikey 5422")


@pytest.mark.pcsc
def test_round_trip_short_and_extended_apdus(echo: VpcdBridge) -> None:
    with open_reader("pcsc:00 00") as reader:
        assert reader.connect() == echo.card.atr
        assert reader.protocol == "T=1"  # type: ignore[attr-defined]
        assert reader.transmit(bytes.fromhex("0084000008")) == bytes(range(1, 9)) + b"\x90\x00"
        for size in (256, 4096, 65000):  # extended Lc/Le; vpcd carries up to 65,535 bytes a message
            data = bytes(i % 251 for i in range(size))
            apdu = bytes.fromhex("00DA0000") + b"\x00" + size.to_bytes(2, "big") + data
            assert reader.transmit(apdu) == data + b"\x90\x00"
        assert echo.card.seen[-1][7:] == data  # type: ignore[attr-defined]


@pytest.mark.pcsc
def test_a_t0_card_is_connected_with_t0(vpcd_card: Serve) -> None:  # noqa: F811
    vpcd_card(EchoCard(ATR_T0))
    with open_reader("pcsc:00 00") as reader:
        assert reader.connect() == ATR_T0
        assert reader.protocol == "T=0"  # type: ignore[attr-defined]
        assert reader.transmit(bytes.fromhex("00DA000003AABBCC")) == bytes.fromhex("AABBCC9000")


@pytest.mark.pcsc
def test_exclusive_share_blocks_a_second_connect(echo: VpcdBridge) -> None:
    first = open_reader("pcsc:00 00?share=exclusive")
    second = open_reader("pcsc:00 00")
    try:
        first.connect()
        with pytest.raises(SharingViolationError, match=r"Virtual PCD 00 00.*0x8010000B"):
            second.connect()
        first.disconnect()
        second.connect()  # free again
        shared = open_reader("pcsc:00 00?share=shared")
        shared.connect()  # two shared handles coexist
        shared.close()
    finally:
        first.close()
        second.close()


@pytest.mark.pcsc
def test_disconnect_dispositions_reach_the_card(echo: VpcdBridge) -> None:
    card: CountingCard = echo.card  # type: ignore[assignment]
    with open_reader("pcsc:00 00") as reader:
        reader.connect()
        before = list(echo.controls)
        reader.disconnect(Disposition.LEAVE)
        assert list(echo.controls) == before
        reader.connect()
        resets = card.resets
        reader.disconnect(Disposition.RESET)
        assert wait_for(lambda: card.resets > resets) and echo.controls[-1] == RESET
        reader.connect()
        reader.disconnect(Disposition.UNPOWER)
        assert wait_for(lambda: echo.controls[-1] == POWER_OFF)
        reader.connect()  # powered again on the next connect
        assert reader.transmit(bytes.fromhex("0084000004")) == bytes.fromhex("010203049000")


@pytest.mark.pcsc
def test_a_reset_by_another_application_is_reconnected_once(echo: VpcdBridge) -> None:
    card: CountingCard = echo.card  # type: ignore[assignment]
    with open_reader("pcsc:00 00") as ours, open_reader("pcsc:00 00") as other:
        ours.connect()
        other.connect()
        resets = card.resets
        other.disconnect(Disposition.RESET)  # our handle now answers SCARD_W_RESET_CARD
        assert wait_for(lambda: card.resets > resets)
        assert ours.transmit(bytes.fromhex("0084000002")) == bytes.fromhex("01029000")
        assert ours.transmit(bytes.fromhex("0084000001")) == bytes.fromhex("019000")  # the fresh handle stays


@pytest.mark.pcsc
def test_transactions(echo: VpcdBridge) -> None:
    with open_reader("pcsc:00 00") as reader:
        with pytest.raises(NoCardError):
            reader.begin_transaction()
        reader.connect()
        with reader.transaction():
            assert reader.transmit(bytes.fromhex("0084000002")) == bytes.fromhex("01029000")
        with reader.transaction():  # a second one after the first ended
            assert reader.transmit(bytes.fromhex("0084000001")) == bytes.fromhex("019000")


@pytest.mark.pcsc
def test_card_removed_mid_flow_and_reinserted(echo: VpcdBridge) -> None:
    reader = open_reader("pcsc:00 00")
    try:
        reader.connect()
        assert reader.is_card_present()
        echo.remove()
        with pytest.raises(CardRemovedError, match="Virtual PCD 00 00"):
            for _ in range(200):  # the removal is seen at the next exchange
                reader.transmit(SELECT)
        with pytest.raises(NoCardError):
            reader.transmit(SELECT)  # the dead handle was released
        assert reader.wait_for_removal(5)
        assert not reader.is_card_present()
        with pytest.raises(NoCardError, match="0x8010000C"):
            reader.connect()
        assert reader.wait_for_card(0.2) is False  # timeout, not an error
        echo.insert()
        assert reader.wait_for_card(5)
        reader.connect()
        assert reader.transmit(bytes.fromhex("0084000001")) == bytes.fromhex("019000")
    finally:
        reader.close()


@pytest.mark.pcsc
def test_a_torn_card_stays_away_until_inserted(echo: VpcdBridge) -> None:
    card: CountingCard = echo.card  # type: ignore[assignment]
    with open_reader("pcsc:00 00") as reader:
        reader.connect()
        card.torn = True  # process() raises CardRemovedError: the bridge closes the link
        with pytest.raises(CardRemovedError):
            reader.transmit(SELECT)
        assert reader.wait_for_removal(5) and not echo.inserted.is_set()
        card.torn = False
        echo.insert()
        assert reader.wait_for_card(5)
        reader.connect()
        assert reader.transmit(bytes.fromhex("0084000001")) == bytes.fromhex("019000")


@pytest.mark.pcsc
def test_round_trip_has_no_nagle_stall(echo: VpcdBridge) -> None:
    import time

    with open_reader("pcsc:00 00") as reader:
        reader.connect()
        started = time.perf_counter()
        for _ in range(50):
            reader.transmit(SELECT)
        # a sanity bound, not a target: with the 40 ms delayed-ACK stall 50 APDUs take over 2 s
        assert time.perf_counter() - started < 1.0


def _collect() -> tuple[list[ReaderEvent], threading.Thread, PcscWatcher]:
    """A watcher on its own thread, appending every event to a list."""
    events: list[ReaderEvent] = []
    watcher = PcscWatcher(timeout=0.2, backoff=(0.05, 0.5))

    def run() -> None:
        for event in watcher:
            events.append(event)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return events, thread, watcher


def _kinds(events: list[ReaderEvent], reader: str = VPCD0) -> list[EventKind]:
    return [e.kind for e in events if e.reader in (reader, "")]


@pytest.mark.pcsc
def test_events_see_readers_insertions_and_removals(echo: VpcdBridge) -> None:
    events, thread, watcher = _collect()
    try:
        assert wait_for(lambda: EventKind.CARD_INSERTED in _kinds(events), 5)
        added = {e.reader for e in events if e.kind is EventKind.READER_ADDED}
        assert {VPCD0, "Virtual PCD 00 01"} <= added
        inserted = next(e for e in events if e.kind is EventKind.CARD_INSERTED)
        assert inserted.atr == echo.card.atr
        echo.remove()
        assert wait_for(lambda: EventKind.CARD_REMOVED in _kinds(events), 5)
        echo.insert()
        assert wait_for(lambda: _kinds(events).count(EventKind.CARD_INSERTED) == 2, 5)
        assert _kinds(events) == [EventKind.READER_ADDED, EventKind.CARD_INSERTED, EventKind.CARD_REMOVED,
                                  EventKind.CARD_INSERTED]
    finally:
        watcher.stop()
        thread.join(5)
    assert not thread.is_alive()


@pytest.mark.pcsc
def test_reader_events_of_one_slot(echo: VpcdBridge) -> None:
    with open_reader("pcsc:00 00") as reader:
        stream = reader.events(stop=None)
        first = next(stream)
        assert (first.kind, first.reader) == (EventKind.READER_ADDED, VPCD0)
        second = next(stream)
        assert (second.kind, second.atr) == (EventKind.CARD_INSERTED, echo.card.atr)
        stream.close()  # type: ignore[attr-defined]


@pytest.mark.pcsc
def test_pcscd_restart_under_a_watcher_a_bridge_and_an_open_reader(pcscd: Pcscd, echo: VpcdBridge) -> None:  # noqa: F811
    if not pcscd.owned:
        pytest.skip("pcscd was already running: only a pcscd this session started may be restarted")
    reader = open_reader("pcsc:00 00")
    events, thread, watcher = _collect()
    try:
        assert wait_for(lambda: EventKind.CARD_INSERTED in _kinds(events), 5)
        connections = echo.connections
        pcscd.restart()
        # the watcher reports the outage, then resumes from a fresh state and sees the card again
        assert wait_for(lambda: _kinds(events).count(EventKind.CARD_INSERTED) == 2, 15)
        kinds = _kinds(events)
        gone, back = kinds.index(EventKind.SERVICE_UNAVAILABLE), kinds.index(EventKind.SERVICE_AVAILABLE)
        assert kinds[1] == EventKind.CARD_INSERTED and 1 < gone < back
        assert EventKind.READER_REMOVED in kinds[gone:back]
        assert kinds[back:] == [EventKind.SERVICE_AVAILABLE, EventKind.READER_ADDED, EventKind.CARD_INSERTED]
        assert echo.connections > connections  # the bridge reconnected by itself
        assert reader.wait_for_card(5)  # the reader opened before the restart gets a fresh context
        reader.connect()
        assert Channel(reader).transmit(SELECT).ok
    finally:
        reader.close()
        watcher.stop()
        thread.join(5)
    assert not thread.is_alive()
