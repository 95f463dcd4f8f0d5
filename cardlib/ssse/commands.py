"""SSSE commands (人社部 social security card, SSSE application; the commands
are ISO 7816-4's): builders for the terminal, parsers for the card, so both
speak the same bytes. Each data field is a declaration (cardlib/wire.py).

- SELECT the application by DF name: ``00 A4 04 00 0F 7378…CF``.
- SELECT EF05/EF06 by file identifier, as public readers do:
  ``00 A4 02 00 02 EF05``; then READ RECORD by number of the current EF
  (ISO 7816-4 §11.3.3, P2 mode 04): ``00 B2 <n> 04 00``. The SFI form
  ``00 B2 <n> <SFI<<3|4> 00`` needs no SELECT of the EF (a configurable
  alternative, :data:`ADDRESSING`).
- READ RECORD by identifier (first occurrence, P2 mode 00):
  ``00 B2 <tag> <SFI<<3> 00``.
- VERIFY (ISO 7816-4 §11.5.6): ``00 20 00 00 03 <PIN, 6 digits BCD>``; no
  data asks for the tries left (63Cx, 6983 when blocked).
- CHANGE REFERENCE DATA (§11.5.7): ``00 24 00 00 06 <old PIN> <new PIN>``.
- RESET RETRY COUNTER (§11.5.10), our unblock: ``00 2C 00 00 06 <PUK>
  <new PIN>`` (P1 00: resetting code and new reference data both present);
  the PUK is 6 BCD digits like the PIN.
- GET CHALLENGE (§11.5.3): ``00 84 00 00 08``.
- INTERNAL AUTHENTICATE (§11.5.5): ``00 88 00 kid 08 <challenge> 08``.
- EXTERNAL AUTHENTICATE (§11.5.4): ``00 82 00 kid 08 <cipher(challenge)>``.

SM4 cards double the challenge and cryptogram to 16 bytes, and the key
behind INTERNAL/EXTERNAL AUTHENTICATE: the project's profile (no public SSSE
authentication profile was found).
"""

from __future__ import annotations

from construct import Bytes, Int16ub, Struct

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.iso import (
    INS_CHANGE_REFERENCE,
    INS_EXTERNAL_AUTH,
    INS_INTERNAL_AUTH,
    INS_RESET_RETRY,
    INS_SELECT,
    INS_VERIFY,
    get_challenge,
    read_record,
    read_record_by_id,
    select_aid,
)
from cardlib.ssse.files import RECORD_NUMBERS, SFI_OF, SSSE_AID
from cardlib.wire import Declaration, Vector, declare

#: how EF05/EF06 records are reached: "fid" (SELECT the EF, then by number) or "sfi"
ADDRESSING = ("fid", "sfi")

PIN_REF = 0x00
PIN_LEN = 3  # bytes: 6 BCD digits
BLOCK_SIZES = (8, 16)  # 3DES, SM4
H = bytes.fromhex

PIN = declare(
    "ssse.verify", Struct("pin" / Bytes(PIN_LEN)),
    cite="ISO 7816-4 §11.5.6 VERIFY, command data; a 6-digit PIN in 3 BCD bytes as the SSSE card takes it",
    vectors=(Vector(H("123456"), {"pin": H("123456")}, "own: hand-packed, PIN 123456"),),
)
PIN_PAIR = declare(
    "ssse.pin_pair", Struct("old" / Bytes(PIN_LEN), "new" / Bytes(PIN_LEN)),
    cite="ISO 7816-4 §11.5.7 CHANGE REFERENCE DATA and §11.5.10 RESET RETRY COUNTER (P1 00), command data: "
         "old PIN or PUK, then the new PIN",
    vectors=(Vector(H("123456 654321"), {"old": H("123456"), "new": H("654321")}, "own: hand-packed"),),
)
SELECT_EF = declare(
    "ssse.select_ef", Struct("fid" / Int16ub),
    cite="ISO 7816-4 §11.2.2 SELECT by file identifier (P1 02), command data, as public SSSE readers select EF05/EF06",
    vectors=(Vector(H("EF05"), {"fid": 0xEF05}, "own: hand-packed, EF05"),),
)
#: INTERNAL/EXTERNAL AUTHENTICATE's challenge or cryptogram by the key's block size
AUTH: dict[int, Declaration] = {
    8: declare("ssse.authenticate.3des", Struct("data" / Bytes(8)),
               cite="ISO 7816-4 §11.5.4/§11.5.5 EXTERNAL/INTERNAL AUTHENTICATE, command data: one 3DES block",
               vectors=(Vector(H("0102030405060708"), {"data": H("0102030405060708")}, "own: hand-packed"),)),
    16: declare("ssse.authenticate.sm4", Struct("data" / Bytes(16)),
                cite="the project's profile (SSSE authentication with SM4): ISO 7816-4 §11.5.4/§11.5.5, "
                     "one 16-byte SM4 block",
                vectors=(Vector(bytes(range(16)), {"data": bytes(range(16))}, "own: hand-packed"),)),
}


def pin_bytes(pin: str) -> bytes:
    """A 6-digit PIN (or PUK) as 3 BCD bytes."""
    if not pin.isdigit() or len(pin) != 6 or not pin.isascii():
        raise FormatError("a PIN is 6 digits")
    return bytes.fromhex(pin)


def select_ssse(fci: bool = True) -> CommandAPDU:
    return select_aid(SSSE_AID, fci)


def read_ssse_record(tag: int, sfi: int) -> CommandAPDU:
    """READ RECORD of one EF05/EF06 TLV record by its tag."""
    return read_record_by_id(tag, sfi=sfi)


def select_ef(fid: int) -> CommandAPDU:
    """``00 A4 02 00 02 <fid>``: an EF under the current DF, as public readers select EF05/EF06."""
    return CommandAPDU(0x00, INS_SELECT, 0x02, 0x00, SELECT_EF.pack(fid))


def read_by_number(tag: int, addressing: str = "fid") -> CommandAPDU:
    """READ RECORD of the record holding ``tag``, by number: of the current EF (``fid``,
    after :func:`select_ef`) or by SFI (``sfi``)."""
    fid, number = RECORD_NUMBERS[tag]
    return read_record(number, sfi=SFI_OF[fid] if addressing == "sfi" else None)


def challenge(n: int = 8) -> CommandAPDU:
    """GET CHALLENGE before EXTERNAL AUTHENTICATE."""
    return get_challenge(n)


def verify_pin(pin: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_VERIFY, 0x00, PIN_REF, PIN.pack(pin_bytes(pin)))


def change_pin(old: str, new: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_CHANGE_REFERENCE, 0x00, PIN_REF, PIN_PAIR.pack(pin_bytes(old), pin_bytes(new)))


def unblock_pin(puk: str, new: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_RESET_RETRY, 0x00, PIN_REF, PIN_PAIR.pack(pin_bytes(puk), pin_bytes(new)))


def _block(data: bytes, what: str) -> bytes:
    declaration = AUTH.get(len(data))
    if declaration is None:
        raise FormatError(f"{what} must be 8 or 16 bytes, got {len(data)}")
    return declaration.pack(data)


def internal_authenticate(challenge: bytes, key_id: int = 0x01) -> CommandAPDU:
    """00 88 00 kid 08 challenge 08: the card answers its key's cipher of the challenge."""
    return CommandAPDU(0x00, INS_INTERNAL_AUTH, 0x00, key_id, _block(challenge, "challenge"), len(challenge))


def external_authenticate(cryptogram: bytes, key_id: int = 0x01) -> CommandAPDU:
    """00 82 00 kid 08 cipher(challenge): the terminal proves it holds the key."""
    return CommandAPDU(0x00, INS_EXTERNAL_AUTH, 0x00, key_id, _block(cryptogram, "cryptogram"))


def pin_query() -> CommandAPDU:
    """VERIFY without data: the card answers 63Cx with the tries left (6983 blocked)."""
    return CommandAPDU(0x00, INS_VERIFY, 0x00, PIN_REF)


# --- the card's side: what a command carries ------------------------------------


class MalformedCommand(FormatError):
    """A command the card cannot accept as formed; ``sw`` is its answer."""

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(message)
        self.sw = sw


def _check_p1p2(cmd: CommandAPDU) -> None:
    if cmd.p1 != 0x00 or cmd.p2 != PIN_REF:
        raise MalformedCommand(f"P1P2 {cmd.p1:02X}{cmd.p2:02X}: expected 00{PIN_REF:02X}", SW.SW_INCORRECT_P1P2)


def parse_verify(cmd: CommandAPDU) -> bytes | None:
    """The PIN a VERIFY carries (3 bytes), None for a tries-left query."""
    _check_p1p2(cmd)
    if not cmd.data:
        return None
    (pin,) = _fields(PIN, cmd)
    return _bcd_pin(pin)


def parse_pin_pair(cmd: CommandAPDU) -> tuple[bytes, bytes]:
    """(old PIN or PUK, new PIN) of CHANGE REFERENCE DATA or RESET RETRY COUNTER."""
    _check_p1p2(cmd)
    old, new = _fields(PIN_PAIR, cmd)
    return _bcd_pin(old), _bcd_pin(new)


def _fields(declaration: Declaration, cmd: CommandAPDU) -> tuple[bytes, ...]:
    """The command's data by its declaration; a wrong length is the card's 6700."""
    try:
        return declaration.unpack(cmd.data)
    except FormatError as exc:
        raise MalformedCommand(f"{cmd.ins:02X}: {exc}", SW.SW_WRONG_LENGTH) from None


def _bcd_pin(value: bytes) -> bytes:
    """A PIN or PUK is BCD digits: anything else is 6A80, before any try is counted
    (a card image could not hold it, and it is no guess of a PIN)."""
    for byte in value:
        if byte >> 4 > 9 or byte & 0x0F > 9:
            raise MalformedCommand("a PIN is BCD digits", SW.SW_WRONG_DATA)
    return value


def parse_auth(cmd: CommandAPDU, block_size: int) -> tuple[int, bytes]:
    """(key id, challenge or cryptogram) of INTERNAL/EXTERNAL AUTHENTICATE."""
    if cmd.p1 != 0x00:
        raise MalformedCommand(f"P1 {cmd.p1:02X}: expected 00", SW.SW_INCORRECT_P1P2)
    (data,) = _fields(AUTH[block_size], cmd)
    return cmd.p2, data
