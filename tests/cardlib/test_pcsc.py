"""PC/SC through the real stack: pcscd + vpcd driver + our bridge serving a virtual card."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from cardlib.channel import Channel
from cardlib.errors import (
    CardRemovedError,
    NoCardError,
    ReaderUnavailableError,
    SharingViolationError,
)
from cardlib.readers.base import Disposition, EventKind, ReaderEvent
from cardlib.readers.registry import open_reader
from simulators.issuer import sample_card
from simulators.vpcd import VpcdBridge
from tests.cards import EchoCard
from tests.pcsc_support import Pcscd, pcscd, wait_for  # noqa: F401

pytestmark = pytest.mark.pcsc
SELECT = bytes.fromhex("00A4040008A000000632010105")


@pytest.fixture
def bridge(pcscd: Pcscd) -> Iterator[VpcdBridge]:  # noqa: F811
    from cardlib.readers.pcsc import list_pcsc_readers

    b = VpcdBridge(sample_card(seed=4)).start()
    assert wait_for(lambda: any(r.card_present and r.name.endswith("00 00") for r in list_pcsc_readers()), 10)
    yield b
    b.stop()
    wait_for(lambda: not any(r.card_present and r.name.endswith("00 00") for r in list_pcsc_readers()), 5)


def test_list_connect_transmit(bridge: VpcdBridge) -> None:
    from cardlib.readers.pcsc import list_pcsc_readers

    names = [r.name for r in list_pcsc_readers()]
    assert "Virtual PCD 00 00" in names
    reader = open_reader("pcsc:Virtual PCD 00 00")
    assert reader.connect() == bridge.card.atr
    resp = Channel(reader).transmit(SELECT)
    assert resp.ok and resp.data.startswith(bytes.fromhex("6F"))
    reader.disconnect(Disposition.RESET)
    reader.connect()
    reader.close()
    same = open_reader("pcsc:0")
    assert same.name == "Virtual PCD 00 00"
    same.close()


def test_extended_apdu_passes(pcscd: Pcscd) -> None:  # noqa: F811
    card = EchoCard()
    b = VpcdBridge(card).start()
    try:
        reader = open_reader("pcsc:Virtual PCD 00 00")
        assert wait_for(reader.is_card_present, 10)
        reader.connect()
        data = bytes(range(256)) * 4
        answer = reader.transmit(bytes.fromhex("00DA0000") + b"\x00" + len(data).to_bytes(2, "big") + data)
        assert answer == data + b"\x90\x00"
        reader.close()
    finally:
        b.stop()


def test_exclusive_share_blocks_a_second_connect(bridge: VpcdBridge) -> None:
    first = open_reader("pcsc:00 00?share=exclusive")
    first.connect()
    second = open_reader("pcsc:00 00")
    with pytest.raises(SharingViolationError):
        second.connect()
    first.close()
    second.connect()
    second.close()


def test_card_removed_and_reinserted(bridge: VpcdBridge) -> None:
    reader = open_reader("pcsc:00 00")
    reader.connect()
    bridge.remove()
    with pytest.raises(CardRemovedError):
        for _ in range(50):  # removal is seen at the next exchange
            reader.transmit(SELECT)
            time.sleep(0.05)
    assert reader.wait_for_removal(5)
    with pytest.raises((NoCardError, CardRemovedError)):
        reader.connect()
    bridge.insert()
    assert reader.wait_for_card(5)
    reader.connect()
    assert Channel(reader).transmit(SELECT).ok
    reader.close()


def test_round_trip_has_no_nagle_stall(bridge: VpcdBridge) -> None:
    reader = open_reader("pcsc:00 00")
    reader.connect()
    channel = Channel(reader)
    started = time.perf_counter()
    for _ in range(50):
        channel.transmit(SELECT)
    assert time.perf_counter() - started < 1.0  # 50 × 44 ms would be 2.2 s
    reader.close()



def test_events_and_pcscd_restart(pcscd: Pcscd, bridge: VpcdBridge) -> None:  # noqa: F811
    from cardlib.readers.pcsc import watch_pcsc

    events: list[ReaderEvent] = []
    stop = threading.Event()

    def watch() -> None:
        for event in watch_pcsc(stop.is_set, poll_ms=200):
            events.append(event)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    assert wait_for(lambda: any(e.kind is EventKind.CARD_INSERTED and e.reader.endswith("00 00") for e in events), 10)
    bridge.remove()
    assert wait_for(lambda: any(e.kind is EventKind.CARD_REMOVED for e in events), 10)
    bridge.insert()
    assert wait_for(lambda: sum(e.kind is EventKind.CARD_INSERTED for e in events) >= 2, 10)
    if pcscd.owned:
        pcscd.restart()
        assert wait_for(lambda: any(e.kind is EventKind.SERVICE_UNAVAILABLE for e in events)
                        or any(e.kind is EventKind.READER_REMOVED for e in events), 10)
        # the bridge reconnects by itself; the watcher resumes and sees the card again
        assert wait_for(lambda: sum(e.kind is EventKind.CARD_INSERTED for e in events) >= 3, 15)
        reader = open_reader("pcsc:00 00")
        reader.connect()
        assert Channel(reader).transmit(SELECT).ok
        reader.close()
    stop.set()
    t.join(5)


def test_missing_reader_is_a_clear_error(pcscd: Pcscd) -> None:  # noqa: F811
    with pytest.raises(ReaderUnavailableError, match="no PC/SC reader matches"):
        open_reader("pcsc:Omnikey 5422")
