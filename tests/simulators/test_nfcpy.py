"""nfcpy, the most used Python NFC library, drives our PN532 emulator as it drives the chip.

``nfc.ContactlessFrontend("tty:NAME:pn532")`` looks for NAME under /dev only:
the test links the emulator's pseudo-terminal there under a name of its own
and removes the link afterwards (creating it needs root). nfcpy raises the
line to 921,600 baud with SetSerialBaudRate, turns automatic RATS off, sends
RATS itself through InCommunicateThru and runs ISO-DEP (ISO/IEC 14443-4)
block by block; the purchase below is driven APDU by APDU through it and its
TAC verifies.
"""

from __future__ import annotations

import itertools
import os
import termios
from collections.abc import Iterator

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt4
import pytest

from cardlib.iso import select_aid
from cardlib.keys import default_issuer, verify_tac
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from simulators.field import wait_for
from simulators.issuer import issue_card
from simulators.pn532 import Pn532Emulator
from simulators.psam import make_psam
from tests.simulators.helpers import WHEN, purchase, tx

pytestmark = pytest.mark.pty
_names = itertools.count()


class TagAsCard:
    """A Type 4 tag seen through nfcpy, offered with the in-process card contract so the
    project's purchase helper drives it APDU by APDU (nfcpy sends the bytes)."""

    def __init__(self, tag: nfc.tag.tt4.Type4Tag, atr: bytes) -> None:
        self.tag = tag
        self.atr = atr
        self.apdus: list[bytes] = []

    def reset(self) -> bytes:
        return self.atr

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        return bytes(self.tag.transceive(bytearray(apdu)))


@pytest.fixture
def linked() -> Iterator[tuple[Pn532Emulator, str]]:
    """The emulator on a pty linked at /dev/ttyYKT<pid>n<n>; the link goes afterwards."""
    if not hasattr(os, "openpty"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no pseudo-terminals")
        pytest.skip("no pseudo-terminals here")
    if not os.access("/dev", os.W_OK):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /dev is not writable: nfcpy finds serial devices there only")
        pytest.skip("nfcpy looks for serial devices under /dev only; linking one there needs root")
    name = f"ttyYKT{os.getpid()}n{next(_names)}"  # letters and digits: what nfcpy's path accepts
    emulator = Pn532Emulator([issue_card(seed=21)])
    emulator.start(link=f"/dev/{name}")
    try:
        yield emulator, name
    finally:
        emulator.stop()  # removes the link
    assert not os.path.lexists(f"/dev/{name}")


def test_nfcpy_selects_reads_the_balance_and_buys(linked: tuple[Pn532Emulator, str]) -> None:
    emulator, name = linked
    card = emulator.cards[0]
    clf = nfc.ContactlessFrontend(f"tty:{name}:pn532")
    try:
        # nfcpy's start-up raised the line: 0x10 0x07 is SetSerialBaudRate to 921,600
        assert emulator.baud == 921600 and bytes.fromhex("1007") in emulator.log, [c.hex() for c in emulator.log]
        assert termios.tcgetattr(emulator._master)[4] == termios.B921600
        target = clf.sense(nfc.clf.RemoteTarget("106A"))
        assert target is not None and target.sel_res == b"\x20"
        tag = nfc.tag.activate(clf, target)
        assert isinstance(tag, nfc.tag.tt4.Type4Tag)
        assert tag._dep.fwt == pytest.approx(4096 / 13.56e6 * 2**7)  # FWI 7 from our ATS
        link = TagAsCard(tag, card.atr)
        assert tx(link, select_aid(P.PURSE_AID)).ok
        before = P.decode_balance(tx(link, P.GetBalance().to_apdu()).check().data)
        assert before == card.balance
        # nfcpy's ISO-DEP recovers from what the card's layer injects: a WTX request, a block
        # lost on its way to the card, an answer lost on its way back
        for inject in (lambda: emulator.inject_wtx(2), emulator.lose_block_to_card,
                       emulator.lose_block_from_card):
            inject()
            assert P.decode_balance(tx(link, P.GetBalance().to_apdu()).check().data) == before
            assert not emulator.faults_pending
        assert bytes.fromhex("42F202") in emulator.log  # nfcpy granted the WTX, S(WTX) response
        assert sum(cmd[:2] in (b"\x42\xb2", b"\x42\xb3") for cmd in emulator.log) >= 2  # R(NAK) twice
        psam = make_psam()
        init, sam_r, debit, public = purchase(link, psam, 120)
        d, t = macs.bcd_datetime(WHEN)
        fields = macs.TacFields(macs.TX_EP_PURCHASE, 120, psam.state.terminal_id, d, t, sam_r.terminal_seq)
        assert verify_tac(default_issuer(), public.app_serial, fields, debit.tac)
        assert card.balance == before - 120
        # every block went through InCommunicateThru, none through InDataExchange
        assert any(cmd[0] == 0x42 for cmd in emulator.log)
        assert not any(cmd[0] == 0x40 for cmd in emulator.log)
    finally:
        clf.close()
    assert wait_for(lambda: emulator.baud == 115200, 2)  # nfcpy puts the line back on close

