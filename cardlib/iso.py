"""Interindustry commands of ISO/IEC 7816-4 §11 as APDU builders.

Used by the terminal to talk to any card and by tests; the simulated file
system answers the same bytes.
"""

from __future__ import annotations

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


def _sfi(sfi: int) -> int:
    if not 1 <= sfi <= 30:
        raise FormatError(f"SFI must be 1..30, got {sfi}")
    return sfi


def select_aid(aid: bytes, fci: bool = True) -> CommandAPDU:
    """SELECT by DF name (P1 04); P2 00 asks for the FCI, 0C for none."""
    return CommandAPDU(0x00, INS_SELECT, 0x04, 0x00 if fci else 0x0C, aid, 256 if fci else None)


def select_fid(fid: int, p1: int = 0x00, fci: bool = False) -> CommandAPDU:
    """SELECT by file identifier (P1 00 any, 01 child DF, 02 EF under the current DF)."""
    return CommandAPDU(0x00, INS_SELECT, p1, 0x00 if fci else 0x0C, fid.to_bytes(2, "big"), 256 if fci else None)


def select_path(path: bytes, from_mf: bool = True) -> CommandAPDU:
    return CommandAPDU(0x00, INS_SELECT, 0x08 if from_mf else 0x09, 0x0C, path)


def read_binary(offset: int = 0, le: int = 256, sfi: int | None = None) -> CommandAPDU:
    """READ BINARY, by SFI (P1 = 80 | SFI, P2 = offset) or of the current EF."""
    if sfi is not None:
        if not 0 <= offset <= 0xFF:
            raise FormatError(f"offset {offset} too large for READ BINARY by SFI")
        return CommandAPDU(0x00, INS_READ_BINARY, 0x80 | _sfi(sfi), offset, le=le)
    if not 0 <= offset <= 0x7FFF:
        raise FormatError(f"offset {offset} out of range")
    return CommandAPDU(0x00, INS_READ_BINARY, offset >> 8, offset & 0xFF, le=le)


def update_binary(data: bytes, offset: int = 0, sfi: int | None = None, cla: int = 0x00) -> CommandAPDU:
    if sfi is not None:
        return CommandAPDU(cla, INS_UPDATE_BINARY, 0x80 | _sfi(sfi), offset, data)
    return CommandAPDU(cla, INS_UPDATE_BINARY, offset >> 8, offset & 0xFF, data)


def read_record(number: int, sfi: int | None = None, le: int = 256) -> CommandAPDU:
    """READ RECORD by number (P2 mode 04)."""
    p2 = ((_sfi(sfi) << 3) if sfi else 0) | 0x04
    return CommandAPDU(0x00, INS_READ_RECORD, number, p2, le=le)


def read_record_by_id(ident: int, sfi: int | None = None, le: int = 256) -> CommandAPDU:
    """READ RECORD by identifier, first occurrence (P2 mode 00; P1 = identifier)."""
    p2 = (_sfi(sfi) << 3) if sfi else 0
    return CommandAPDU(0x00, INS_READ_RECORD, ident, p2, le=le)


def update_record(number: int, data: bytes, sfi: int | None = None, cla: int = 0x00) -> CommandAPDU:
    p2 = ((_sfi(sfi) << 3) if sfi else 0) | 0x04
    return CommandAPDU(cla, INS_UPDATE_RECORD, number, p2, data)


def append_record(data: bytes, sfi: int | None = None) -> CommandAPDU:
    return CommandAPDU(0x00, INS_APPEND_RECORD, 0x00, (_sfi(sfi) << 3) if sfi else 0, data)


def get_challenge(n: int = 8) -> CommandAPDU:
    return CommandAPDU(0x00, INS_GET_CHALLENGE, 0x00, 0x00, le=n)
