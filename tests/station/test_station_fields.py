"""A whole station through every kind of reader: four lanes (three bus validators and a metro entry
gate) and two PSAMs (local, T-Union) over the in-process field, pcscd + vpcd (six slots), PN532
emulators on pseudo-terminals, and a station mixing the three. Cards of both issuers: local cards,
visitors (interoperable cards of city B) and a non-interoperable card of city B. A PSAM is pulled and
put back, a PN532 lane's reader is unplugged and comes back while the other lanes serve, four cards
tap at once; at the end every card equals its journal records to the fen and the journal checks clean.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cardlib.clock import Clock
from cardlib.keystore import PsamKind
from cardlib.readers.base import Card, Reader
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import open_reader
from simulators.field import wait_for
from simulators.psam import PsamCard
from simulators.station import make_station_psam
from simulators.vpcd import VpcdBridge
from terminal.decision import Decision, Reason
from terminal.journal import Journal
from terminal.journal_check import check_journal
from terminal.station import Station
from terminal.station_config import parse_station
from terminal.station_lane import LaneEvent
from tests.pcsc_support import (  # noqa: F401
    STATION_PORTS,
    card_seen,
    pcscd,
    station_reader,
    station_slots,
)
from tests.station.helpers import (
    BUS,
    METRO_ENTRY,
    NOON,
    assert_card_equals_journal,
    city_a,
    local_card,
    station_table,
    stranger_card,
    visitor_card,
)

LANES = ("bus-1", "bus-2", "bus-3", "entry-4")
SETTINGS = {"bus-1": BUS, "bus-2": BUS, "bus-3": BUS, "entry-4": METRO_ENTRY}


class Slot:
    """Where a card or a PSAM sits: insert, remove, close."""

    uri: str

    def insert(self, card: Card) -> None: ...
    def remove(self, card: Card) -> None: ...
    def close(self) -> None: ...


class SimSlot(Slot):
    def __init__(self, name: str) -> None:
        self.uri = f"hosted:{name}"
        self.reader = HostedReader(name=name)

    def insert(self, card: Card) -> None:
        self.reader.insert(card)

    def remove(self, card: Card) -> None:
        self.reader.remove(card)


class VpcdSlot(Slot):
    """A vpcd port of the station's six: one card at a time, seen by pcscd before we go on."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.uri = f"pcsc:{station_reader(port)}"
        self.bridge: VpcdBridge | None = None

    def insert(self, card: Card) -> None:
        if self.bridge is not None and self.bridge.card is card:
            self.bridge.insert()
        else:
            self.close()
            self.bridge = VpcdBridge(card, port=self.port).start()
        assert wait_for(functools.partial(card_seen, station_reader(self.port)), 10, 0.05), self.uri

    def remove(self, card: Card) -> None:
        if self.bridge is not None:
            self.bridge.remove()
            wait_for(functools.partial(card_seen, station_reader(self.port), present=False), 10, 0.05)

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            wait_for(functools.partial(card_seen, station_reader(self.port), present=False), 10, 0.05)
            self.bridge = None


class Pn532Slot(Slot):
    """A PN532 emulator on a pseudo-terminal linked at a fixed path: unplugging stops it, plugging in
    starts a new one at the same path."""

    def __init__(self, link: Path) -> None:
        from simulators.pn532 import Pn532Emulator

        self.link = str(link)
        self.uri = f"pn532:{self.link}"
        self.emulator = Pn532Emulator()
        self.emulator.start(self.link)

    def insert(self, card: Card) -> None:
        self.emulator.insert(card)

    def remove(self, card: Card) -> None:
        self.emulator.remove(card)

    def unplug(self) -> None:
        self.emulator.stop()

    def plug_in(self) -> None:
        from simulators.pn532 import Pn532Emulator

        self.emulator = Pn532Emulator()
        self.emulator.start(self.link)

    def close(self) -> None:
        self.emulator.stop()


class Rig:
    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.lanes: dict[str, Slot] = {}
        for i, name in enumerate(LANES):
            lane_kind = {"mixed": ("sim", "pcsc", "pn532", "pcsc")[i]}.get(kind, kind)
            if lane_kind == "sim":
                self.lanes[name] = SimSlot(name)
            elif lane_kind == "pcsc":
                self.lanes[name] = VpcdSlot(STATION_PORTS[i])
            else:
                self.lanes[name] = Pn532Slot(tmp_path / f"tty-{name}")
        self.psam_cards: dict[str, PsamCard] = {
            "local": make_station_psam(PsamKind.LOCAL, city_a(), bytes.fromhex("000000000301")),
            "tunion": make_station_psam(PsamKind.TUNION, city_a(), bytes.fromhex("000000000302")),
        }
        self.psams: dict[str, Slot] = {}
        for j, name in enumerate(("local", "tunion")):
            slot: Slot = VpcdSlot(STATION_PORTS[4 + j]) if kind in ("pcsc", "mixed") else SimSlot(f"psam-{name}")
            slot.insert(self.psam_cards[name])
            self.psams[name] = slot
        hosted = {s.uri: s.reader for s in [*self.lanes.values(), *self.psams.values()] if isinstance(s, SimSlot)}

        def opener(uri: str) -> Reader:
            return hosted[uri] if uri in hosted else open_reader(uri)

        table = station_table([(n, s.uri, n) for n, s in self.psams.items()],
                              [(n, s.uri, SETTINGS[n]) for n, s in self.lanes.items()], timeout=2.0)
        self.journal = Journal(tmp_path / "station.db", Clock.fixed(NOON))
        self.station = Station(parse_station(table), self.journal, Clock.fixed(NOON), opener=opener).start()
        self.events: queue.Queue[LaneEvent] = queue.Queue()
        self.statuses: list[tuple[str, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.station.run, args=(self.events.put, self.stop, 0, 0.05),
                                       daemon=True)
        self.thread.start()

    def decision(self, lane: str, timeout: float = 20) -> Decision:
        """The next decision of ``lane`` (status changes are kept aside)."""
        pending: list[LaneEvent] = []
        try:
            while True:
                event = self.events.get(timeout=timeout)
                if event.decision is None:
                    self.statuses.append((event.lane, event.status))
                elif event.lane == lane:
                    return event.decision
                else:
                    pending.append(event)
        finally:
            for e in pending:
                self.events.put(e)

    def status(self, lane: str, starts: str, timeout: float = 20) -> None:
        ok = wait_for(lambda: self._drain() or any(n == lane and s.startswith(starts) for n, s in self.statuses),
                      timeout, 0.05)
        assert ok, (lane, starts, self.statuses)

    def _drain(self) -> bool:
        kept = []
        while not self.events.empty():
            event = self.events.get()
            if event.decision is None:
                self.statuses.append((event.lane, event.status))
            else:
                kept.append(event)
        for e in kept:
            self.events.put(e)
        return False

    def ready(self, lane: str) -> None:
        """The lane has seen the last card leave (a card put down before that would pass for it)."""
        assert self.station.lanes[LANES.index(lane)].ready.wait(20), lane

    def tap(self, lane: str, card: Card) -> Decision:
        self.ready(lane)
        self.lanes[lane].insert(card)
        try:
            return self.decision(lane)
        finally:
            self.lanes[lane].remove(card)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        self.station.close()
        self.journal.close()
        for slot in [*self.lanes.values(), *self.psams.values()]:
            slot.close()


@pytest.fixture(params=["sim", pytest.param("pcsc", marks=pytest.mark.pcsc), "pn532",
                        pytest.param("mixed", marks=pytest.mark.pcsc)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param in ("pcsc", "mixed"):
        request.getfixturevalue("station_slots")
    r = Rig(request.param, tmp_path)
    yield r
    r.close()


def test_a_station_of_four_lanes_and_two_psams(rig: Rig) -> None:
    cards: dict[str, tuple[Any, int]] = {}

    def card(name: str, make: Any, seed: int) -> Any:
        c = make(seed)
        cards[name] = (c, c.purse.state.balance)
        return c

    # cards of both issuers, one lane after another
    d = rig.tap("bus-1", card("local-1", local_card, 11))
    assert d.open and d.reason is Reason.OK and d.amount == 200 and d.terminal == "bus-1"
    d = rig.tap("bus-2", card("visitor-1", visitor_card, 12))
    assert d.open and d.amount == 200
    d = rig.tap("bus-3", card("stranger", stranger_card, 13))
    assert not d.open and d.reason is Reason.NO_PSAM_FOR_CARD and "not interoperable" in d.detail
    d = rig.tap("entry-4", card("local-2", local_card, 14))
    assert d.open and d.amount == 0  # metro entry: a 0 fen composite purchase

    # the T-Union PSAM pulled: the visitor is refused, nothing recorded; put back: served
    rig.psams["tunion"].remove(rig.psam_cards["tunion"])
    visitor = card("visitor-2", visitor_card, 15)
    before = rig.journal.count()
    d = rig.tap("bus-1", visitor)
    assert not d.open and d.reason is Reason.PSAM_UNAVAILABLE, d
    assert rig.journal.count() == before
    rig.psams["tunion"].insert(rig.psam_cards["tunion"])
    d = rig.tap("bus-1", visitor)
    assert d.open and d.amount == 200, d

    # a PN532 lane's reader unplugged: it says so, the others serve; plugged in again: it serves
    pn532 = [name for name, slot in rig.lanes.items() if isinstance(slot, Pn532Slot)]
    if pn532:
        lane = pn532[0]
        slot = rig.lanes[lane]
        assert isinstance(slot, Pn532Slot)
        slot.unplug()
        rig.status(lane, "reader unplugged")
        other = next(n for n in LANES if n != lane)
        assert rig.tap(other, card("local-3", local_card, 16)).open
        slot.plug_in()
        rig.status(lane, "reader back")
        assert rig.tap(lane, card("local-4", local_card, 17)).open

    # four cards at once, one on each lane
    at_once = {lane: card(f"at-once-{lane}", local_card if i % 2 else visitor_card, 20 + i)
               for i, lane in enumerate(LANES)}
    for lane in at_once:
        rig.ready(lane)
    for lane, c in at_once.items():
        rig.lanes[lane].insert(c)
    decisions = {lane: rig.decision(lane) for lane in LANES}
    for lane, c in at_once.items():
        rig.lanes[lane].remove(c)
    assert all(d.open for d in decisions.values()), decisions

    # every card against its journal records, to the fen; the journal checks clean
    settled = sum(assert_card_equals_journal(c, start, rig.journal) for c, start in cards.values())
    assert settled == len(cards) - 1  # every card paid once but the stranger
    check = check_journal(rig.journal)
    assert check.ok, check.errors
    seqs = [(r.terminal_id, r.terminal_seq) for r in rig.journal.records("completed")]
    assert len(set(seqs)) == len(seqs)
    assert {tid for tid, _ in seqs} == {bytes.fromhex("000000000301"), bytes.fromhex("000000000302")}
