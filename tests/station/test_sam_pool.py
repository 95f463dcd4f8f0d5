"""The SAM pool: allocation strategies, the timeout and its typed error, release on every error path,
a PSAM removed during INIT SAM FOR PURCHASE, DEBIT and CREDIT SAM FOR PURCHASE, leaving and rejoining."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cardlib.clock import Clock
from cardlib.errors import ConfigError
from cardlib.keystore import PsamKind
from cardlib.pboc import psam as W
from cardlib.pboc import purse as P
from cardlib.readers.base import Reader
from cardlib.readers.pyhost import HostedReader
from simulators.faults import DROP, TEAR_AFTER, TEAR_BEFORE, FaultyCard
from simulators.station import make_station_psam
from terminal.decision import Reason
from terminal.journal import Journal
from terminal.sam_pool import NoSamAvailableError, SamPool, SamSlot
from terminal.station import Station
from terminal.station_config import parse_station
from tests.station.helpers import (
    BUS,
    NOON,
    assert_card_equals_journal,
    city_a,
    local_card,
    station_table,
    visitor_card,
)

L1, L2, T1 = bytes.fromhex("000000000101"), bytes.fromhex("000000000102"), bytes.fromhex("000000000201")


def pool_of(kinds: list[PsamKind], strategy: str = "first", timeout: float = 0.2) -> tuple[SamPool, dict[str, Any]]:
    readers: dict[str, Any] = {}
    slots = []
    for i, kind in enumerate(kinds):
        name = f"{kind.value}-{i}"
        readers[name] = HostedReader([FaultyCard(make_station_psam(kind, city_a(), bytes([0, 0, 0, 0, 1, i])))],
                                     name=name)
        slots.append(SamSlot(name, name, kind))
    pool = SamPool(slots, readers.__getitem__, strategy=strategy, timeout=timeout, retry=0.01,
                   rng=random.Random(7))
    pool.start()
    return pool, readers


def test_first_gives_the_first_free_psam_of_the_kind() -> None:
    pool, _ = pool_of([PsamKind.LOCAL, PsamKind.TUNION, PsamKind.LOCAL])
    first = pool.allocate(PsamKind.LOCAL)
    assert first.name == "local-0"
    pool.release(first)
    assert pool.allocate(PsamKind.LOCAL).name == "local-0"  # first: the same one again once free
    assert pool.allocate(PsamKind.LOCAL).name == "local-2"
    assert pool.allocate(PsamKind.TUNION).name == "tunion-1"


def test_cyclic_goes_round_and_random_spreads() -> None:
    pool, _ = pool_of([PsamKind.LOCAL] * 3, strategy="cyclic")
    names = []
    for _ in range(6):
        sam = pool.allocate(PsamKind.LOCAL)
        names.append(sam.name)
        pool.release(sam)
    assert names == ["local-0", "local-1", "local-2"] * 2
    pool, _ = pool_of([PsamKind.LOCAL] * 3, strategy="random")
    seen = set()
    for _ in range(30):
        sam = pool.allocate(PsamKind.LOCAL)
        seen.add(sam.name)
        pool.release(sam)
    assert seen == {"local-0", "local-1", "local-2"}


def test_allocation_waits_then_fails_with_a_typed_error() -> None:
    pool, _ = pool_of([PsamKind.LOCAL], timeout=0.15)
    held = pool.allocate(PsamKind.LOCAL)
    started = time.monotonic()
    with pytest.raises(NoSamAvailableError, match=r"no local PSAM free within 0.15 s \(all 1 in use\)"):
        pool.allocate(PsamKind.LOCAL)
    assert time.monotonic() - started >= 0.15
    with pytest.raises(NoSamAvailableError, match="none configured"):
        pool.allocate(PsamKind.TUNION)
    # a release within the timeout wakes the waiting lane
    threading.Timer(0.05, pool.release, args=(held,)).start()
    assert pool.allocate(PsamKind.LOCAL, timeout=2).name == "local-0"


def test_a_psam_that_stops_answering_leaves_and_rejoins() -> None:
    pool, readers = pool_of([PsamKind.LOCAL, PsamKind.LOCAL])
    psam0: FaultyCard = readers["local-0"].cards[0]
    psam0.removed = True
    pool.lost(pool.sams[0], "pulled")
    assert [s.name for s in pool.present()] == ["local-1"]
    assert pool.allocate(PsamKind.LOCAL).name == "local-1"
    with pytest.raises(NoSamAvailableError, match="all 1 in use"):
        pool.allocate(PsamKind.LOCAL, timeout=0.05)  # the pulled one is tried again and still does not answer
    psam0.reinsert()
    readers["local-0"].insert(psam0)  # put back in its slot
    assert pool.allocate(PsamKind.LOCAL, timeout=1).name == "local-0"  # back in the pool


def test_a_slot_of_the_wrong_kind_stays_out() -> None:
    reader = HostedReader([make_station_psam(PsamKind.LOCAL, city_a(), L1)])
    pool = SamPool([SamSlot("t", "t", PsamKind.TUNION)], lambda uri: reader)
    pool.start()
    assert not pool.present()
    assert "not a tunion PSAM" in pool.sams[0].problem


@pytest.mark.parametrize("bad, message", [
    ({"strategy": "fastest"}, "pool.strategy"), ({"timeout_seconds": -1}, "pool.timeout_seconds"),
])
def test_bad_pool_settings_are_config_errors(bad: dict[str, Any], message: str) -> None:
    table = station_table([("L1", "l1", "local")], [("bus", "bus", BUS)])
    table["pool"].update(bad)
    with pytest.raises(ConfigError, match=message):
        parse_station(table)


# --- through a lane ---------------------------------------------------------------------------------


class Rig:
    """A station of one bus lane, two local PSAMs and a T-Union one, every PSAM behind FaultyCard."""

    def __init__(self, tmp_path: Path) -> None:
        self.readers: dict[str, Reader] = {}
        self.psams: dict[str, FaultyCard] = {}
        for name, kind, tid in (("L1", PsamKind.LOCAL, L1), ("L2", PsamKind.LOCAL, L2), ("T1", PsamKind.TUNION, T1)):
            self.psams[name] = FaultyCard(make_station_psam(kind, city_a(), tid))
            self.readers[name] = HostedReader([self.psams[name]], name=name)
        self.readers["bus"] = HostedReader(name="bus")
        table = station_table([("L1", "L1", "local"), ("L2", "L2", "local"), ("T1", "T1", "tunion")],
                              [("bus", "bus", BUS)])
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(tmp_path / "station.db", Clock.fixed(NOON))
        self.station = Station(parse_station(table), self.journal, Clock.fixed(NOON),
                               opener=self.readers.__getitem__).start()
        self.lane = self.station.lanes[0]

    def tap(self, card: Any) -> Any:
        reader = self.readers["bus"]
        assert isinstance(reader, HostedReader)
        reader.insert(card)
        try:
            return self.lane.tap(reader)
        finally:
            reader.remove(card)
            assert not any(s.busy for s in self.station.pool.sams), "a PSAM was not released"

    def put_back(self, name: str) -> None:
        """The pulled PSAM goes back into its slot."""
        self.psams[name].reinsert()
        reader = self.readers[name]
        assert isinstance(reader, HostedReader)
        reader.insert(self.psams[name])

    def close(self) -> None:
        self.station.close()
        self.journal.close()


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_a_psam_removed_during_init_sam_for_purchase_leaves_no_record(rig: Rig) -> None:
    card = local_card(1)
    rig.psams["L1"].on_ins(W.INS_INIT_SAM_PURCHASE, TEAR_BEFORE)
    d = rig.tap(card)
    assert d.reason is Reason.PSAM_UNAVAILABLE and not d.open
    assert "INIT SAM FOR PURCHASE" in d.detail
    assert rig.journal.count() == 0  # no record: nothing was sent to the card's purse but INITIALIZE
    assert [s.name for s in rig.station.pool.present(PsamKind.LOCAL)] == ["L2"]
    d = rig.tap(card)  # the next tap takes the other local PSAM
    assert d.open and d.reason is Reason.OK
    assert rig.journal.records("completed")[0].terminal_id == L2
    rig.put_back("L1")
    rig.station.pool.allocate(PsamKind.LOCAL, timeout=1)  # L2 busy now: L1 must be back to be given
    assert assert_card_equals_journal(card, 5000, rig.journal) == 1


@pytest.mark.parametrize("when", ["during DEBIT", "during CREDIT SAM FOR PURCHASE"])
def test_a_psam_removed_after_debit_leaves_the_record_pending_then_recovered(rig: Rig, when: str) -> None:
    card = local_card(2)
    psam = rig.psams["L1"]
    if when == "during DEBIT":  # pulled while the card works on DEBIT: CREDIT SAM finds it gone
        inner = card.process

        def debit_pulls(apdu: bytes) -> bytes:
            if apdu[1] == P.INS_DEBIT:
                psam.removed = True
            return inner(apdu)

        card.process = debit_pulls  # type: ignore[method-assign]
    else:  # the PSAM took CREDIT SAM FOR PURCHASE and left before answering
        psam.on_ins(W.INS_CREDIT_SAM_PURCHASE, TEAR_AFTER)
    d = rig.tap(card)
    assert d.reason is Reason.PSAM_UNAVAILABLE and not d.open
    pending = rig.journal.pending()
    assert len(pending) == 1 and pending[0].terminal_id == L1
    if when == "during DEBIT":
        card.process = inner  # type: ignore[method-assign]
    d = rig.tap(card)  # next tap, on L2: the torn record of L1 is resolved as any torn transaction
    assert d.reason is Reason.RECOVERED and d.open and d.amount == 200
    (rec,) = rig.journal.records("recovered")
    assert rec.terminal_id == L1 and rec.mac2 and rec.tac
    assert rec.mac2_verified is None  # the session's PSAM is gone: MAC2 kept for settlement, not checked
    assert assert_card_equals_journal(card, 5000, rig.journal) == 1


def test_the_visitor_card_uses_the_tunion_psam_and_its_key_index(rig: Rig) -> None:
    card = visitor_card(3)
    d = rig.tap(card)
    assert d.open
    (rec,) = rig.journal.records("completed")
    assert rec.terminal_id == T1 and rec.key_index == 2
    rig.psams["T1"].removed = True  # the only T-Union PSAM pulled: visitors are refused, locals go on
    second, third = visitor_card(5), visitor_card(6)
    d = rig.tap(second)  # found out at its first command
    assert d.reason is Reason.PSAM_UNAVAILABLE and "stopped answering during INIT SAM FOR PURCHASE" in d.detail
    d = rig.tap(third)  # out of the pool now: the allocation times out
    assert d.reason is Reason.PSAM_UNAVAILABLE and "no tunion PSAM free" in d.detail
    assert rig.tap(local_card(4)).open
    rig.put_back("T1")
    assert rig.tap(second).open and rig.tap(third).open
    assert rig.journal.count() == 4
    for c in (second, third):
        assert assert_card_equals_journal(c, 5000, rig.journal) == 1
    assert assert_card_equals_journal(card, 5000, rig.journal) == 1


def _tap_apdus(rig: Rig, make: Callable[[int], Any]) -> tuple[int, int]:
    """How many APDUs one clean tap sends to the card and to the PSAM."""
    card = FaultyCard(make(90))
    before = rig.psams["L1"].count
    assert rig.tap(card).open
    return card.count, rig.psams["L1"].count - before


@pytest.mark.parametrize("fault", [TEAR_BEFORE, TEAR_AFTER, DROP], ids=lambda f: f.kind)
def test_every_step_of_a_tap_failing_releases_the_psam_and_loses_no_money(tmp_path: Path, fault: Any) -> None:
    """A fault at each APDU of the tap, on the card's side and on the PSAM's: the PSAM always goes back
    to the pool, and every card equals its journal once it taps again."""
    probe = Rig(tmp_path / "probe")
    card_n, psam_n = _tap_apdus(probe, lambda seed: local_card(seed))
    probe.close()
    assert card_n >= 6 and psam_n >= 2
    for side, n in [("card", i) for i in range(1, card_n + 1)] + [("psam", i) for i in range(1, psam_n + 1)]:
        rig = Rig(tmp_path / f"{side}{n}")
        card = FaultyCard(local_card(100 + n))
        if side == "card":
            card.at(n, fault)
        else:
            rig.psams["L1"].at(rig.psams["L1"].count + n, fault)
        rig.tap(card)  # asserts every PSAM released
        card.reinsert()
        rig.put_back("L1")
        card.clear()
        d = rig.tap(card)
        assert d.open or d.reason is Reason.REPEATED_TAP, (side, n, d)
        assert_card_equals_journal(card.card, 5000, rig.journal)
        rig.close()
