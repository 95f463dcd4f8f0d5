"""ISO/IEC 14443-4 half-duplex block transmission protocol: the ATS (§5.2) and the
blocks of §7.1 (PCB §7.1.1.1, CID §7.1.1.2, NAD §7.1.1.3), without the CRC the
reader chip adds and checks.

I-block ``0 0 0 C CID NAD 1 n`` (C: chaining), R-block ``1 0 1 N CID 0 1 n``
(N: NAK), S-block ``1 1 x x CID 0 1 0`` with ``00`` DESELECT and ``11`` WTX
(its INF: WTXM in the low 6 bits). No I/O: the card side of the simulators and
tests share it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cardlib.errors import FormatError

#: the start byte of RATS (§5.1)
RATS = 0xE0
#: PCB bits (§7.1.1.1): an I-block's chaining bit, then whether CID and NAD follow
CHAINING, CID_FOLLOWS, NAD_FOLLOWS = 0x10, 0x08, 0x04
#: an R-block's NAK bit
NAK = 0x10
#: the S-blocks DESELECT and WTX (their PCB without CID)
S_DESELECT, S_WTX = 0xC2, 0xF2
#: Frame sizes by FSCI / FSDI (§5.2.3, Table 1); RFU values count as 256.
FRAME_SIZES = (16, 24, 32, 40, 48, 64, 96, 128, 256)
#: The carrier frequency fc (Hz) of ISO/IEC 14443-2.
FC = 13.56e6
MAX_WTXM = 59


def frame_size(index: int) -> int:
    """FSC or FSD from FSCI / FSDI."""
    return FRAME_SIZES[min(index, len(FRAME_SIZES) - 1)]


def fwt_seconds(fwi: int) -> float:
    """Frame waiting time FWT = (256 × 16 / fc) × 2^FWI (§7.2); FWI 15 is RFU, read as 4."""
    return 256 * 16 / FC * (1 << (4 if fwi > 14 else fwi))


class BlockKind(enum.Enum):
    I = "I"  # the block's name in the standard  # noqa: E741
    R = "R"
    S = "S"


@dataclass(frozen=True)
class Block:
    """One block: ``number`` is the block number bit (I and R), ``wtxm`` only for S(WTX)."""

    kind: BlockKind
    number: int = 0
    chaining: bool = False
    nak: bool = False
    deselect: bool = False
    cid: int | None = None
    nad: int | None = None
    inf: bytes = b""

    @property
    def wtx(self) -> bool:
        return self.kind is BlockKind.S and not self.deselect

    @property
    def wtxm(self) -> int:
        return self.inf[0] & 0x3F if self.wtx and self.inf else 0

    def encode(self) -> bytes:
        if self.kind is BlockKind.I:
            pcb = 0x02 | self.number | (CHAINING if self.chaining else 0)
        elif self.kind is BlockKind.R:
            pcb = 0xA2 | self.number | (NAK if self.nak else 0)
        else:
            pcb = S_DESELECT if self.deselect else S_WTX
        prologue = bytearray((pcb,))
        if self.cid is not None:
            prologue[0] |= CID_FOLLOWS
            prologue.append(self.cid)
        if self.nad is not None and self.kind is BlockKind.I:
            prologue[0] |= NAD_FOLLOWS
            prologue.append(self.nad)
        return bytes(prologue) + self.inf


def i_block(number: int, inf: bytes, chaining: bool = False, cid: int | None = None) -> bytes:
    return Block(BlockKind.I, number & 1, chaining, cid=cid, inf=inf).encode()


def r_ack(number: int, cid: int | None = None) -> bytes:
    return Block(BlockKind.R, number & 1, cid=cid).encode()


def r_nak(number: int, cid: int | None = None) -> bytes:
    return Block(BlockKind.R, number & 1, nak=True, cid=cid).encode()


def s_wtx(wtxm: int, cid: int | None = None) -> bytes:
    if not 1 <= wtxm <= MAX_WTXM:
        raise FormatError(f"WTXM must be 1..{MAX_WTXM}, got {wtxm}")
    return Block(BlockKind.S, cid=cid, inf=bytes((wtxm,))).encode()


def s_deselect(cid: int | None = None) -> bytes:
    return Block(BlockKind.S, deselect=True, cid=cid).encode()


def parse_block(frame: bytes) -> Block:
    """A block from its bytes (without CRC); FormatError for anything §7.1 does not allow."""
    if not frame:
        raise FormatError("ISO-DEP block: empty frame")
    pcb = frame[0]
    cid, pos = _cid(frame)
    if pcb & 0xE2 == 0x02:  # I-block: 000x xx1x
        nad = None
        if pcb & NAD_FOLLOWS:
            if len(frame) <= pos:
                raise FormatError(f"ISO-DEP block {frame.hex().upper()}: NAD announced but missing")
            nad, pos = frame[pos], pos + 1
        return Block(BlockKind.I, pcb & 1, bool(pcb & CHAINING), cid=cid, nad=nad, inf=bytes(frame[pos:]))
    if pcb & 0xE6 == 0xA2:  # R-block: 101x x01x
        if len(frame) != pos:
            raise FormatError(f"ISO-DEP R-block {frame.hex().upper()} carries an INF field")
        return Block(BlockKind.R, pcb & 1, nak=bool(pcb & NAK), cid=cid)
    if pcb & 0xC7 == 0xC2 and pcb & 0x30 in (0x00, 0x30):  # S-block: 11xx x010, DESELECT or WTX
        inf = bytes(frame[pos:])
        deselect = pcb & 0x30 == 0
        if deselect and inf or not deselect and len(inf) != 1:
            raise FormatError(f"ISO-DEP S-block {frame.hex().upper()}: wrong INF length")
        return Block(BlockKind.S, deselect=deselect, cid=cid, inf=inf)
    raise FormatError(f"ISO-DEP block: PCB {pcb:02X} is none of I, R, S")


def _cid(frame: bytes) -> tuple[int | None, int]:
    """The CID when the PCB announces one (§7.1.1.2), and where the block goes on."""
    if not frame[0] & CID_FOLLOWS:
        return None, 1
    if len(frame) < 2:
        raise FormatError(f"ISO-DEP block {frame.hex().upper()}: CID announced but missing")
    if frame[1] & 0x30:
        raise FormatError(f"ISO-DEP block {frame.hex().upper()}: CID byte with RFU bits set")
    return frame[1] & 0x0F, 2  # b8-b7 carry the PICC's power level (§7.1.1.2), not kept


@dataclass(frozen=True)
class Ats:
    """The answer to select (§5.2): TL T0 [TA] [TB] [TC] historical bytes."""

    fsci: int
    fwi: int = 4
    sfgi: int = 0
    cid_supported: bool = False
    nad_supported: bool = False
    historical_bytes: bytes = b""

    @property
    def fsc(self) -> int:
        return frame_size(self.fsci)

    @property
    def fwt(self) -> float:
        return fwt_seconds(self.fwi)


def parse_ats(ats: bytes) -> Ats:
    """TL counts itself; T0 says which interface bytes follow; defaults of §5.2 where absent."""
    if not ats or ats[0] != len(ats):
        raise FormatError(f"ATS {ats.hex().upper()}: TL does not match its length")
    if len(ats) == 1:
        return Ats(fsci=2)
    t0 = ats[1]
    pos = 2
    tb = tc = None
    for bit in (0x10, 0x20, 0x40):
        if t0 & bit:
            if pos >= len(ats):
                raise FormatError(f"ATS {ats.hex().upper()}: interface byte announced but missing")
            if bit == 0x20:
                tb = ats[pos]
            elif bit == 0x40:
                tc = ats[pos]
            pos += 1
    fwi, sfgi = (tb >> 4, tb & 0x0F) if tb is not None else (4, 0)
    return Ats(t0 & 0x0F, fwi, sfgi, bool(tc is not None and tc & 0x02),
               bool(tc is not None and tc & 0x01), bytes(ats[pos:]))
