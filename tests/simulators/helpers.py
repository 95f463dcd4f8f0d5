"""Shared helpers for simulator tests: drive cards APDU by APDU from terminal-side bytes."""

from __future__ import annotations

import random
from datetime import datetime

from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.atr import speaks_t0
from cardlib.channel import Channel
from cardlib.clock import BEIJING
from cardlib.iso import read_binary, select_aid
from cardlib.keys import default_issuer, purse_factors
from cardlib.pboc import macs
from cardlib.pboc import psam as W
from cardlib.pboc import purse as P
from cardlib.pboc.files import PublicData
from cardlib.readers.base import Card, Disposition, Reader

WHEN = datetime(2026, 11, 28, 8, 15, 0, tzinfo=BEIJING)


class FixedRandom(random.Random):
    """Random bytes from a given sequence (to reproduce published vectors)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(0)
        self._data = data
        self._pos = 0

    def getrandbits(self, k: int) -> int:
        assert k == 8
        value = self._data[self._pos % len(self._data)]
        self._pos += 1
        return value


class CardLink(Reader):
    """One card on a link that never resets it, taking T=0 from its ATR as a reader does."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.t0 = speaks_t0(card.atr)

    def connect(self) -> bytes:
        return self.card.atr

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        return self.card.process(apdu)

    def is_card_present(self) -> bool:
        return True

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        return None


def tx(card: Card, cmd: CommandAPDU) -> ResponseAPDU:
    """One command through a channel (GET RESPONSE for a T=0 card, as a terminal sends it)."""
    return Channel(CardLink(card)).transmit(cmd)


def purchase(card: Card, sam: Card, amount: int, when: datetime = WHEN, capp_record: bytes | None = None,
             record_id: int = 0x2702) -> tuple[P.InitializeForPurchaseResponse, W.InitSamResponse, P.DebitResponse, PublicData]:
    """A whole purchase from terminal-side bytes; returns the card's and PSAM's answers."""
    tid = tx(sam, W.read_terminal_number()).check().data
    tx(sam, select_aid(W.PSAM_AID, fci=False)).check()
    tx(card, select_aid(P.PURSE_AID)).check()
    public = PublicData.decode(tx(card, read_binary(0, 30, sfi=0x15)).check().data)
    capp = capp_record is not None
    init = P.InitializeForPurchaseResponse.decode(
        tx(card, P.InitializeForPurchase(1, amount, tid, capp).to_apdu()).check().data)
    if capp_record is not None:
        tx(card, P.UpdateCappDataCache(record_id, capp_record).to_apdu()).check()
    d, t = macs.bcd_datetime(when)
    issuer_f, card_f = purse_factors(default_issuer().issuer_id, public.app_serial)
    tx_type = macs.TX_CAPP_PURCHASE if capp else macs.TX_EP_PURCHASE
    sam_r = W.InitSamResponse.decode(tx(sam, W.InitSamForPurchase(
        init.random, init.offline_seq, amount, tx_type, d, t, init.key_version, init.alg_id,
        (card_f, issuer_f)).to_apdu()).check().data)
    debit = P.DebitResponse.decode(tx(card, P.DebitForPurchase(sam_r.terminal_seq, d, t, sam_r.mac1).to_apdu()).check().data)
    tx(sam, W.credit_sam_for_purchase(debit.mac2)).check()
    return init, sam_r, debit, public
