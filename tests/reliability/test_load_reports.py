"""Telling the load host how a load ended, when the terminal dies or the host already
knows better (terminal/wallet.py, terminal/recovery.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardlib.loadhost import LoadConfirmation
from simulators.faults import TEAR_BEFORE, FaultyCard
from simulators.host import SimulatedLoadHost
from simulators.issuer import CardProfile, issue_card
from terminal.recovery import recover_card
from terminal.wallet import TornTransactionError
from tests.reliability.terminals import make_terminal

INITIAL = 5000


class Crash(BaseException):
    """The terminal process dies here (nothing after this line runs)."""


def host_states(host: SimulatedLoadHost) -> list[str]:
    return [state for *_, state in host.ledger()]


def test_a_crash_while_telling_the_host_leaves_the_load_to_recovery(tmp_path: Path) -> None:
    """Found by the vpcd kills: a terminal that died after completing a load in its journal
    but before telling the host left the host's entry pending for good. The host is told
    first now: dying in between leaves the journal record pending, and the card's next
    tap tells the host again and recovers the record."""
    term = make_terminal(tmp_path, 0)
    host = SimulatedLoadHost()
    card = issue_card(CardProfile(balance=INITIAL), seed=9300)
    real = host.confirm_load

    def dies(confirmation: LoadConfirmation) -> None:
        real(confirmation)  # the report reached the host...
        raise Crash  # ...and the terminal died before its next line

    host.confirm_load = dies  # type: ignore[method-assign]
    with pytest.raises(Crash):
        term.tap(card).load(500, host)
    host.confirm_load = real  # type: ignore[method-assign]
    term.restart()
    (outcome,) = recover_card(term.tap(card), host=host)
    assert outcome.happened and outcome.record.state == "recovered"
    assert host_states(host) == ["completed"] and card.balance == INITIAL + 500
    term.journal.close()


def test_recovery_fails_a_load_the_host_settled_on_another_report(tmp_path: Path) -> None:
    """The host refusing a stale report (it settled that counter value from another
    terminal) does not keep the card's word out of the journal."""
    first, second = make_terminal(tmp_path, 0), make_terminal(tmp_path, 1)
    host = SimulatedLoadHost()
    card = FaultyCard(issue_card(CardProfile(balance=INITIAL), seed=9301)).on_ins(0x52, TEAR_BEFORE)
    with pytest.raises(TornTransactionError) as torn:
        first.tap(card).load(500, host)
    card.reinsert()
    second.tap(card).load(500, host)  # the same counter value, credited at the other terminal
    (outcome,) = recover_card(first.tap(card), host=host)
    assert not outcome.happened and first.journal.get(torn.value.record.id).state == "failed"
    assert host_states(host) == ["completed"]
    for term in (first, second):
        term.journal.close()
