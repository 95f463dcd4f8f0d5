"""Interindustry commands of ISO/IEC 7816-4 §11, each described once.

Every command is a frozen value with ``to_apdu()`` (what the terminal sends)
and ``from_apdu()`` (what the simulated file system, the trace masker and
``ykt explain`` read back): the bit layout of P1-P2 — an SFI in P1 or in P2,
a record mode, a SELECT's naming and answer bits — is written here alone.
``from_apdu`` reads the fields; a command whose fields cannot be read raises
:class:`IsoCommandError` with the status word a card answers (ISO 7816-4
§5.6); what the fields mean for a given file (a file that is not there, data
where none belongs, an unsupported mode) is the file system's business, in
its own order of checks. The module-level builders (``select_aid``, ``read_binary``…) are
the short forms the terminal uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_UPDATE_BINARY = 0xD6
INS_READ_RECORD = 0xB2
INS_UPDATE_RECORD = 0xDC
INS_APPEND_RECORD = 0xE2
INS_GET_CHALLENGE = 0x84
INS_GET_RESPONSE = 0xC0
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_INTERNAL_AUTH = 0x88
INS_EXTERNAL_AUTH = 0x82
#: the commands whose data is a PIN (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER; §11.5.6–§11.5.10)
PIN_INS = frozenset({INS_VERIFY, INS_CHANGE_REFERENCE, INS_RESET_RETRY})

# SELECT P1 (§11.1.1, table 39): how the file is named
BY_ID = 0x00  # MF, DF or EF by file identifier (data empty or 3F00: the MF)
CHILD_DF = 0x01
EF_BY_ID = 0x02  # an EF under the current DF
PARENT_DF = 0x03
BY_NAME = 0x04  # a DF by its name (an AID)
PATH_FROM_MF = 0x08
PATH_FROM_CURRENT = 0x09
SELECT_BY = (BY_ID, CHILD_DF, EF_BY_ID, PARENT_DF, BY_NAME, PATH_FROM_MF, PATH_FROM_CURRENT)
# SELECT P2 b4 b3 (table 40): what comes back; b2 b1: which occurrence of a DF name
ANSWER_FCI = 0x00
ANSWER_FCP = 0x04
ANSWER_FMD = 0x08
ANSWER_NONE = 0x0C
NEXT_OCCURRENCE = 0x02
# READ/UPDATE RECORD P2 b3 b2 b1 (§11.3.2, table 49): P1 is a record number, or an identifier
RECORD_NUMBER = 0x04
FIRST_BY_ID = 0x00


class IsoCommandError(FormatError):
    """A command whose fields cannot be read; ``sw`` is the card's answer to it."""

    def __init__(self, sw: int, message: str) -> None:
        super().__init__(message)
        self.sw = sw


def _sfi(sfi: int) -> int:
    if not 1 <= sfi <= 30:
        raise FormatError(f"SFI must be 1..30, got {sfi}")
    return sfi


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT (INS A4, §11.1.1): ``by`` is P1 (how ``name`` names the file), ``p2`` the answer
    wanted (b4 b3) and the occurrence of a DF name (b2 b1)."""

    by: int
    name: bytes = b""
    p2: int = ANSWER_NONE
    le: int | None = None

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(0x00, INS_SELECT, self.by, self.p2, self.name, self.le)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> Select:
        """The fields; a length that cannot name a file this way is 6700, an unknown P1 6A86."""
        p1, data = cmd.p1, cmd.data
        if p1 in (BY_ID, CHILD_DF, EF_BY_ID):
            if len(data) != 2 and not (p1 == BY_ID and not data):
                raise IsoCommandError(SW.SW_WRONG_LENGTH, f"SELECT P1 {p1:02X}: a file identifier has 2 bytes")
        elif p1 == BY_NAME:
            if not 1 <= len(data) <= 16:
                raise IsoCommandError(SW.SW_WRONG_LENGTH, "SELECT by name: a DF name has 1 to 16 bytes")
        elif p1 in (PATH_FROM_MF, PATH_FROM_CURRENT):
            if not data or len(data) % 2:
                raise IsoCommandError(SW.SW_WRONG_LENGTH, "SELECT by path: a path is file identifiers of 2 bytes")
        elif p1 != PARENT_DF:
            raise IsoCommandError(SW.SW_INCORRECT_P1P2, f"SELECT P1 {p1:02X} is not defined")
        return cls(p1, data, cmd.p2, cmd.le)

    @property
    def answer(self) -> int:
        """ANSWER_FCI, ANSWER_FCP, ANSWER_FMD or ANSWER_NONE."""
        return self.p2 & 0x0C

    @property
    def next_occurrence(self) -> bool:
        return self.p2 & 0x03 == NEXT_OCCURRENCE

    @property
    def reserved_bits(self) -> bool:
        """P2 bits this description (and the file system) do not support: b8–b5 and b1."""
        return bool(self.p2 & 0xF1)

    @property
    def fids(self) -> list[int]:
        """The file identifiers of a path (or the one of a FID)."""
        return [int.from_bytes(self.name[i : i + 2], "big") for i in range(0, len(self.name) - 1, 2)]


@dataclass(frozen=True, slots=True)
class BinaryRef:
    """Where READ/UPDATE BINARY acts (§11.2.2): with an SFI (P1 b8 set, SFI in b5–b1) the offset
    is P2 alone, else P1-P2 is a 15-bit offset into the current EF."""

    offset: int = 0
    sfi: int | None = None

    def p1p2(self) -> tuple[int, int]:
        if self.sfi is not None:
            if not 0 <= self.offset <= 0xFF:
                raise FormatError(f"offset {self.offset} too large for a binary command by SFI")
            return 0x80 | _sfi(self.sfi), self.offset
        if not 0 <= self.offset <= 0x7FFF:
            raise FormatError(f"offset {self.offset} out of range")
        return self.offset >> 8, self.offset & 0xFF

    @classmethod
    def from_p1p2(cls, p1: int, p2: int) -> BinaryRef:
        if p1 & 0x80:
            if p1 & 0x60:
                raise IsoCommandError(SW.SW_INCORRECT_P1P2, f"binary command P1 {p1:02X}: b7 b6 must be 0")
            return cls(p2, p1 & 0x1F)
        return cls((p1 << 8) | p2)


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Which record READ/UPDATE/APPEND RECORD names (§11.3.2): P2 b8–b4 an SFI (0: the current
    EF), b3–b1 the mode; P1 the record number (mode 04) or identifier (mode 00)."""

    record: int = 0
    sfi: int | None = None
    mode: int = RECORD_NUMBER

    def p1p2(self) -> tuple[int, int]:
        return self.record, ((_sfi(self.sfi) << 3) if self.sfi else 0) | self.mode

    @classmethod
    def from_p1p2(cls, p1: int, p2: int) -> RecordRef:
        return cls(p1, p2 >> 3 or None, p2 & 0x07)


@dataclass(frozen=True, slots=True)
class Read:
    """READ BINARY (INS B0, §11.2.3) where a BinaryRef points, READ RECORD (INS B2, §11.3.3)
    of the record a RecordRef names; Le how many bytes."""

    ref: BinaryRef | RecordRef
    le: int | None = 256

    def to_apdu(self) -> CommandAPDU:
        p1, p2 = self.ref.p1p2()
        ins = INS_READ_BINARY if isinstance(self.ref, BinaryRef) else INS_READ_RECORD
        return CommandAPDU(0x00, ins, p1, p2, le=self.le)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> Read:
        ref = BinaryRef if cmd.ins == INS_READ_BINARY else RecordRef
        return cls(ref.from_p1p2(cmd.p1, cmd.p2), cmd.le)


@dataclass(frozen=True, slots=True)
class Update:
    """UPDATE BINARY (INS D6, §11.2.5) where a BinaryRef points; UPDATE RECORD (INS DC,
    §11.3.5) of a RecordRef's record, or with ``append`` APPEND RECORD (INS E2, §11.3.6).
    CLA 04 when a line MAC follows the data."""

    data: bytes
    ref: BinaryRef | RecordRef
    cla: int = 0x00
    append: bool = False

    def to_apdu(self) -> CommandAPDU:
        p1, p2 = self.ref.p1p2()
        if isinstance(self.ref, BinaryRef):
            ins = INS_UPDATE_BINARY
        else:
            ins = INS_APPEND_RECORD if self.append else INS_UPDATE_RECORD
        return CommandAPDU(self.cla, ins, p1, p2, self.data)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> Update:
        ref = BinaryRef if cmd.ins == INS_UPDATE_BINARY else RecordRef
        return cls(cmd.data, ref.from_p1p2(cmd.p1, cmd.p2), cmd.cla, cmd.ins == INS_APPEND_RECORD)


@dataclass(frozen=True, slots=True)
class GetChallenge:
    """GET CHALLENGE (INS 84, §11.5.3): Le is the length of the challenge."""

    length: int = 8

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(0x00, INS_GET_CHALLENGE, 0x00, 0x00, le=self.length)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> GetChallenge:
        if cmd.le not in (4, 8, 16):
            raise IsoCommandError(SW.SW_WRONG_LENGTH, "GET CHALLENGE: Le must be 4, 8 or 16")
        if cmd.data or cmd.p1 or cmd.p2:
            raise IsoCommandError(SW.SW_INCORRECT_P1P2, "GET CHALLENGE: P1-P2 00 00, no data")
        return cls(cmd.le)


@dataclass(frozen=True, slots=True)
class GetResponse:
    """GET RESPONSE (INS C0, §11.6.1): the rest of an answer a T=0 card announced with 61xx;
    the CLA is the command's (a proprietary command's GET RESPONSE keeps an interindustry CLA)."""

    length: int = 256
    cla: int = 0x00

    def to_apdu(self) -> CommandAPDU:
        return CommandAPDU(self.cla, INS_GET_RESPONSE, 0x00, 0x00, le=self.length)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> GetResponse:
        if cmd.data or cmd.p1 or cmd.p2:
            raise IsoCommandError(SW.SW_INCORRECT_P1P2, "GET RESPONSE: P1-P2 00 00, no data")
        return cls(cmd.le or 256, cmd.cla)


def file_sfi(ins: int, p1: int, p2: int) -> int | None:
    """The SFI a binary or record command names in P1-P2 (which also makes that EF current,
    §7.2.2); None for the current EF or another command."""
    if ins in (INS_READ_BINARY, INS_UPDATE_BINARY):
        return p1 & 0x1F if p1 & 0x80 and not p1 & 0x60 else None
    if ins in (INS_READ_RECORD, INS_UPDATE_RECORD, INS_APPEND_RECORD):
        return p2 >> 3 or None
    return None


# --- the short forms the terminal uses ---------------------------------------------------------


def select_aid(aid: bytes, fci: bool = True) -> CommandAPDU:
    """SELECT by DF name (P1 04); P2 00 asks for the FCI, 0C for none."""
    return Select(BY_NAME, aid, ANSWER_FCI if fci else ANSWER_NONE, 256 if fci else None).to_apdu()


def select_fid(fid: int, p1: int = BY_ID, fci: bool = False) -> CommandAPDU:
    """SELECT by file identifier (P1 00 any, 01 child DF, 02 EF under the current DF)."""
    return Select(p1, fid.to_bytes(2, "big"), ANSWER_FCI if fci else ANSWER_NONE, 256 if fci else None).to_apdu()


def select_path(path: bytes, from_mf: bool = True) -> CommandAPDU:
    return Select(PATH_FROM_MF if from_mf else PATH_FROM_CURRENT, path).to_apdu()


def read_binary(offset: int = 0, le: int = 256, sfi: int | None = None) -> CommandAPDU:
    """READ BINARY, by SFI (P1 = 80 | SFI, P2 = offset) or of the current EF."""
    return Read(BinaryRef(offset, sfi), le).to_apdu()


def update_binary(data: bytes, offset: int = 0, sfi: int | None = None, cla: int = 0x00) -> CommandAPDU:
    return Update(data, BinaryRef(offset, sfi), cla).to_apdu()


def read_record(number: int, sfi: int | None = None, le: int = 256) -> CommandAPDU:
    """READ RECORD by number (P2 mode 04)."""
    return Read(RecordRef(number, sfi, RECORD_NUMBER), le).to_apdu()


def read_record_by_id(ident: int, sfi: int | None = None, le: int = 256) -> CommandAPDU:
    """READ RECORD by identifier, first occurrence (P2 mode 00; P1 = identifier)."""
    return Read(RecordRef(ident, sfi, FIRST_BY_ID), le).to_apdu()


def update_record(number: int, data: bytes, sfi: int | None = None, cla: int = 0x00) -> CommandAPDU:
    return Update(data, RecordRef(number, sfi, RECORD_NUMBER), cla).to_apdu()


def append_record(data: bytes, sfi: int | None = None) -> CommandAPDU:
    return Update(data, RecordRef(0, sfi, FIRST_BY_ID), append=True).to_apdu()


def get_challenge(n: int = 8) -> CommandAPDU:
    return GetChallenge(n).to_apdu()


def get_response(le: int = 256, cla: int = 0x00) -> CommandAPDU:
    return GetResponse(le, cla).to_apdu()
