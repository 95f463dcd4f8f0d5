"""The simulated load host: MAC1 checked, MAC2 issued, and its ledger (a real SQLite file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cardlib.errors import FormatError, MacMismatchError, RefusedError
from cardlib.loadhost import LoadConfirmation, LoadHost, LoadRequest
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from simulators.host import SimulatedLoadHost
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import SocialSecurityCard
from tests.simulators.helpers import WHEN, tx

TID = bytes.fromhex("000000000009")


def start_load(card: SocialSecurityCard, amount: int) -> LoadRequest:
    tx(card, P.select_purse()).check()
    init = P.InitializeForLoadResponse.decode(tx(card, P.InitializeForLoad(1, amount, TID).to_apdu()).check().data)
    return LoadRequest(card.app_serial, amount, TID, macs.TX_EP_LOAD, init.online_seq, init.balance, init.random,
                       init.key_version, 1, init.alg_id, init.mac1, WHEN)


def credit(card: SocialSecurityCard, host: LoadHost, req: LoadRequest) -> bytes:
    auth = host.authorize_load(req)
    tac = tx(card, P.CreditForLoad(auth.date, auth.time, auth.mac2).to_apdu()).check().data
    host.confirm_load(LoadConfirmation(req.app_serial, req.online_seq, "completed", tac))
    return tac


@pytest.mark.parametrize("alg", ["3des", "sm4"])
def test_load_through_the_host(alg: str) -> None:
    card, host = issue_card(CardProfile(algorithm=alg), seed=21), SimulatedLoadHost()
    before = card.balance
    req = start_load(card, 1500)
    tac = credit(card, host, req)
    assert card.balance == before + 1500
    assert host.ledger() == [(card.app_serial.hex().upper(), req.online_seq, 1500, "completed")]
    # the counter after the load (INITIALIZE's value + 1), as real cards take it; this test sent the
    # INITIALIZE value before, which a card keeping its last proof only refuses (9406)
    prove = P.ProveResponse.decode(tx(card, P.GetTransactionProve(2, P.prove_seq(req.online_seq)).to_apdu())
                                   .check().data)
    assert prove.tac == tac


def test_forged_mac1_is_refused_and_nothing_is_issued() -> None:
    card, host = issue_card(seed=22), SimulatedLoadHost()
    req = start_load(card, 1000)
    for forged in (dataclasses.replace(req, mac1=bytes(4)), dataclasses.replace(req, amount=100000),
                   dataclasses.replace(req, old_balance=req.old_balance + 1)):
        with pytest.raises(MacMismatchError):
            host.authorize_load(forged)
    assert host.ledger() == []


def test_request_checks() -> None:
    card, host = issue_card(seed=23), SimulatedLoadHost()
    req = start_load(card, 1000)
    with pytest.raises(FormatError, match="not a load"):
        host.authorize_load(dataclasses.replace(req, tx_type=macs.TX_EP_PURCHASE))
    with pytest.raises(FormatError, match="amount"):
        host.authorize_load(dataclasses.replace(req, amount=0))
    with pytest.raises(RefusedError, match="key index"):
        host.authorize_load(dataclasses.replace(req, key_index=7))


def test_ledger_persists_and_refuses_a_second_amount(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    card = issue_card(seed=24)
    req = start_load(card, 1000)
    first = SimulatedLoadHost(ledger_path=path)
    auth = first.authorize_load(req)
    first.close()
    host = SimulatedLoadHost(ledger_path=path)  # the host restarted: the pending MAC2 is remembered
    assert host.ledger()[0][2:] == (1000, "pending")
    # another amount for the same counter value is never authorised
    other = start_load(card, 2000)
    assert other.online_seq == req.online_seq
    with pytest.raises(RefusedError, match="pending for 1000"):
        host.authorize_load(other)
    # the same amount in a new session gets a fresh MAC2; the old one cannot credit this session
    again = start_load(card, 1000)
    auth2 = host.authorize_load(again)
    assert auth2.mac2 != auth.mac2
    assert tx(card, P.CreditForLoad(auth.date, auth.time, auth.mac2).to_apdu()).sw == 0x9302
    tx(card, P.InitializeForLoad(1, 1000, TID).to_apdu()).check()
    assert tx(card, P.CreditForLoad(auth2.date, auth2.time, auth2.mac2).to_apdu()).sw == 0x9302  # new random
    credit(card, host, start_load(card, 1000))
    with pytest.raises(RefusedError, match="already credited"):
        host.authorize_load(dataclasses.replace(req, amount=1000))


def test_confirmations_settle_once() -> None:
    card, host = issue_card(seed=25), SimulatedLoadHost()
    serial = card.app_serial
    with pytest.raises(RefusedError, match="no MAC2"):
        host.confirm_load(LoadConfirmation(serial, 0, "failed"))
    req = start_load(card, 500)
    host.authorize_load(req)
    with pytest.raises(FormatError, match="outcome"):
        host.confirm_load(LoadConfirmation(serial, req.online_seq, "maybe"))
    with pytest.raises(FormatError, match="TAC"):
        host.confirm_load(LoadConfirmation(serial, req.online_seq, "completed"))
    host.confirm_load(LoadConfirmation(serial, req.online_seq, "failed"))
    host.confirm_load(LoadConfirmation(serial, req.online_seq, "failed"))  # the same report twice
    with pytest.raises(RefusedError, match="settled as failed"):
        host.confirm_load(LoadConfirmation(serial, req.online_seq, "completed", bytes(4)))
    # a failed load frees the counter value: another amount may now be authorised
    retry = start_load(card, 800)
    credit(card, host, retry)
    assert host.ledger()[0][2:] == (800, "completed")
