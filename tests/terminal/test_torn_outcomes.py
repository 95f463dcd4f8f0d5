"""The four outcomes of a torn transaction (reference §5 step 3), each reached by a
real tear on the simulated card, for purchase, composite purchase and load; card
and journals agree to the fen in every case, grey records included. Also: the
old rule (the INITIALIZE value in GET TRANSACTION PROVE) against a card that
keeps its last proof only, and an error of our own after DEBIT."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cardlib.channel import Channel, Exchange
from cardlib.clock import Clock
from cardlib.keys import default_issuer, verify_tac
from cardlib.pboc import capp
from cardlib.pboc import purse as P
from cardlib.pboc.files import TRIP_ENTRY, TripRecord
from cardlib.readers.pyhost import HostedReader
from simulators.faults import TEAR_AFTER, TEAR_BEFORE, TRUNCATE, FaultyCard
from simulators.host import SimulatedLoadHost
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from simulators.ssc import SocialSecurityCard
from terminal.journal import MOVED, Journal, JournalRecord
from terminal.psam import PsamClient
from terminal.recovery import recover_card
from terminal.wallet import TornTransactionError, Wallet
from tests.terminal.conftest import Terminal

START = 2000
AMOUNTS = {"purchase": 150, "composite": 230, "load": 1000}
SIGN = {"purchase": -1, "composite": -1, "load": 1}
MONEY_INS = {"purchase": 0x54, "composite": 0x54, "load": 0x52}  # DEBIT, CREDIT


class Elsewhere:
    """Another terminal (its own PSAM, terminal number and journal) the rider taps at."""

    def __init__(self, tmp_path: Path, clock: Clock) -> None:
        sam = HostedReader([make_psam(terminal_id=bytes.fromhex("0000000000E1"), seed=9)])
        sam.connect()
        self.psam = PsamClient(Channel(sam), test=True)
        self.journal = Journal(tmp_path / "elsewhere.db", clock)
        self.clock = clock
        self.reader = HostedReader()

    def purchase(self, card: SocialSecurityCard, amount: int = 10) -> None:
        self.reader.remove()
        self.reader.insert(card)
        self.reader.connect()
        Wallet(Channel(self.reader), self.psam, self.journal, self.clock).purchase(amount)


def run(wallet: Wallet, flow: str, host: SimulatedLoadHost) -> None:
    amount = AMOUNTS[flow]
    if flow == "purchase":
        wallet.purchase(amount)
    elif flow == "composite":
        record = capp.CappRecord.blank(capp.METRO_RECORD)
        trip = TripRecord(TRIP_ENTRY, bytes(8), 1, b"S01\x00", 0, 0, wallet.clock.now())
        wallet.composite_purchase(amount, record.encode(), capp.METRO_RECORD, trip=trip)
    else:
        wallet.load(amount, host)


def moved(records: list[JournalRecord], serial: bytes) -> int:
    """The money the journal says moved on the card: completed, recovered and grey."""
    return sum((1 if r.kind == "load" else -1) * r.amount for r in records if r.app_serial == serial and r.state in MOVED)


def torn(terminal: Terminal, flow: str, fault: Callable[..., None], seed: int) -> tuple[FaultyCard, SocialSecurityCard,
                                                                                          SimulatedLoadHost]:
    host = SimulatedLoadHost()
    inner = issue_card(CardProfile(balance=START), seed=seed)
    card = FaultyCard(inner).on_ins(MONEY_INS[flow], fault)
    with pytest.raises(TornTransactionError) as info:
        run(terminal.tap(card), flow, host)
    assert terminal.journal.get(info.value.record.id).state == "pending"
    card.clear()
    card.reinsert()
    terminal.clock.advance(20)
    return card, inner, host


FLOWS = ["purchase", "composite", "load"]


@pytest.mark.parametrize("flow", FLOWS)
def test_failed_the_money_did_not_move(terminal: Terminal, flow: str) -> None:
    card, inner, host = torn(terminal, flow, TEAR_BEFORE, 5100 + FLOWS.index(flow))
    (outcome,) = recover_card(terminal.tap(card), host=host)
    assert outcome.outcome == "failed" and not outcome.happened and outcome.decided
    assert inner.balance == START == START + moved(terminal.journal.records(), inner.app_serial)


@pytest.mark.parametrize("flow", FLOWS)
def test_recovered_with_the_proof(terminal: Terminal, flow: str) -> None:
    card, inner, host = torn(terminal, flow, TEAR_AFTER, 5200 + FLOWS.index(flow))
    (outcome,) = recover_card(terminal.tap(card), host=host)
    assert outcome.outcome == "recovered" and outcome.happened and outcome.within_window
    record = outcome.record
    assert verify_tac(default_issuer(), record.app_serial, record.tac_fields(), record.tac)
    assert inner.balance == START + SIGN[flow] * AMOUNTS[flow] == START + moved(terminal.journal.records(),
                                                                               inner.app_serial)
    if flow != "load":  # the PSAM's session was still open: MAC2 checked there
        assert record.mac2_verified is True
    else:
        assert host.ledger()[0][3] == "completed"


@pytest.mark.parametrize("flow", FLOWS)
def test_a_9000_without_the_tac_is_torn_and_proven_on_the_next_tap(terminal: Terminal, flow: str) -> None:
    """DEBIT or CREDIT answered 9000 with two bytes in place of the TAC (and MAC2): the card
    did move the money, so the record stays pending until the next tap proves it."""
    card, inner, host = torn(terminal, flow, TRUNCATE(2), 5250 + FLOWS.index(flow))
    assert inner.balance == START + SIGN[flow] * AMOUNTS[flow]
    if flow == "load":
        assert [row[3] for row in host.ledger()] == ["pending"]  # told once the card's TAC is known
    (outcome,) = recover_card(terminal.tap(card), host=host)
    assert outcome.outcome == "recovered" and outcome.happened
    if flow == "load":
        assert [row[3] for row in host.ledger()] == ["completed"]
    assert verify_tac(default_issuer(), outcome.record.app_serial, outcome.record.tac_fields(), outcome.record.tac)
    assert inner.balance == START + moved(terminal.journal.records(), inner.app_serial)


@pytest.mark.parametrize("flow", FLOWS)
def test_grey_after_a_tap_elsewhere(terminal: Terminal, flow: str, tmp_path: Path) -> None:
    card, inner, host = torn(terminal, flow, TEAR_AFTER, 5300 + FLOWS.index(flow))
    other = Elsewhere(tmp_path, terminal.clock)
    other.purchase(inner, 10)  # the card's last proof is now that purchase's
    (outcome,) = recover_card(terminal.tap(card), host=host)
    record = outcome.record
    assert outcome.outcome == "grey" and outcome.happened and outcome.decided
    assert record.tac is None and record.balance_after == START + SIGN[flow] * AMOUNTS[flow]
    everything = terminal.journal.records() + other.journal.records()
    assert inner.balance == START + SIGN[flow] * AMOUNTS[flow] - 10 == START + moved(everything, inner.app_serial)
    assert any("grey" in p for p in terminal.journal.check_integrity())  # listed for the back office
    batch = terminal.path.parent / "batch.jsonl"
    with open(batch, "w", encoding="utf-8") as out:
        header = terminal.journal.export_batch(out)
    assert header.count == 0  # never in a settlement batch: it has no TAC
    if flow == "load":
        assert host.ledger()[0][3] == "grey"


@pytest.mark.parametrize("flow", FLOWS)
def test_pending_when_the_card_cannot_tell(terminal: Terminal, flow: str, tmp_path: Path) -> None:
    """Ten transactions elsewhere push the torn one out of the 0x18 log and its proof is
    gone: the card can no longer say whose the counter value was. Nothing is guessed."""
    card, inner, host = torn(terminal, flow, TEAR_AFTER, 5400 + FLOWS.index(flow))
    other = Elsewhere(tmp_path, terminal.clock)
    for _ in range(10):
        other.purchase(inner, 10)
    (outcome,) = recover_card(terminal.tap(card), host=host)
    assert outcome.outcome == "pending" and not outcome.decided
    assert terminal.journal.get(outcome.record.id).state == "pending"
    everything = terminal.journal.records() + other.journal.records()
    pending = SIGN[flow] * AMOUNTS[flow]  # the card moved it; the journal keeps it pending, not lost
    assert inner.balance == START + pending - 100 == START + moved(everything, inner.app_serial) + pending


def test_a_tear_during_the_re_tap_leaves_it_pending(terminal: Terminal) -> None:
    card, inner, host = torn(terminal, "purchase", TEAR_AFTER, 5500)
    card.on_ins(0x50, TEAR_BEFORE)  # the fresh INITIALIZE gets no answer
    with pytest.raises(Exception):  # the card left: a transport error  # noqa: B017
        recover_card(terminal.tap(card), host=host)
    assert [r.state for r in terminal.journal.records()] == ["pending"]
    card.clear()
    card.reinsert()
    (outcome,) = recover_card(terminal.tap(card), host=host)
    assert outcome.outcome == "recovered"


def test_the_old_rule_fails_against_a_last_proof_only_card(terminal: Terminal) -> None:
    """Recovery as this project did it before — GET TRANSACTION PROVE with the value
    INITIALIZE returned — gets 9406 from a card that keeps its last proof under the
    counter after it; the field's rule (value + 1) gets the proof."""
    card, inner, _ = torn(terminal, "purchase", TEAR_AFTER, 5600)
    (pending,) = terminal.journal.pending()
    wallet = terminal.tap(card)
    wallet.select()
    old = wallet.card.transmit(P.GetTransactionProve(0x06, pending.card_seq).to_apdu())
    assert old.sw == 0x9406
    new = wallet.card.transmit(P.GetTransactionProve(0x06, pending.card_seq + 1).to_apdu())
    assert new.ok
    last = inner.purse.state.last_proof
    assert last is not None and P.ProveResponse.decode(new.data).tac.hex().upper() == last["tac"]


def test_an_error_of_our_own_after_debit_leaves_the_record_pending(terminal: Terminal) -> None:
    """The trace writer fails on DEBIT's exchange (the card has paid): the record stays
    pending — before, it was failed while the card had paid — and the next tap resolves it."""
    inner = issue_card(CardProfile(balance=START), seed=5700)
    wallet = terminal.tap(inner)

    def broken_trace(exchange: Exchange) -> None:
        if exchange.command[:2] == b"\x80\x54":  # the answer to DEBIT has come: the trace cannot be written
            raise OSError(28, "No space left on device")

    wallet.card.add_observer(broken_trace)
    with pytest.raises(TornTransactionError):
        wallet.purchase(150)
    (record,) = terminal.journal.records()
    assert record.state == "pending" and inner.balance == START - 150
    (outcome,) = recover_card(terminal.tap(inner))
    assert outcome.outcome == "recovered" and outcome.record.balance_after == inner.balance


def test_the_re_tap_runs_a_fresh_initialize_of_zero_fen(terminal: Terminal) -> None:
    """The decision's commands on the wire: 80 50 01 02 0B keyIdx 00000000 terminal, then
    80 5A 00 06 02 <seq + 1> 08 (field code: ZJBCardManager.java, sh_transport_operation.c)."""
    card, _, host = torn(terminal, "purchase", TEAR_AFTER, 5800)
    (pending,) = terminal.journal.pending()
    wallet = terminal.tap(card)
    sent: list[bytes] = []
    wallet.card.add_observer(lambda exchange: sent.append(exchange.command))
    recover_card(wallet, host=host)
    tid = terminal.psam.terminal_id
    assert bytes.fromhex("805001020B01") + bytes(4) + tid + b"\x0f" in sent
    assert bytes.fromhex("805A000602") + (pending.card_seq + 1).to_bytes(2, "big") + b"\x08" in sent


def test_composite_prove_p2_is_configurable(terminal: Terminal) -> None:
    card, inner, host = torn(terminal, "composite", TEAR_AFTER, 5900)
    wallet = terminal.tap(card)
    wallet.composite_prove_p2 = 0x06  # as one public client sends it
    (outcome,) = recover_card(wallet, host=host)
    assert outcome.outcome == "recovered"
