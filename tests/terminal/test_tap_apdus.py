"""What a tap sends to the card, APDU by APDU, per role and card kind (issue 14).

Counted on the card's channel (the exchanges the terminal makes; the PSAM's are
apart). The issue's targets: a bus purchase on a plain T-Union card in at most
7 APDUs, on a social security card with its concession in at most 11, a free
entry at an identity gate (validity, age, authentication, deny list) in at
most 9. Each list is the one docs/performance.md ("What a tap sends") explains;
a command added to a role's flow fails here.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from cardlib.channel import Channel, Exchange
from cardlib.clock import BEIJING, Clock
from cardlib.readers.pyhost import HostedReader
from simulators.faults import TEAR_AFTER, FaultyCard
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.config import parse_config
from terminal.decision import Decision, Reason
from terminal.denylist import DenyList, build_denylist
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app

SEEDS = itertools.count(100)
BUS = {"terminal": {"role": "bus_validator", "line": "K101", "name": "bus"}, "fares": {"flat": 200},
       "concessions": [{"name": "elder free", "min_age": 65, "pay_percent": 0},
                       {"name": "elder card", "card_type": "elder", "pay_percent": 0}]}
METRO = {"terminal": {"role": "metro_gate", "station": "S01", "name": "metro"},
         "fares": {"bands": [[6, 300]], "max_fare": 800, "stations": {"S01": 0, "S05": 5}}}
METRO_EXIT = {**METRO, "terminal": {**METRO["terminal"], "station": "S05", "name": "metro-S05"}}
MUSEUM = {"terminal": {"role": "identity_gate", "name": "museum"}, "fares": {"admission": 4000},
          "gate": {"free_entry_age": 65}}

SELECT_SSSE = "00A40400"
SELECT_EF = "00A40200"
READ_EF = "00B2{:02X}04"  # READ RECORD n of the current EF
SELECT_PURSE = "00A40400"
READ_1A = "00B2{:02X}D4"
INIT_CAPP = "80500302"
INIT_EP = "80500102"
UPDATE_1A = "80DC02D0"
UPDATE_1A_METRO = "80DC01D0"
UPDATE_1E = "80DC00F0"
DEBIT = "80540100"
GET_BALANCE = "805C0002"
INTERNAL_AUTH = "00880001"


class Terminal:
    def __init__(self, tmp_path: Path, cfg: dict[str, Any], deny: DenyList | None = None) -> None:
        self.clock = Clock.fixed(datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING))
        sam = HostedReader([make_psam()])
        sam.connect()
        self.psam = PsamClient(Channel(sam), test=True)
        self.journal = Journal(tmp_path / "j.db", self.clock)
        self.app = make_app(parse_config(cfg), self.psam, self.journal, self.clock, deny)
        self.reader = HostedReader()
        self.sent: list[Exchange] = []
        self.app.trace = self  # type: ignore[assignment]  # the app's hook on the card's channel

    def header(self, atr: bytes, reader: str) -> None:
        del atr, reader

    def __call__(self, exchange: Exchange) -> None:
        self.sent.append(exchange)

    def tap(self, card: object, cfg: dict[str, Any] | None = None) -> tuple[Decision, list[str]]:
        if cfg is not None:
            app = make_app(parse_config(cfg), self.psam, self.journal, self.clock)
            app.trace = self  # type: ignore[assignment]
        else:
            app = self.app
        self.reader.remove()
        self.reader.insert(card)  # type: ignore[arg-type]
        self.sent.clear()
        decision = app.tap(self.reader)
        return decision, [e.command[:4].hex().upper() for e in self.sent]


def ssc(**kw: Any) -> object:
    return issue_card(CardProfile(**kw), seed=next(SEEDS))


def tunion(**kw: Any) -> object:
    return issue_card(CardProfile(kind="tunion", **kw), seed=next(SEEDS))


SSSE_TRANSIT = [SELECT_SSSE, SELECT_EF, READ_EF.format(2), SELECT_EF, READ_EF.format(6)]


def test_bus_purchase_on_a_plain_tunion_card_in_seven(tmp_path: Path) -> None:
    d, sent = Terminal(tmp_path, BUS).tap(tunion(balance=1000))
    assert d.open and d.amount == 200
    assert sent == [SELECT_SSSE, SELECT_PURSE, READ_1A.format(2), INIT_CAPP, UPDATE_1A, UPDATE_1E, DEBIT]
    assert len(sent) <= 7


def test_bus_purchase_on_a_social_security_card_with_its_concession_in_eleven(tmp_path: Path) -> None:
    term = Terminal(tmp_path, BUS)
    d, sent = term.tap(ssc(birth_date=date(1950, 1, 1)))
    assert d.open and d.amount == 0 and "elder free" in d.detail  # the concession, from EF06's birth date
    assert sent == [*SSSE_TRANSIT, SELECT_PURSE, READ_1A.format(2), INIT_CAPP, UPDATE_1A, UPDATE_1E, DEBIT]
    assert len(sent) <= 11
    assert INTERNAL_AUTH not in sent  # the purchase's MAC2, checked by the PSAM, authenticates the card
    d, sent = term.tap(ssc(birth_date=date(1990, 1, 1)))
    assert d.open and d.amount == 200 and len(sent) == 11


def test_an_elder_tunion_card_rides_on_its_type_from_0x15(tmp_path: Path) -> None:
    d, sent = Terminal(tmp_path, BUS).tap(tunion(card_type="elder"))
    assert d.open and d.amount == 0 and "elder card" in d.detail and len(sent) == 7


def test_metro_entry_and_exit(tmp_path: Path) -> None:
    term = Terminal(tmp_path, METRO)
    for make, ssse in ((ssc, SSSE_TRANSIT), (tunion, [SELECT_SSSE])):
        card = make(balance=1000)
        d, sent = term.tap(card)
        assert d.open and d.amount == 0
        assert sent == [*ssse, SELECT_PURSE, READ_1A.format(1), GET_BALANCE, INIT_CAPP, UPDATE_1A_METRO,
                        UPDATE_1E, DEBIT]
        term.clock.advance(20 * 60)
        d, sent = term.tap(card, METRO_EXIT)
        assert d.open and d.amount == 300
        assert sent == [*ssse, SELECT_PURSE, READ_1A.format(1), INIT_CAPP, UPDATE_1A_METRO, UPDATE_1E, DEBIT]


def test_free_entry_at_an_identity_gate_in_nine(tmp_path: Path) -> None:
    """Validity (EF05 05, 06), age (EF06 0D), authentication (EF05 01 and INTERNAL
    AUTHENTICATE, the SSSE still selected), deny list (the purse's serial in its FCI)."""
    younger = ssc(birth_date=date(1990, 1, 1), balance=5000)
    path = tmp_path / "deny.bin"
    build_denylist([bytes(10)], path, 1)
    term = Terminal(tmp_path, MUSEUM, DenyList(path))
    d, sent = term.tap(ssc(birth_date=date(1950, 1, 1)))
    assert d.open and d.reason is Reason.FREE
    assert sent == [SELECT_SSSE, SELECT_EF, READ_EF.format(1), READ_EF.format(5), READ_EF.format(6),
                    SELECT_EF, READ_EF.format(6), INTERNAL_AUTH, SELECT_PURSE]
    assert len(sent) <= 9
    # not free by age: the card type is read too, before leaving the SSSE, and the fee paid
    d, sent = term.tap(younger)
    assert d.open and d.amount == 4000
    assert sent[:10] == [SELECT_SSSE, SELECT_EF, READ_EF.format(1), READ_EF.format(5), READ_EF.format(6),
                         SELECT_EF, READ_EF.format(6), SELECT_EF, READ_EF.format(2), INTERNAL_AUTH]


def test_an_identity_gate_refuses_a_plain_tunion_card_with_its_own_reason(tmp_path: Path) -> None:
    d, sent = Terminal(tmp_path, MUSEUM).tap(tunion())
    assert not d.open and d.reason is Reason.NOT_SOCIAL_SECURITY_CARD and sent == [SELECT_SSSE]


def test_the_sfi_form_reads_without_selecting_the_efs(tmp_path: Path) -> None:
    d, sent = Terminal(tmp_path, {**BUS, "ssse": {"addressing": "sfi"}}).tap(ssc(birth_date=date(1950, 1, 1)))
    assert d.open and d.amount == 0
    assert sent[:3] == [SELECT_SSSE, "00B2022C", "00B20634"] and len(sent) == 9


def test_a_deny_listed_card_is_still_caught(tmp_path: Path) -> None:
    for make in (ssc, tunion):
        card = make()
        path = tmp_path / "deny.bin"
        build_denylist([card.app_serial], path, 1)  # type: ignore[attr-defined]
        d, _ = Terminal(tmp_path, BUS, DenyList(path)).tap(card)
        assert not d.open and d.reason is Reason.DENY_LISTED
        path.unlink()
        (tmp_path / "j.db").unlink()


@pytest.mark.parametrize("make", [ssc, tunion])
def test_validity_at_transit_terminals_is_the_purses(tmp_path: Path, make: Any) -> None:
    d, sent = Terminal(tmp_path, BUS).tap(make(valid_until=date(2025, 1, 1)))
    assert not d.open and d.reason is Reason.CARD_EXPIRED and sent[-1] == SELECT_PURSE


def test_a_torn_purchase_is_recovered_with_its_extra_apdus(tmp_path: Path) -> None:
    """With a pending record for the card, recovery reads the log, INITIALIZEs and PROVEs:
    the targets are for a tap without one."""
    term = Terminal(tmp_path, BUS)
    card = tunion(balance=1000)
    d, _ = term.tap(FaultyCard(card).on_ins(0x54, TEAR_AFTER))  # type: ignore[arg-type]
    assert d.reason is Reason.TORN_RETRY
    d, sent = term.tap(card)
    assert d.open and d.reason is Reason.RECOVERED and card.balance == 800  # type: ignore[attr-defined]
    assert sent == [SELECT_SSSE, SELECT_PURSE, "00B201C4", "00B202C4", INIT_EP, "805A0009"]
