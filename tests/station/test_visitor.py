"""A visitor's card: an interoperable card of city B holds its own issuer's purchase key and the
interoperable one (a key per key index). It pays at a station of its home city through the local PSAM
with its own key and at a station of city A through the T-Union PSAM with the interoperable one; every
TAC verifies under city B's keys (what ``ykt journal verify`` and clearing check), never city A's.
A deny-listed visitor is refused with ``deny_listed`` and left unblocked, since no PSAM of city A holds
its issuer's maintenance key; a deny-listed local card is refused and blocked, as before.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from cardlib.channel import Channel
from cardlib.clock import Clock
from cardlib.crypto import Algorithm
from cardlib.errors import ConfigError
from cardlib.iso import select_aid
from cardlib.keys import IssuerKeys, derive_card_keys
from cardlib.keystore import TUNION_KEY_INDEX, InteropKeys, PsamKind, builtin_interop, builtin_store
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from cardlib.readers.base import Reader
from cardlib.readers.pyhost import HostedReader
from cardlib.settlement import verify_records
from clearing.checks import line_row, tac_verified
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import SocialSecurityCard
from simulators.station import make_station_psam
from terminal.config import parse_config
from terminal.decision import Decision, Reason
from terminal.denylist import DenyList, build_denylist
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app
from terminal.station import Station
from terminal.station_config import parse_station
from tests.station.helpers import (
    BUS,
    METRO_ENTRY,
    NOON,
    assert_card_equals_journal,
    city_a,
    city_b,
    local_card,
    station_table,
    stranger_card,
    visitor_card,
)

TID = bytes.fromhex("000000000501")
D, T = bytes.fromhex("20261128"), bytes.fromhex("120000")


# --- the card: a purchase key per key index ------------------------------------------------


def test_an_interoperable_card_holds_its_own_purchase_key_and_the_interoperable_one() -> None:
    card = visitor_card(1)
    keys = card.keys
    own = derive_card_keys(city_b(), card.app_serial, card.issuer_records().card_id).dpk
    assert keys.purchase_key(own.index) == own == keys.dpk
    network = keys.purchase_key(TUNION_KEY_INDEX)
    assert network == builtin_interop().card_purchase_key(city_b().issuer_id, card.app_serial)
    assert network is not None and network.key != own.key
    assert keys.purchase_key(3) is None
    plain = issue_card(CardProfile(region="330100"), issuer=city_b(), seed=1)
    assert plain.keys.extra_dpk == () and plain.keys.purchase_key(TUNION_KEY_INDEX) is None
    # the interoperable key is added beside the card's own: the rest of the card is the same card
    assert plain.keys.dpk == own and plain.app_serial == card.app_serial


def _channel(card: SocialSecurityCard) -> Channel:
    reader = HostedReader([card])
    reader.connect()
    return Channel(reader)


def _init_and_debit(channel: Channel, key_index: int, mac_key: bytes) -> int:
    """INITIALIZE FOR PURCHASE under ``key_index``, then DEBIT with MAC1 made with ``mac_key``: the SW."""
    r = channel.transmit(P.InitializeForPurchase(key_index, 100, TID).to_apdu())
    if not r.ok:
        return r.sw
    init = P.InitializeForPurchaseResponse.decode(r.data)
    sespk = macs.purchase_session_key(mac_key, init.random, init.offline_seq, 1, Algorithm.TDES)
    mac1 = macs.purchase_mac1(sespk, 100, macs.TX_EP_PURCHASE, TID, D, T, Algorithm.TDES)
    return channel.transmit(P.DebitForPurchase(1, D, T, mac1).to_apdu()).sw


def test_initialize_for_purchase_answers_with_the_key_of_the_index_asked() -> None:
    card = visitor_card(2)
    channel = _channel(card)
    channel.send(select_aid(P.PURSE_AID), what="SELECT")
    own, network = card.keys.dpk, card.keys.purchase_key(TUNION_KEY_INDEX)
    assert network is not None
    # each index answers with its key's version, and DEBIT takes a MAC1 of that key only
    assert _init_and_debit(channel, own.index, network.key) == 0x9302
    assert _init_and_debit(channel, TUNION_KEY_INDEX, own.key) == 0x9302
    assert _init_and_debit(channel, own.index, own.key) == 0x9000
    assert _init_and_debit(channel, TUNION_KEY_INDEX, network.key) == 0x9000
    assert _init_and_debit(channel, 3, own.key) == 0x9403  # an index the card does not hold
    assert card.purse.state.balance == 5000 - 200


def clearing_status(line: dict[str, Any]) -> str:
    """A batch line's TAC as the clearing job checks it (clearing.checks.line_row, then the chain
    stage's look-up of the issuer's keys by issuer id and key version)."""
    store = builtin_store()
    row = line_row(line, store)
    card, issuer_hex, tac, status, algorithm, version, message = (row[0], row[1], row[12], row[14], row[15],
                                                                  row[16], row[17])
    assert status == "unverified", row
    issuer = store.find(bytes.fromhex(issuer_hex), version)
    if issuer is None:
        return "unknown_issuer"
    return "ok" if tac_verified(issuer, card, algorithm, tac, message) else "forged"


# --- stations of both cities ---------------------------------------------------------------


def run_station(tmp_path: Path, local: IssuerKeys, card: SocialSecurityCard, settings: dict[str, Any],
                journal: Journal, interop: InteropKeys | None = None, **station: Any) -> Decision:
    """A station of ``local``'s city (a local and a T-Union PSAM, one lane) serving one tap of ``card``."""
    readers: dict[str, HostedReader] = {}
    for n, kind in enumerate((PsamKind.LOCAL, PsamKind.TUNION)):
        reader = HostedReader(name=f"psam-{kind.value}")
        tid = local.issuer_id[2:4] + bytes((0, 0, 5, n + 1))
        reader.insert(make_station_psam(kind, local, tid, interop=interop))
        readers[f"hosted:psam-{kind.value}"] = reader
    lane = HostedReader(name="lane")
    lane.insert(card)
    readers["hosted:lane"] = lane

    def opener(uri: str) -> Reader:
        return readers[uri]

    table = station_table([("local", "hosted:psam-local", "local"), ("tunion", "hosted:psam-tunion", "tunion")],
                          [("lane", "hosted:lane", settings)], timeout=2.0)
    table["station"].update(station)
    station = Station(parse_station(table, tmp_path), journal, Clock.fixed(NOON), opener=opener).start()
    shown: list[Decision] = []
    try:
        station.run(lambda e: shown.append(e.decision) if e.decision is not None else None,
                    threading.Event(), max_taps=1, poll=0.05)
    finally:
        station.close()
    assert len(shown) == 1
    return shown[0]


@pytest.mark.parametrize("at_home, away", [(BUS, METRO_ENTRY), (METRO_ENTRY, BUS)],
                         ids=["bus-then-metro", "metro-then-bus"])
def test_a_visitor_pays_at_home_with_its_own_key_and_away_with_the_interoperable_one(
        tmp_path: Path, at_home: dict[str, Any], away: dict[str, Any]) -> None:
    card, start = visitor_card(3, balance=5000), 5000
    journal = Journal(tmp_path / "journal.db", Clock.fixed(NOON))
    try:
        home = run_station(tmp_path, city_b(), card, at_home, journal)
        assert home.open, home
        there = run_station(tmp_path, city_a(), card, away, journal)
        assert there.open, there
        records = journal.records("completed")
        assert [(r.key_index, r.terminal_id[:2]) for r in records] == [
            (card.keys.dpk.index, city_b().issuer_id[2:4]),  # home: the local PSAM of city B, its own key
            (TUNION_KEY_INDEX, city_a().issuer_id[2:4]),  # away: city A's T-Union PSAM, the interoperable key
        ]
        assert assert_card_equals_journal(card, start, journal) == 2  # each TAC under its issuer's keys (B)
        items = [r.to_json() for r in records]
        assert verify_records(items, city_b()).ok  # what `ykt journal verify --issuer-keys` runs
        assert verify_records(items, city_a()).failed == tuple(r.id for r in records)  # not city A's
        assert [clearing_status(obj) for obj in items] == ["ok", "ok"]
    finally:
        journal.close()


def test_the_interoperable_key_index_is_the_stations_setting(tmp_path: Path) -> None:
    """Index 2 is the project's profile; a network with another one names it in station.toml
    (``station.tunion_key_index``) and ships its master under it."""
    other = dataclasses.replace(builtin_interop(), mpk=dataclasses.replace(builtin_interop().mpk, index=3))
    card = issue_card(CardProfile(region="330100", interoperable=True), issuer=city_b(), seed=9, interop=other)
    assert card.keys.purchase_key(3) is not None and card.keys.purchase_key(TUNION_KEY_INDEX) is None
    journal = Journal(tmp_path / "journal.db", Clock.fixed(NOON))
    try:
        d = run_station(tmp_path, city_a(), card, BUS, journal, interop=other, tunion_key_index=3)
        assert d.open, d
        assert [r.key_index for r in journal.records("completed")] == [3]
        assert_card_equals_journal(card, 5000, journal)
        # a station left at the profile's index keeps that T-Union PSAM out of its pool: refused, nothing paid
        d = run_station(tmp_path, city_a(), card, BUS, journal, interop=other)
        assert not d.open and d.reason is Reason.PSAM_UNAVAILABLE and journal.count() == 1, d
    finally:
        journal.close()


@pytest.mark.parametrize("index", [0, 256])
def test_a_bad_interoperable_key_index_is_a_config_error(index: int) -> None:
    table = station_table([("local", "hosted:p", "local")], [("lane", "hosted:l", BUS)])
    table["station"]["tunion_key_index"] = index
    with pytest.raises(ConfigError, match=f"station.tunion_key_index: 1..255, got {index}"):
        parse_station(table)


# --- a deny-listed visitor -------------------------------------------------------------------


def _deny(tmp_path: Path, *cards: SocialSecurityCard) -> Path:
    path = tmp_path / "deny.bin"
    build_denylist([c.app_serial for c in cards], path, 1)
    return path


@pytest.mark.parametrize("settings", [BUS, METRO_ENTRY], ids=["bus_validator", "metro_gate"])
@pytest.mark.parametrize("kind", [PsamKind.LOCAL, PsamKind.TUNION])
def test_a_validator_or_gate_refuses_a_listed_visitor_and_blocks_it_only_when_it_can(
        tmp_path: Path, settings: dict[str, Any], kind: PsamKind) -> None:
    visitor, local = visitor_card(4), local_card(5)
    psam_reader = HostedReader([make_station_psam(kind, city_a(), TID)])
    psam_reader.connect()
    journal = Journal(tmp_path / "journal.db", Clock.fixed(NOON))
    app = make_app(parse_config(settings), PsamClient(Channel(psam_reader)), journal, Clock.fixed(NOON),
                   DenyList(_deny(tmp_path, visitor, local)))
    try:
        d = app.tap(HostedReader([visitor]))
        assert not d.open and d.reason is Reason.DENY_LISTED and d.blocked is False, d
        assert "no maintenance key of issuer " + city_b().issuer_id.hex().upper() in d.detail
        assert d.to_json()["blocked"] is False and d.text_en == "Card deny-listed (not blocked)"
        assert visitor.purse.state.blocked is None and visitor.purse.state.balance == 5000  # no money moved
        assert journal.count() == 0
        if kind is PsamKind.TUNION:
            return  # a local card is served by the local PSAM (its key index is the maintenance key's)
        d = app.tap(HostedReader([local]))
        assert not d.open and d.reason is Reason.DENY_LISTED and d.blocked is True, d
        assert d.to_json()["blocked"] is True and d.text_en == "Card deny-listed and blocked"
        assert local.purse.state.blocked == "temporary" and local.purse.state.balance == 5000
        assert journal.count() == 0
    finally:
        journal.close()


def test_a_station_refuses_a_listed_visitor_unblocked_and_a_listed_local_card_blocked(tmp_path: Path) -> None:
    visitor, local = visitor_card(6), local_card(7)
    settings = {**BUS, "paths": {"denylist": str(_deny(tmp_path, visitor, local))}}
    journal = Journal(tmp_path / "journal.db", Clock.fixed(NOON))
    try:
        d = run_station(tmp_path, city_a(), visitor, settings, journal)
        assert not d.open and d.reason is Reason.DENY_LISTED and d.blocked is False, d
        assert "(not blocked)" in d.line() and d.to_json()["blocked"] is False
        assert visitor.purse.state.blocked is None and visitor.purse.state.balance == 5000
        d = run_station(tmp_path, city_a(), local, settings, journal)
        assert not d.open and d.reason is Reason.DENY_LISTED and d.blocked is True, d
        assert local.purse.state.blocked == "temporary"
        assert journal.count() == 0
        # at its home station the visitor's issuer's local PSAM holds the key: blocked there
        d = run_station(tmp_path, city_b(), visitor, settings, journal)
        assert d.reason is Reason.DENY_LISTED and d.blocked is True and visitor.purse.state.blocked == "temporary"
    finally:
        journal.close()


def test_a_listed_card_no_psam_serves_is_refused_as_listed(tmp_path: Path) -> None:
    stranger = stranger_card(10)
    settings = {**BUS, "paths": {"denylist": str(_deny(tmp_path, stranger))}}
    journal = Journal(tmp_path / "journal.db", Clock.fixed(NOON))
    try:
        d = run_station(tmp_path, city_a(), stranger, settings, journal)
        assert not d.open and d.reason is Reason.DENY_LISTED and d.blocked is False, d
        assert d.detail == (f"not blocked: no PSAM of this station serves issuer {city_b().issuer_id.hex().upper()}"
                            " (not interoperable)")
        assert stranger.purse.state.blocked is None and journal.count() == 0
        unlisted = stranger_card(11)
        d = run_station(tmp_path, city_a(), unlisted, settings, journal)
        assert d.reason is Reason.NO_PSAM_FOR_CARD and d.blocked is None, d
    finally:
        journal.close()


def test_decisions_other_than_deny_listed_say_nothing_of_blocking(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", Clock.fixed(NOON))
    try:
        d = run_station(tmp_path, city_a(), local_card(8), BUS, journal)
        assert d.open and d.blocked is None and "blocked" not in d.to_json()
    finally:
        journal.close()
