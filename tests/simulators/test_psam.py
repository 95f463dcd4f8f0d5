"""The simulated PSAM: its files, MAC1 from the issuer's masters, MAC2 checks, the generic
80 1A / 80 FA commands, and its card image."""

from __future__ import annotations

import dataclasses

import pytest

from cardlib.apdu import CommandAPDU
from cardlib.crypto import Algorithm, encrypt_block, line_mac
from cardlib.errors import FormatError
from cardlib.iso import read_binary, select_aid
from cardlib.keys import card_factor, default_issuer, derive_card_keys, ssse_factor
from cardlib.pboc import macs
from cardlib.pboc import psam as W
from cardlib.pboc.files import PsamAppData
from simulators.image import card_from_json, card_to_json
from simulators.psam import PsamCard, make_psam
from tests.simulators.helpers import tx

H = bytes.fromhex
SERIAL = H("00005170010170907984")
CARD_ID = H("330300D1560000050000000000001234")
DATE, TIME = H("20261128"), H("081500")


def selected(sam: PsamCard) -> PsamCard:
    tx(sam, W.select_psam_app()).check()
    return sam


def init_purchase(sam: PsamCard, amount: int = 250, alg: Algorithm = Algorithm.TDES, seq: int = 3) -> W.InitSamResponse:
    issuer = default_issuer()
    req = W.InitSamForPurchase(H("11223344"), seq, amount, macs.TX_EP_PURCHASE, DATE, TIME, issuer.mpk.version,
                               alg.alg_id, W.purchase_factors(issuer.issuer_id, SERIAL))
    return W.InitSamResponse.decode(tx(sam, req.to_apdu()).check().data)


def test_files() -> None:
    sam = make_psam(terminal_id=H("000000000042"))
    assert tx(sam, W.read_terminal_number()).check().data == H("000000000042")
    app = PsamAppData.decode(tx(selected(sam), W.read_app_data()).check().data)
    assert app.issuer_id == default_issuer().issuer_id and app.key_index == 1
    assert tx(sam, CommandAPDU(0x00, 0xD6, 0x96, 0x00, bytes(6))).sw != 0x9000  # the terminal number is read-only
    assert sam.test  # the built-in issuer is marked TEST ONLY


@pytest.mark.parametrize("alg", [Algorithm.TDES, Algorithm.SM4])
def test_mac1_from_the_masters_and_mac2_check(alg: Algorithm) -> None:
    sam = selected(make_psam())
    dpk = derive_card_keys(default_issuer(), SERIAL, CARD_ID, alg).dpk.key
    first = init_purchase(sam, alg=alg)
    sespk = macs.purchase_session_key(dpk, H("11223344"), 3, first.terminal_seq, alg)
    assert first.mac1 == macs.purchase_mac1(sespk, 250, macs.TX_EP_PURCHASE, H("000000000001"), DATE, TIME, alg)
    mac2 = macs.purchase_mac2(sespk, 250, alg)
    assert tx(sam, W.credit_sam_for_purchase(bytes(4))).sw == 0x9302
    assert tx(sam, W.credit_sam_for_purchase(mac2)).sw == 0x9000
    assert tx(sam, W.credit_sam_for_purchase(mac2)).sw == 0x6985  # the session is closed once verified
    second = init_purchase(sam, alg=alg)
    assert second.terminal_seq == first.terminal_seq + 1  # one per 8070


def test_mac2_only_for_the_open_session() -> None:
    sam = selected(make_psam())
    assert tx(sam, W.credit_sam_for_purchase(bytes(4))).sw == 0x6985
    first = init_purchase(sam, amount=100)
    dpk = derive_card_keys(default_issuer(), SERIAL, CARD_ID).dpk.key
    old_mac2 = macs.purchase_mac2(
        macs.purchase_session_key(dpk, H("11223344"), 3, first.terminal_seq, Algorithm.TDES), 100, Algorithm.TDES)
    init_purchase(sam, amount=100)  # another 8070 replaces the session
    assert tx(sam, W.credit_sam_for_purchase(old_mac2)).sw == 0x9302


def test_init_sam_refusals_leave_the_counter() -> None:
    sam = selected(make_psam())
    issuer = default_issuer()
    good = W.InitSamForPurchase(H("11223344"), 0, 1, 6, DATE, TIME, issuer.mpk.version, 0,
                                W.purchase_factors(issuer.issuer_id, SERIAL))
    bad = [
        dataclasses.replace(good, factors=good.factors[:1]),
        dataclasses.replace(good, tx_type=macs.TX_EP_LOAD),
        dataclasses.replace(good, key_version=good.key_version + 1),
        dataclasses.replace(good, alg_id=0x07),
    ]
    for req in bad:
        assert tx(sam, req.to_apdu()).sw in (0x6A80, 0x6A88)
    assert sam.state.terminal_seq == 0
    assert tx(sam, CommandAPDU(0x80, 0x70, 0, 0, bytes(5), 8)).sw == 0x6700


def test_session_keys_for_the_other_usages() -> None:
    sam = selected(make_psam())
    keys = derive_card_keys(default_issuer(), SERIAL, CARD_ID)
    iv, header = H("A1B2C3D400000000"), H("841E000004")
    tx(sam, W.InitDescrypt(W.USAGE_MAINTENANCE, 1, (card_factor(SERIAL),)).to_apdu()).check()
    assert tx(sam, W.mac_data(iv, header)).check().data == line_mac(keys.damk.key, header, iv)
    tx(sam, W.InitDescrypt(W.USAGE_SSSE_INTERNAL, 1, (ssse_factor(CARD_ID),)).to_apdu()).check()
    assert tx(sam, W.encrypt_data(H("0102030405060708"))).check().data == encrypt_block(keys.cak.key, H("0102030405060708"))
    tx(sam, W.InitDescrypt(W.USAGE_SSSE_EXTERNAL, 1, (ssse_factor(CARD_ID),)).to_apdu()).check()
    assert tx(sam, W.encrypt_data(bytes(8))).check().data == encrypt_block(keys.eak.key, bytes(8))
    tx(sam, W.InitDescrypt(W.USAGE_PURCHASE, 1, W.purchase_factors(default_issuer().issuer_id, SERIAL)).to_apdu()).check()
    assert tx(sam, W.encrypt_data(bytes(8))).check().data == encrypt_block(keys.dpk.key, bytes(8))


def test_generic_command_refusals() -> None:
    sam = selected(make_psam())
    assert tx(sam, W.encrypt_data(bytes(8))).sw == 0x6985  # no session key yet
    assert tx(sam, W.InitDescrypt(0x31, 1, (bytes(8),)).to_apdu()).sw == 0x6A88  # unknown usage
    assert tx(sam, W.InitDescrypt(W.USAGE_MAINTENANCE, 9, (bytes(8),)).to_apdu()).sw == 0x9403
    assert tx(sam, W.InitDescrypt(W.USAGE_PURCHASE, 1, (bytes(8),)).to_apdu()).sw == 0x6A80  # 0x42 means 2 levels
    tx(sam, W.InitDescrypt(W.USAGE_MAINTENANCE, 1, (bytes(8),)).to_apdu()).check()
    assert tx(sam, W.encrypt_data(bytes(7))).sw == 0x6700
    assert tx(sam, CommandAPDU(0x80, 0xFA, 0x07, 0x00, bytes(8), 8)).sw == 0x6A86
    assert tx(sam, CommandAPDU(0x80, 0x99, 0, 0)).sw == 0x6D00


def test_image_round_trip_keeps_the_counter() -> None:
    sam = selected(make_psam(terminal_id=H("000000000077"), seed=4))
    init_purchase(sam)
    image = card_to_json(sam)
    assert image["kind"] == "psam"
    again = card_from_json(image)
    assert isinstance(again, PsamCard)
    assert again.state.terminal_seq == 1 and again.state.terminal_id == H("000000000077")
    assert tx(again, read_binary(0, 6, sfi=0x16)).check().data == H("000000000077")  # at power-up, from the MF
    tx(again, select_aid(W.PSAM_AID, fci=False)).check()
    assert init_purchase(again).terminal_seq == 1


def test_make_psam_refuses_a_bad_terminal_number() -> None:
    with pytest.raises(FormatError, match="6 bytes"):
        make_psam(terminal_id=bytes(5))


def test_purchase_keys_kept_for_many_cards_give_the_same_mac1(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulators.psam as S

    monkeypatch.setattr(S, "DERIVED_KEYS_KEPT", 2)
    issuer = default_issuer()
    sam = selected(make_psam())
    for serial in [SERIAL, H("00005170010170907985"), H("00005170010170907986"), SERIAL] * 2:
        for alg in Algorithm:
            seq = sam.state.terminal_seq
            req = W.InitSamForPurchase(H("11223344"), 3, 250, macs.TX_EP_PURCHASE, DATE, TIME, issuer.mpk.version,
                                       alg.alg_id, W.purchase_factors(issuer.issuer_id, serial))
            got = W.InitSamResponse.decode(tx(sam, req.to_apdu()).check().data)
            dpk = derive_card_keys(issuer, serial, CARD_ID, alg).dpk.key
            sespk = macs.purchase_session_key(dpk, H("11223344"), 3, seq, alg)
            assert got.mac1 == macs.purchase_mac1(sespk, 250, macs.TX_EP_PURCHASE, S.DEFAULT_TERMINAL, DATE, TIME, alg)
            assert len(sam.app._derived) <= 2
