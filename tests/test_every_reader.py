"""One suite, every reader: the application flows on the in-process sim field, on
pcscd + vpcd + our bridge, and on a PN532 emulator behind a pseudo-terminal —
each on a social security card and on a plain T-Union card (the purse alone)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.keys import default_issuer, verify_tac
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import open_reader
from simulators.faults import TEAR_AFTER, FaultyCard
from simulators.field import Field, open_field, wait_for
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal import auth
from terminal.config import parse_config
from terminal.decision import Reason
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app
from tests.pcsc_support import pcscd  # noqa: F401

SEEDS = itertools.count(500)


@pytest.fixture(params=["ssc", "tunion"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sim", "pcsc", "pn532"])
def field(request: pytest.FixtureRequest) -> Iterator[Field]:
    if request.param == "pcsc":
        request.getfixturevalue("pcscd")
    f = open_field(request.param)
    yield f
    f.close()


def terminal(tmp_path: Path, cfg: dict[str, Any]) -> Any:
    clock = Clock.fixed(datetime(2026, 11, 28, 9, 0, tzinfo=BEIJING))
    sam = HostedReader([make_psam()])
    sam.connect()
    journal = Journal(tmp_path / "j.db", clock)
    return make_app(parse_config(cfg), PsamClient(Channel(sam), test=True), journal, clock)


BUS = {"terminal": {"role": "bus_validator", "name": "bus", "line": "K1"}, "fares": {"flat": 200}}
METRO = {"terminal": {"role": "metro_gate", "name": "gate", "station": "S01"},
         "fares": {"bands": [[6, 300], [12, 400]], "max_fare": 800, "stations": {"S01": 0, "S05": 8.5}}}


def test_card_info(field: Field) -> None:
    card = issue_card(CardProfile(name="沈明", birth_date=date(1965, 5, 23)), seed=next(SEEDS))
    field.insert(card)
    field.reader.connect()
    info = auth.read_card(Channel(field.reader))
    assert info.holder.name == "沈明" and info.holder.birth_date == date(1965, 5, 23)


def test_purchase_at_a_bus(field: Field, kind: str, tmp_path: Path) -> None:
    app = terminal(tmp_path, BUS)
    card = issue_card(CardProfile(balance=1000, kind=kind), seed=next(SEEDS))
    field.insert(card)
    d = app.tap(field.reader)
    assert d.open and d.amount == 200 and card.balance == 800
    rec = app.journal.get(d.journal_id)
    assert verify_tac(default_issuer(), rec.app_serial, rec.tac_fields(), rec.tac)


def test_composite_purchase_at_a_metro_gate(field: Field, kind: str, tmp_path: Path) -> None:
    app = terminal(tmp_path, METRO)
    card = issue_card(CardProfile(balance=1000, kind=kind), seed=next(SEEDS))
    field.insert(card)
    assert app.tap(field.reader).amount == 0
    app.clock.advance(1200)
    exit_app = make_app(parse_config({**METRO, "terminal": {**METRO["terminal"], "station": "S05"}}),
                        app.psam, app.journal, app.clock)
    d = exit_app.tap(field.reader)
    assert d.open and d.amount == 400 and card.balance == 600


def test_torn_transaction_recovered(field: Field, kind: str, tmp_path: Path) -> None:
    app = terminal(tmp_path, BUS)
    inner = issue_card(CardProfile(balance=1000, kind=kind), seed=next(SEEDS))
    card = FaultyCard(inner).on_ins(0x54, TEAR_AFTER)
    field.insert(card)
    torn = app.tap(field.reader)
    assert torn.reason is Reason.TORN_RETRY and inner.balance == 800
    field.remove(card)
    card.reinsert()
    app.clock.advance(20)
    field.insert(card)
    again = app.tap(field.reader)
    assert again.reason is Reason.RECOVERED and again.amount == 200 and inner.balance == 800
    (rec,) = app.journal.records()
    assert rec.state == "recovered" and verify_tac(default_issuer(), rec.app_serial, rec.tac_fields(), rec.tac)


def test_an_identity_gate_refuses_a_plain_tunion_card(field: Field, tmp_path: Path) -> None:
    app = terminal(tmp_path, {"terminal": {"role": "identity_gate", "name": "museum"}, "gate": {"free_entry_age": 65}})
    card = issue_card(CardProfile(kind="tunion"), seed=next(SEEDS))
    field.insert(card)
    d = app.tap(field.reader)
    assert not d.open and d.reason is Reason.NOT_SOCIAL_SECURITY_CARD


@pytest.mark.parametrize("field", ["sim", "pn532"], indirect=True)
def test_two_cards_refused(field: Field, tmp_path: Path) -> None:
    # PC/SC readers resolve anticollision themselves and present one card: not applicable there
    app = terminal(tmp_path, BUS)
    a, b = issue_card(seed=next(SEEDS)), issue_card(seed=next(SEEDS))
    field.insert(a)
    field.insert(b)
    d = app.tap(field.reader)
    assert d.reason is Reason.MULTIPLE_CARDS and a.balance == b.balance == 5000


def test_terminal_loop_survives_a_pcscd_restart(pcscd: Any, tmp_path: Path) -> None:  # noqa: F811
    """The bus validator's loop keeps serving taps across a pcscd restart; no money lost."""
    import threading

    from simulators.vpcd import VpcdBridge
    from terminal.loop import run_loop

    if not pcscd.owned:
        pytest.skip("pcscd was already running: only a pcscd this session started may be restarted")
    app = terminal(tmp_path, BUS)
    card = issue_card(CardProfile(balance=1000), seed=next(SEEDS))
    reader = open_reader("pcsc:Virtual PCD 00 00")
    decisions: list[Any] = []
    stop = threading.Event()
    loop = threading.Thread(target=run_loop, args=(app, reader, decisions.append, stop), kwargs={"poll": 0.1},
                            daemon=True)
    loop.start()
    bridge = VpcdBridge(card).start()
    try:
        assert wait_for(lambda: len(decisions) >= 1, 15)
        assert decisions[0].open and card.balance == 800
        bridge.remove()
        pcscd.restart()  # the service goes away under the running loop and comes back
        app.clock.advance(120)
        bridge.insert()
        assert wait_for(lambda: len(decisions) >= 2, 20)
        assert decisions[1].open and card.balance == 600
    finally:
        stop.set()
        loop.join(5)
        bridge.stop()
        wait_for(lambda: not reader.is_card_present(), 5)  # pcscd has seen the card go
        reader.close()
    assert [r.state for r in app.journal.records()] == ["completed", "completed"]
