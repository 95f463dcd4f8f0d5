"""The simulated purse: reference vectors through the card, a purchase driven APDU by APDU,
every refusal with its SW and the card unchanged, random APDU streams."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU
from cardlib.crypto import Algorithm
from cardlib.iso import get_challenge, read_record, select_aid
from cardlib.keys import CardKeys, KeyEntry, default_issuer, derive_card_keys, verify_tac
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from cardlib.pboc.files import TransactionRecord
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from simulators.purse import PurseState
from simulators.ssc import SocialSecurityCard, SsseState
from tests.simulators.helpers import WHEN, FixedRandom, purchase, tx

H = bytes.fromhex
VEC_KEY = H("11223344556677888877665544332211")
VEC_DTK = H("479E71BEFF107A76138D34F84B2031FF")
TERM = H("001122334455")


def vector_card(alg: Algorithm, balance: int = 0x10000) -> SocialSecurityCard:
    k = KeyEntry(VEC_KEY, 1, 1, alg)
    keys = CardKeys(k, k, KeyEntry(VEC_DTK, 1, 1, alg), k, k, k)
    card = SocialSecurityCard(keys, PurseState(balance, keys), SsseState("123456", "654321"), FixedRandom(H("11223344")))
    tx(card, select_aid(P.PURSE_AID)).check()
    return card


@pytest.mark.parametrize(("alg", "date", "time", "mac2", "tac"), [
    (Algorithm.TDES, "20111221", "214822", "56988A13", "926FF1B6"),
    (Algorithm.SM4, "20120229", "135100", "1553DDE1", "B0EE23A1"),
])
def test_purchase_vectors_through_the_card(alg: Algorithm, date: str, time: str, mac2: str, tac: str) -> None:
    card = vector_card(alg)
    init = P.InitializeForPurchaseResponse.decode(tx(card, P.InitializeForPurchase(1, 0x1000, TERM).to_apdu()).check().data)
    assert (init.random, init.offline_seq, init.alg_id) == (H("11223344"), 0, alg.alg_id)
    sespk = macs.purchase_session_key(VEC_KEY, init.random, 0, 1, alg)
    mac1 = macs.purchase_mac1(sespk, 0x1000, 6, TERM, H(date), H(time), alg)
    resp = P.DebitResponse.decode(tx(card, P.DebitForPurchase(1, H(date), H(time), mac1).to_apdu()).check().data)
    assert resp.mac2 == H(mac2) and resp.tac == H(tac)


def test_3des_purchase_mac1_vector_accepted() -> None:
    card = vector_card(Algorithm.TDES)
    tx(card, P.InitializeForPurchase(1, 0x1000, TERM).to_apdu()).check()
    debit = P.DebitForPurchase(1, H("20120229"), H("135100"), H("F15CAB75")).to_apdu()
    assert tx(card, debit).data[4:] == H("56988A13")


def test_load_vectors_through_the_card() -> None:
    card = vector_card(Algorithm.TDES, balance=0x1000)
    init = P.InitializeForLoadResponse.decode(tx(card, P.InitializeForLoad(1, 0x1000, TERM).to_apdu()).check().data)
    seslk = macs.load_session_key(VEC_KEY, init.random, init.online_seq, Algorithm.TDES)
    assert seslk == H("9B1D924E05595603")
    assert init.mac1 == macs.load_mac1(seslk, 0x1000, 0x1000, 2, TERM, Algorithm.TDES)
    mac2 = macs.load_mac2(seslk, 0x1000, 2, TERM, H("20111221"), H("214822"), Algorithm.TDES)
    tac = tx(card, P.CreditForLoad(H("20111221"), H("214822"), mac2).to_apdu()).check().data
    assert tac == H("78644D7B")
    assert card.balance == 0x2000
    assert tx(card, P.GetTransactionProve(2, 0).to_apdu()).check().data == mac2 + tac


def test_purchase_from_terminal_bytes_with_psam() -> None:
    card, sam = issue_card(seed=5), make_psam()
    init, sam_r, debit, public = purchase(card, sam, 250)
    d, t = macs.bcd_datetime(WHEN)
    fields = macs.TacFields(6, 250, sam.state.terminal_id, d, t, sam_r.terminal_seq)
    assert verify_tac(default_issuer(), public.app_serial, fields, debit.tac)
    assert card.balance == init.balance - 250
    rec = TransactionRecord.decode(tx(card, read_record(1, sfi=0x18, le=23)).check().data)
    assert (rec.seq, rec.amount, rec.tx_type, rec.terminal_id, rec.time) == (init.offline_seq, 250, 6, sam.state.terminal_id, WHEN)
    prove = P.ProveResponse.decode(tx(card, P.GetTransactionProve(6, init.offline_seq).to_apdu()).check().data)
    assert (prove.mac, prove.tac) == (debit.mac2, debit.tac)


def test_composite_purchase_zero_fen_entry_updates_cache() -> None:
    card, sam = issue_card(seed=6), make_psam()
    record = H("2702") + b"ENTRY-STATION-0101"
    init, _, _, _ = purchase(card, sam, 0, capp_record=record)
    assert card.balance == init.balance
    assert card.purse.state.offline_seq == init.offline_seq + 1  # the counter moves, not the balance
    cache = tx(card, CommandAPDU(0x00, 0xB2, 0x27, (0x1A << 3), le=256))
    assert cache.ok and cache.data.startswith(record)


@pytest.mark.parametrize("alg", ["3des", "sm4"])
def test_sm4_and_3des_cards_with_the_psam(alg: str) -> None:
    card, sam = issue_card(CardProfile(algorithm=alg), seed=7), make_psam()
    init, _, _, _ = purchase(card, sam, 100)
    assert init.alg_id == Algorithm.parse(alg).alg_id
    assert card.balance == 4900


def snapshot(card: SocialSecurityCard) -> tuple[object, ...]:
    return (copy.deepcopy(card.purse.state.to_json()), card.fs.files_to_json())


def test_refusals_leave_the_card_unchanged() -> None:
    card = issue_card(seed=8)
    tid = H("000000000001")
    tx(card, select_aid(P.PURSE_AID)).check()
    before = snapshot(card)
    assert tx(card, P.InitializeForPurchase(1, 999999, tid).to_apdu()).sw == 0x9401
    assert tx(card, P.InitializeForPurchase(2, 1, tid).to_apdu()).sw == 0x9403
    assert tx(card, P.DebitForPurchase(1, H("20261128"), H("081500"), bytes(4)).to_apdu()).sw == 0x6985
    tx(card, P.InitializeForPurchase(1, 100, tid).to_apdu()).check()
    assert tx(card, P.DebitForPurchase(1, H("20261128"), H("081500"), bytes(4)).to_apdu()).sw == 0x9302
    assert tx(card, P.DebitForPurchase(1, H("20261128"), H("081500"), bytes(4)).to_apdu()).sw == 0x6985
    assert tx(card, P.UpdateCappDataCache(0x2702, H("2702")).to_apdu()).sw == 0x6985
    tx(card, P.InitializeForLoad(1, 100, tid).to_apdu()).check()
    assert tx(card, P.CreditForLoad(H("20261128"), H("081500"), bytes(4)).to_apdu()).sw == 0x9302
    assert tx(card, P.GetTransactionProve(6, 0).to_apdu()).sw == 0x6A83
    assert tx(card, P.ApplicationBlock(False, bytes(4)).to_apdu()).sw == 0x6988
    assert snapshot(card) == before


def test_counter_at_maximum() -> None:
    card = issue_card(seed=9)
    card.purse.state.offline_seq = 0xFFFF
    tx(card, select_aid(P.PURSE_AID)).check()
    assert tx(card, P.InitializeForPurchase(1, 1, H("000000000001")).to_apdu()).sw == 0x9402


def test_application_block_through_the_sam() -> None:
    from cardlib.crypto import line_mac

    card = issue_card(seed=10)
    keys = derive_card_keys(default_issuer(), card.app_serial, bytes(16))
    tx(card, select_aid(P.PURSE_AID)).check()
    challenge = tx(card, get_challenge(4)).check().data
    block = P.ApplicationBlock(False)
    mac = line_mac(keys.damk.key, block.mac_input(), challenge + bytes(4))
    assert tx(card, P.ApplicationBlock(False, mac).to_apdu()).ok
    assert tx(card, select_aid(P.PURSE_AID)).sw == 0x6A81
    assert tx(card, P.GetBalance().to_apdu()).sw == 0x6A81
    challenge = tx(card, get_challenge(4)).check().data
    unblock = P.ApplicationUnblock()
    mac = line_mac(keys.damk.key, unblock.mac_input(), challenge + bytes(4))
    assert tx(card, P.ApplicationUnblock(mac).to_apdu()).ok
    assert tx(card, select_aid(P.PURSE_AID)).ok


apdus = st.one_of(
    st.binary(min_size=0, max_size=40),
    st.builds(lambda cla, ins, p1, p2, data: bytes((cla, ins, p1, p2, len(data))) + data,
              st.sampled_from([0x00, 0x80, 0x84, 0x04]), st.sampled_from([0x50, 0x52, 0x54, 0x5A, 0x5C, 0xDC, 0x1E, 0x18, 0xA4, 0xB0, 0xB2, 0x20, 0x84, 0x88, 0x82, 0xD6]),
              st.integers(0, 255), st.integers(0, 255), st.binary(min_size=1, max_size=20)),
)


@settings(max_examples=60)
@given(st.lists(apdus, max_size=25))
def test_random_apdu_streams_never_crash_nor_move_money(stream: list[bytes]) -> None:
    card = issue_card(seed=11)
    tx(card, select_aid(P.PURSE_AID)).check()
    balance = card.balance
    for raw in stream:
        answer = card.process(raw)
        assert len(answer) >= 2
    assert card.balance == balance


def test_fresh_cards_differ_by_seed_only() -> None:
    a, b, c = issue_card(seed=1), issue_card(seed=1), issue_card(seed=2)
    assert a.fs.files_to_json() == b.fs.files_to_json()
    assert a.app_serial != c.app_serial
    assert random.Random(1).random() == random.Random(1).random()
