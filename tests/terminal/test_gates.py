"""Gates and validators end to end on virtual cards: every decision with its reason code."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path

import pytest

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.iso import select_aid
from cardlib.keys import IssuerKeys, KeyEntry, default_issuer, verify_tac
from cardlib.pboc import capp
from cardlib.pboc import purse as P
from cardlib.readers.pyhost import HostedReader
from simulators.faults import TEAR_AFTER, FaultyCard
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.config import parse_config
from terminal.current_denylist import CurrentDenyList
from terminal.decision import Reason
from terminal.denylist import DenyList, DenyListError, build_denylist
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app

SEEDS = itertools.count(1)
BUS = {"terminal": {"role": "bus_validator", "line": "K101", "name": "bus-K101"},
       "fares": {"flat": 200}, "transfer": {"window_minutes": 90, "discount": 100},
       "windows": {"repeat_tap_seconds": 60},
       "concessions": [{"name": "elder free", "min_age": 65, "pay_percent": 0},
                       {"name": "student half", "card_type": "student", "pay_percent": 50}]}
METRO = {"terminal": {"role": "metro_gate", "station": "S01", "name": "metro-S01"},
         "fares": {"bands": [[6, 300], [12, 400], [22, 500]], "max_fare": 800,
                   "stations": {"S01": 0, "S05": 8.5, "S09": 30}, "overtime_minutes": 240, "overtime_surcharge": 300}}
MUSEUM = {"terminal": {"role": "identity_gate", "name": "museum"},
          "fares": {"admission": 4000, "admission_visitor": 6000},
          "region": {"local": "3303", "same_city_treatment": True},
          "gate": {"free_entry_age": 65, "daily_limit": 2}, "windows": {"anti_passback_seconds": 600}}


class Site:
    def __init__(self, tmp_path: Path, cfg: dict, **kw: object) -> None:
        self.clock = Clock.fixed(datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING))
        sam = HostedReader([make_psam(**kw)])  # type: ignore[arg-type]
        sam.connect()
        self.psam = PsamClient(Channel(sam), test=True)
        self.journal = Journal(tmp_path / "j.db", self.clock)
        self.cfg = parse_config(cfg)
        self.deny: DenyList | CurrentDenyList | None = None
        self.reader = HostedReader()

    def app(self, cfg: dict | None = None, name: str | None = None):  # type: ignore[no-untyped-def]
        return make_app(parse_config(cfg) if cfg else self.cfg, self.psam, self.journal, self.clock, self.deny, name)

    def tap(self, *cards: object, app=None):  # type: ignore[no-untyped-def]
        self.reader.remove()
        for c in cards:
            self.reader.insert(c)  # type: ignore[arg-type]
        return (app or self.app()).tap(self.reader)


def card(**kw: object):  # type: ignore[no-untyped-def]
    return issue_card(CardProfile(**kw), seed=next(SEEDS))  # type: ignore[arg-type]


def test_bus_flat_fare_concessions_transfer_and_repeat(tmp_path: Path) -> None:
    site = Site(tmp_path, BUS)
    adult, elder, student = card(balance=1000), card(birth_date=date(1958, 1, 1)), card(card_type="student", birth_date=date(2008, 5, 1))
    d = site.tap(adult)
    assert d.open and d.reason is Reason.OK and d.amount == 200 and d.balance == 800
    assert site.tap(adult).reason is Reason.REPEATED_TAP and adult.balance == 800
    assert site.tap(elder).amount == 0
    assert site.tap(student).amount == 100
    site.clock.advance(30 * 60)  # transfer to another line within 90 minutes
    other = site.app({**BUS, "terminal": {**BUS["terminal"], "line": "K202", "name": "bus-K202"}})
    d = site.tap(adult, app=other)
    assert d.amount == 100 and adult.balance == 700
    rec = site.journal.get(d.journal_id)  # type: ignore[arg-type]
    assert verify_tac(default_issuer(), rec.app_serial, rec.tac_fields(), rec.tac)  # type: ignore[arg-type]


def test_bus_refusals(tmp_path: Path) -> None:
    site = Site(tmp_path, BUS)
    assert site.tap(card(balance=50)).reason is Reason.INSUFFICIENT_BALANCE
    assert site.tap(card(valid_until=date(2025, 1, 1))).reason is Reason.CARD_EXPIRED
    assert site.tap(card(), card()).reason is Reason.MULTIPLE_CARDS
    assert site.tap().reason is Reason.CARD_REMOVED
    # a bus authenticates the card by the purchase (the PSAM checks MAC2), not by the SSSE's key:
    # a foreign SSSE key rides, a foreign purchase key is refused without any money moving
    def stranger(name: str) -> IssuerKeys:
        return IssuerKeys.from_json({**default_issuer().to_json(), "keys": {
            **default_issuer().to_json()["keys"], name: KeyEntry(bytes(range(16))).to_json()}})
    assert site.tap(issue_card(CardProfile(), stranger("ssse_iak"), seed=5)).reason is Reason.OK
    forged = issue_card(CardProfile(balance=1000), stranger("mpk"), seed=6)
    d = site.tap(forged)
    assert not d.open and forged.balance == 1000
    events = site.journal.events()
    assert [e["reason"] for e in events] == ["insufficient_balance", "card_expired", "multiple_cards",
                                             "card_removed", "ok", "card_error"]


def test_metro_entry_exit_fares(tmp_path: Path) -> None:
    site = Site(tmp_path, METRO)
    rider = card(balance=2000)
    entry = site.tap(rider)
    assert entry.open and entry.amount == 0 and rider.balance == 2000
    assert site.tap(rider).reason is Reason.ANTI_PASSBACK
    site.clock.advance(25 * 60)
    exit_cfg = {**METRO, "terminal": {**METRO["terminal"], "station": "S05", "name": "metro-S05"}}
    out = site.tap(rider, app=site.app(exit_cfg))
    assert out.open and out.amount == 400 and rider.balance == 1600  # 8.5 km
    nobody = card(balance=2000)
    site.clock.advance(60)
    no_entry = site.tap(nobody, app=site.app({**exit_cfg, "gate": {"direction": "exit"}}))
    assert no_entry.open and no_entry.reason is Reason.NO_ENTRY and no_entry.amount == 800  # maximum fare
    entry_gate = site.app({**METRO, "gate": {"direction": "entry"}})
    again = card(balance=2000)
    assert site.tap(again, app=entry_gate).open
    assert site.tap(again, app=entry_gate).reason is Reason.ANTI_PASSBACK
    site.clock.advance(5 * 3600)  # overtime: 8.5 km + surcharge
    late = site.tap(again, app=site.app(exit_cfg))
    assert late.amount == 400 + 300
    assert site.tap(card(balance=100)).reason is Reason.INSUFFICIENT_BALANCE


def _metro_record(rider: object) -> bytes:
    capp_ef = rider.fs.mf.children[1].ef_by_sfi(0x1A)  # type: ignore[attr-defined]
    return next(r for r in capp_ef.records if r[:2] == bytes.fromhex("2701"))


@pytest.mark.parametrize("on_bad_crc", ["reset", "keep"])
def test_metro_record_read_modified_written_and_a_failed_crc(tmp_path: Path, on_bad_crc: str) -> None:
    """The gate keeps 2701 in the public gate's layout with a valid CRC and writes a 0x1E record
    per passage; a 2701 whose CRC fails is no trip (the no-entry fare at the exit) and is
    written back as configured: zeroed with its header kept (``reset``), or as read (``keep``)."""
    site = Site(tmp_path, METRO)
    rider = issue_card(CardProfile(balance=2000), seed=901)  # its own seed: the others' draws stay as they were
    assert site.tap(rider).open
    entered = _metro_record(rider)
    assert capp.crc_holds(entered) and entered[14] == capp.STATUS_ENTRY and entered[122] == capp.INOUT_ENTERED
    ef = rider.fs.mf.children[1].ef_by_sfi(0x1A)  # type: ignore[attr-defined]
    number = ef.records.index(entered)
    corrupt = entered[:40] + bytes([entered[40] ^ 0xFF]) + entered[41:]
    ef.records[number] = corrupt
    site.clock.advance(20 * 60)
    exit_cfg = {**METRO, "terminal": {**METRO["terminal"], "station": "S05", "name": "metro-S05"},
                "gate": {"direction": "exit"}, "purse": {"on_bad_crc": on_bad_crc}}
    out = site.tap(rider, app=site.app(exit_cfg))
    assert out.reason is Reason.NO_ENTRY and out.amount == 800
    after = _metro_record(rider)
    assert capp.crc_holds(after) and after[14] == capp.STATUS_EXIT and after[:6] == entered[:6]
    assert (after[35:38] == bytes(3)) if on_bad_crc == "reset" else (after[35:38] == b"S01")
    trips = rider.fs.mf.children[1].ef_by_sfi(0x1E).records  # type: ignore[attr-defined]
    assert [(t[0], t[9], int.from_bytes(t[17:21], "big")) for t in trips] == [(0x04, 0x01, 800), (0x03, 0x01, 0)]


def test_museum_free_elder_adult_pays_visitor_local_price(tmp_path: Path) -> None:
    site = Site(tmp_path, MUSEUM)
    elder = card(birth_date=date(1958, 3, 2), region="341800")
    adult = card(birth_date=date(1990, 1, 1), balance=10000)
    visitor = card(birth_date=date(1988, 6, 1), region="310000", balance=10000)
    assert site.tap(elder).reason is Reason.FREE
    d = site.tap(adult)
    assert d.open and d.amount == 4000 and adult.balance == 6000
    assert site.tap(visitor).amount == 4000  # same-city treatment
    assert site.tap(adult).reason is Reason.ANTI_PASSBACK
    site.clock.advance(3600)
    assert site.tap(adult).open
    site.clock.advance(3600)
    assert site.tap(adult).reason is Reason.DAILY_LIMIT


def test_deny_listed_card_refused_and_blocked(tmp_path: Path) -> None:
    site = Site(tmp_path, BUS)
    bad = card()
    build_denylist([bad.app_serial, bytes(10)], tmp_path / "deny.bin", 7)
    site.deny = DenyList(tmp_path / "deny.bin")
    assert site.tap(bad).reason is Reason.DENY_LISTED
    assert bad.purse.state.blocked == "temporary"
    reader = HostedReader([bad])
    reader.connect()
    assert reader.transmit(select_aid(P.PURSE_AID).encode())[-2:] == b"\x6a\x81"
    assert site.tap(bad).reason is Reason.PURSE_BLOCKED


def test_validator_refuses_a_listed_card_when_the_new_list_has_a_tampered_index(tmp_path: Path) -> None:
    """Format 2 let this card through: its terminal opened a list whose index was zeroed and found nothing."""
    site = Site(tmp_path, BUS)
    bad = card()
    others = [bytes.fromhex(f"3303{i:016d}") for i in range(999)]  # 1000 entries: an 8-bit index
    path = tmp_path / "deny.bin"
    build_denylist([bad.app_serial, *others], path, 7)
    said: list[str] = []
    site.deny = CurrentDenyList(path, said.append)
    build_denylist([bad.app_serial, *others], tmp_path / "new.bin", 8)
    data = bytearray((tmp_path / "new.bin").read_bytes())
    data[64 : 64 + 4 * 256] = bytes(4 * 256)  # every bucket but the last emptied
    (tmp_path / "new.bin").write_bytes(data)
    with pytest.raises(DenyListError):
        DenyList(tmp_path / "new.bin")
    (tmp_path / "new.bin").replace(path)
    app = site.app()
    app.refresh_denylist()
    assert said[-1].startswith("deny list replacement refused") and said[-1].endswith("keeping list version 7")
    assert site.tap(bad, app=app).reason is Reason.DENY_LISTED and bad.purse.state.blocked == "temporary"
    with pytest.raises(DenyListError, match="no good deny list"):
        CurrentDenyList(path, said.append)  # a terminal starting on that file does not start


def test_torn_debit_recovered_on_retap_without_double_charge(tmp_path: Path) -> None:
    site = Site(tmp_path, BUS)
    inner = card(balance=1000)
    faulty = FaultyCard(inner).on_ins(0x54, TEAR_AFTER)
    d = site.tap(faulty)
    assert d.reason is Reason.TORN_RETRY and not d.open
    assert inner.balance == 800  # the card did debit
    faulty.reinsert()
    site.clock.advance(20)
    again = site.tap(faulty)
    assert again.open and again.reason is Reason.RECOVERED and again.amount == 200
    assert inner.balance == 800
    (rec,) = site.journal.records()
    assert rec.state == "recovered" and verify_tac(default_issuer(), rec.app_serial, rec.tac_fields(), rec.tac)  # type: ignore[arg-type]


@pytest.mark.parametrize("flow", ["pin"])
def test_pin_blocked_when_required(tmp_path: Path, flow: str) -> None:
    site = Site(tmp_path, {**MUSEUM, "gate": {**MUSEUM["gate"], "require_pin": True}})
    c = card()
    c.ssse.state.pin_tries = 0
    assert site.tap(c).reason is Reason.PIN_BLOCKED
