"""SSSE commands (人社部 SSSE; reference §6, §8): builders for the terminal,
parsers for the card, so both speak the same bytes.

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

SM4 cards double the challenge and cryptogram to 16 bytes (reference §8).
"""

from __future__ import annotations

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

#: how EF05/EF06 records are reached: "fid" (SELECT the EF, then by number) or "sfi"
ADDRESSING = ("fid", "sfi")

PIN_REF = 0x00
PIN_LEN = 3  # bytes: 6 BCD digits
BLOCK_SIZES = (8, 16)  # 3DES, SM4


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
    return CommandAPDU(0x00, INS_SELECT, 0x02, 0x00, fid.to_bytes(2, "big"))


def read_by_number(tag: int, addressing: str = "fid") -> CommandAPDU:
    """READ RECORD of the record holding ``tag``, by number: of the current EF (``fid``,
    after :func:`select_ef`) or by SFI (``sfi``)."""
    fid, number = RECORD_NUMBERS[tag]
    return read_record(number, sfi=SFI_OF[fid] if addressing == "sfi" else None)


def challenge(n: int = 8) -> CommandAPDU:
    """GET CHALLENGE before EXTERNAL AUTHENTICATE."""
    return get_challenge(n)


def verify_pin(pin: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_VERIFY, 0x00, PIN_REF, pin_bytes(pin))


def change_pin(old: str, new: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_CHANGE_REFERENCE, 0x00, PIN_REF, pin_bytes(old) + pin_bytes(new))


def unblock_pin(puk: str, new: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_RESET_RETRY, 0x00, PIN_REF, pin_bytes(puk) + pin_bytes(new))


def internal_authenticate(challenge: bytes, key_id: int = 0x01) -> CommandAPDU:
    """00 88 00 kid 08 challenge 08: the card answers its key's cipher of the challenge."""
    if len(challenge) not in BLOCK_SIZES:
        raise FormatError(f"challenge must be 8 or 16 bytes, got {len(challenge)}")
    return CommandAPDU(0x00, INS_INTERNAL_AUTH, 0x00, key_id, challenge, len(challenge))


def external_authenticate(cryptogram: bytes, key_id: int = 0x01) -> CommandAPDU:
    """00 82 00 kid 08 cipher(challenge): the terminal proves it holds the key."""
    if len(cryptogram) not in BLOCK_SIZES:
        raise FormatError(f"cryptogram must be 8 or 16 bytes, got {len(cryptogram)}")
    return CommandAPDU(0x00, INS_EXTERNAL_AUTH, 0x00, key_id, cryptogram)


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
    if len(cmd.data) != PIN_LEN:
        raise MalformedCommand(f"VERIFY carries {len(cmd.data)} bytes, expected {PIN_LEN}", SW.SW_WRONG_LENGTH)
    return _bcd_pin(cmd.data)


def parse_pin_pair(cmd: CommandAPDU) -> tuple[bytes, bytes]:
    """(old PIN or PUK, new PIN) of CHANGE REFERENCE DATA or RESET RETRY COUNTER."""
    _check_p1p2(cmd)
    if len(cmd.data) != 2 * PIN_LEN:
        raise MalformedCommand(f"{cmd.ins:02X} carries {len(cmd.data)} bytes, expected {2 * PIN_LEN}",
                               SW.SW_WRONG_LENGTH)
    return _bcd_pin(cmd.data[:PIN_LEN]), _bcd_pin(cmd.data[PIN_LEN:])


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
    if len(cmd.data) != block_size:
        raise MalformedCommand(f"{cmd.ins:02X} carries {len(cmd.data)} bytes, expected {block_size}",
                               SW.SW_WRONG_LENGTH)
    return cmd.p2, cmd.data
