"""The card side of ISO/IEC 14443-4: activation by RATS (§5.1) and the block
protocol of §7 in front of a virtual card's APDUs.

The PICC rules of §7.5.4.3: the block number starts at 1; an I-block toggles
it; chained I-blocks get R(ACK); an R(ACK) or R(NAK) that carries the card's
own number asks for the last block again, an R(ACK) with the other number asks
for the next piece of a chained answer, an R(NAK) with the other number gets
R(ACK). S(WTX) asks the reader for more time (§7.3), S(DESELECT) puts the card
to sleep (§8). Faults are injected, never timed: a WTX request before the next
answer, a block lost on its way to the card, an answer lost on its way back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cardlib import isodep
from cardlib.errors import FormatError
from cardlib.isodep import Block, BlockKind
from cardlib.readers.base import Card


@dataclass
class DepFaults:
    """Faults waiting for the next blocks: WTX requests (their WTXM), blocks lost each way."""

    wtx_requests: list[int] = field(default_factory=list)
    lose_to_card: int = 0
    lose_from_card: int = 0

    @property
    def pending(self) -> bool:
        return bool(self.wtx_requests or self.lose_to_card or self.lose_from_card)


class IsoDepCard:
    """One card in the field behind its ISO-DEP layer; ``receive`` takes a frame from the
    reader and returns the card's frame, or None when the card stays silent."""

    def __init__(self, card: Card, ats: bytes, faults: DepFaults | None = None) -> None:
        self.card = card
        self.ats = ats
        self.active = False
        self.number = 1
        self.fsd = 256
        self._chain_in = bytearray()
        self._answer = b""  # the part of the card's answer not yet sent
        self._last = b""  # the last block sent, for a retransmission
        self._held = b""  # the answer waiting behind a WTX request
        self._cid: int | None = None
        self.faults = faults or DepFaults()

    def activate(self, fsdi: int = 8) -> None:
        """What RATS does (§5.6.1.2): FSD from FSDI, the block number back to 1."""
        self.active = True
        self.fsd = isodep.frame_size(fsdi)
        self.number = 1
        self._chain_in.clear()
        self._answer = self._last = self._held = b""

    def receive(self, frame: bytes) -> bytes | None:
        faults = self.faults
        if faults.lose_to_card:
            faults.lose_to_card -= 1
            return None  # the block never reached the card
        answer = self._answer_frame(frame)
        if answer is not None and faults.lose_from_card:
            faults.lose_from_card -= 1
            return None  # the card answered, the reader heard nothing
        return answer

    def _answer_frame(self, frame: bytes) -> bytes | None:
        if frame[:1] == bytes((isodep.RATS,)) and len(frame) == 2:
            self.activate(frame[1] >> 4)
            return self.ats
        if not self.active:
            return None  # only RATS (or ISO 14443-3 commands) wake it
        try:
            block = isodep.parse_block(frame)
        except FormatError:
            return None  # a PICC ignores an invalid block (§7.5.4.2)
        self._cid = block.cid
        if block.kind is BlockKind.I:
            return self._i_block(block)
        if block.kind is BlockKind.R:
            if block.number == self.number:
                return self._last  # rules 11 and 12: the last block again
            if block.nak:
                return self._send(isodep.r_ack(self.number, self._cid), keep=False)
            self.number ^= 1  # rule 13: the reader acknowledged, the next piece
            return self._next_piece() if self._answer else self._last
        if block.deselect:
            self.active = False
            return isodep.s_deselect(self._cid)
        if self._held:  # the reader's S(WTX) response: the time is granted
            return self._wtx_or(self._held)
        return None

    def _i_block(self, block: Block) -> bytes | None:
        self.number ^= 1  # rule 10
        self._chain_in += block.inf
        if block.chaining:
            return self._send(isodep.r_ack(self.number, self._cid))
        apdu, self._chain_in = bytes(self._chain_in), bytearray()
        self._answer = self.card.process(apdu)  # CardRemovedError: the card left the field
        return self._wtx_or(self._piece())

    def _piece(self) -> bytes:
        room = self.fsd - 3 - (self._cid is not None)  # PCB, CID, two CRC bytes
        piece, self._answer = self._answer[:room], self._answer[room:]
        return isodep.i_block(self.number, piece, bool(self._answer), self._cid)

    def _next_piece(self) -> bytes:
        return self._wtx_or(self._piece())

    def _wtx_or(self, block: bytes) -> bytes:
        """``block``, or a WTX request first when one is injected (the block waits)."""
        if self.faults.wtx_requests:
            self._held = block
            return self._send(isodep.s_wtx(self.faults.wtx_requests.pop(0), self._cid), keep=False)
        self._held = b""
        return self._send(block)

    def _send(self, block: bytes, keep: bool = True) -> bytes:
        if keep:
            self._last = block
        return block
