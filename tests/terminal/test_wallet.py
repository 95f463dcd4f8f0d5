"""The wallet end to end on in-process cards, TACs verified independently from the
issuer's keys; tears at every APDU of load, purchase and composite purchase."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardlib.channel import Channel
from cardlib.errors import FormatError, MacMismatchError, StatusError
from cardlib.keys import default_issuer, verify_tac
from cardlib.pboc.files import capp_record
from cardlib.readers.pyhost import HostedReader
from simulators.faults import TEAR_AFTER, TEAR_BEFORE, TRUNCATE, FaultyCard
from simulators.host import SimulatedLoadHost
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.psam import PsamClient
from terminal.recovery import recover_card
from terminal.wallet import TornTransactionError
from tests.terminal.conftest import Terminal


def tac_ok(record: object) -> bool:
    return verify_tac(default_issuer(), record.app_serial, record.tac_fields(), record.tac)  # type: ignore[attr-defined]


def test_purchase_and_history(terminal: Terminal) -> None:
    card = issue_card(CardProfile(balance=1000), seed=1)
    wallet = terminal.tap(card)
    assert wallet.balance() == 1000
    result = wallet.purchase(200)
    assert (result.balance_before, result.balance_after, result.card_seq, result.terminal_seq) == (1000, 800, 0, 0)
    assert card.balance == 800 and wallet.balance() == 800
    record = terminal.journal.get(result.journal_id)
    assert record.state == "completed" and record.mac2_verified is True and record.test
    assert tac_ok(record)
    assert wallet.history()[0].amount == 200


def test_composite_zero_fen_entry_then_exit(terminal: Terminal) -> None:
    card = issue_card(CardProfile(balance=1000), seed=2)
    wallet = terminal.tap(card)
    entry = wallet.composite_purchase(0, capp_record(0x2702, b"IN:0101"))
    assert entry.amount == 0 and entry.tx_type == 9 and card.balance == 1000
    terminal.clock.advance(1800)
    exit_ = terminal.tap(card).composite_purchase(400, capp_record(0x2702, b"OUT:0107"))
    assert exit_.card_seq == entry.card_seq + 1 and card.balance == 600
    assert all(tac_ok(r) for r in terminal.journal.records())


def test_load_through_the_host(terminal: Terminal) -> None:
    card = issue_card(CardProfile(balance=100), seed=3)
    host = SimulatedLoadHost()
    result = terminal.tap(card).load(5000, host)
    assert card.balance == 5100 and result.balance_after == 5100
    assert tac_ok(terminal.journal.get(result.journal_id))
    assert host.ledger()[0][3] == "completed"


def test_refusals(terminal: Terminal) -> None:
    card = issue_card(CardProfile(balance=100), seed=4)
    wallet = terminal.tap(card)
    with pytest.raises(StatusError) as info:
        wallet.purchase(500)
    assert info.value.sw == 0x9401
    assert terminal.journal.records() == []  # nothing pending before a DEBIT


def test_forged_mac2_flagged(terminal: Terminal) -> None:
    card = issue_card(seed=5)
    wallet = terminal.tap(card)
    real = terminal.psam.verify_mac2

    def forged(mac2: bytes) -> None:
        real(bytes(b ^ 0xFF for b in mac2))

    terminal.psam.verify_mac2 = forged  # type: ignore[method-assign]
    with pytest.raises(MacMismatchError):
        wallet.purchase(100)
    rec = terminal.journal.records()[0]
    assert rec.state == "completed" and rec.mac2_verified is False and tac_ok(rec)


SEEDS = itertools.count(1000)
FLOWS = ["purchase", "composite", "composite0", "load"]


def run_flow(terminal: Terminal, card: object, flow: str, host: SimulatedLoadHost) -> None:
    wallet = terminal.tap(card)
    if flow == "purchase":
        wallet.purchase(150)
    elif flow == "composite":
        wallet.composite_purchase(230, capp_record(0x2702, b"OUT"))
    elif flow == "composite0":
        wallet.composite_purchase(0, capp_record(0x2702, b"IN"))
    else:
        wallet.load(1000, host)


def expected_delta(flow: str) -> int:
    return {"purchase": -150, "composite": -230, "composite0": 0, "load": 1000}[flow]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(flow=st.sampled_from(FLOWS), position=st.integers(1, 8), before=st.booleans(),
       restart=st.booleans(), other=st.booleans(), late=st.booleans())
def test_tear_anywhere_then_recover(terminal: Terminal, flow: str, position: int, before: bool,
                                    restart: bool, other: bool, late: bool) -> None:
    host = SimulatedLoadHost()
    inner = issue_card(CardProfile(balance=2000), seed=next(SEEDS))  # a new card each example
    card = FaultyCard(inner).at(position, TEAR_BEFORE if before else TEAR_AFTER)
    start = inner.balance
    journal_before = len(terminal.journal.records())
    try:
        run_flow(terminal, card, flow, host)
        torn = False
    except TornTransactionError:
        torn = True
    except Exception:  # a tear before DEBIT aborts the flow
        torn = False
    if other:  # another card passes meanwhile
        terminal.tap(issue_card(seed=999)).purchase(1)
    if restart:
        terminal.restart()
    if late:
        terminal.clock.advance(timedelta(minutes=5))
    card.clear()
    card.reinsert()
    outcomes = recover_card(terminal.tap(card), host=host)
    # every pending record of this card is resolved
    mine = [r for r in terminal.journal.records(app_serial=inner.app_serial)]
    assert all(r.state != "pending" for r in mine)
    settled = [r for r in mine if r.state in ("completed", "recovered")]
    assert len(settled) <= 1
    delta = sum(expected_delta(flow) for _ in settled)
    assert inner.balance == start + delta  # card and journal agree to the fen
    for r in settled:
        assert tac_ok(r)
    if torn:
        assert len(outcomes) == 1 and outcomes[0].within_window == (not late)
    assert len(terminal.journal.records()) >= journal_before


@pytest.mark.parametrize(("flow", "debit_at"), [("purchase", 3), ("composite", 4), ("composite0", 4), ("load", 3)])
@pytest.mark.parametrize("before", [True, False])
def test_torn_at_the_debit(terminal: Terminal, flow: str, debit_at: int, before: bool) -> None:
    host = SimulatedLoadHost()
    inner = issue_card(CardProfile(balance=2000), seed=next(SEEDS))
    card = FaultyCard(inner).at(debit_at, TEAR_BEFORE if before else TEAR_AFTER)
    with pytest.raises(TornTransactionError) as info:
        run_flow(terminal, card, flow, host)
    assert terminal.journal.get(info.value.record.id).state == "pending"
    card.reinsert()
    terminal.clock.advance(30)
    (outcome,) = recover_card(terminal.tap(card), host=host)
    assert outcome.within_window and outcome.happened == (not before)
    assert outcome.record.state == ("failed" if before else "recovered")
    assert inner.balance == 2000 + (0 if before else expected_delta(flow))
    if not before:
        assert tac_ok(outcome.record)
        if flow != "load":  # the PSAM's session was still open: MAC2 checked there
            assert outcome.record.mac2_verified is True
    assert recover_card(terminal.tap(card), host=host) == []  # nothing twice


def test_a_psam_whose_terminal_number_is_not_6_bytes_is_refused_at_open() -> None:
    """Every MAC1, TAC and journal line carries the PSAM's 0x16: a short one is a typed error
    when the PSAM is opened, not a failure at the first purchase."""
    sam = FaultyCard(make_psam()).on_ins(0xB0, TRUNCATE(5))  # the first READ BINARY reads 0x16
    reader = HostedReader([sam])
    reader.connect()
    with pytest.raises(FormatError, match="PSAM file 0x16: expected 6 bytes, got 5"):
        PsamClient(Channel(reader), test=True)
