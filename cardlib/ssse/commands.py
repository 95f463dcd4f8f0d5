"""SSSE commands (reference §6, §8): PIN and card/terminal authentication.

PIN data is BCD, 6 digits in 3 bytes; CHANGE carries old ‖ new; UNBLOCK
(RESET RETRY COUNTER) carries PUK ‖ new PIN.
"""

from __future__ import annotations

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.iso import (
    INS_CHANGE_REFERENCE,
    INS_EXTERNAL_AUTH,
    INS_INTERNAL_AUTH,
    INS_RESET_RETRY,
    INS_VERIFY,
)

PIN_REF = 0x00


def pin_bytes(pin: str) -> bytes:
    if not pin.isdigit() or len(pin) != 6:
        raise FormatError("a PIN is 6 digits")
    return bytes.fromhex(pin)


def verify_pin(pin: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_VERIFY, 0x00, PIN_REF, pin_bytes(pin))


def change_pin(old: str, new: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_CHANGE_REFERENCE, 0x00, PIN_REF, pin_bytes(old) + pin_bytes(new))


def unblock_pin(puk: str, new: str) -> CommandAPDU:
    return CommandAPDU(0x00, INS_RESET_RETRY, 0x00, PIN_REF, pin_bytes(puk) + pin_bytes(new))


def internal_authenticate(challenge: bytes, key_id: int = 0x01) -> CommandAPDU:
    """00 88 00 kid 08 challenge 08: the card answers its key's cipher of the challenge."""
    if len(challenge) not in (8, 16):
        raise FormatError(f"challenge must be 8 or 16 bytes, got {len(challenge)}")
    return CommandAPDU(0x00, INS_INTERNAL_AUTH, 0x00, key_id, challenge, len(challenge))


def external_authenticate(cryptogram: bytes, key_id: int = 0x01) -> CommandAPDU:
    """00 82 00 kid 08 cipher(challenge): the terminal proves it holds the key."""
    if len(cryptogram) not in (8, 16):
        raise FormatError(f"cryptogram must be 8 or 16 bytes, got {len(cryptogram)}")
    return CommandAPDU(0x00, INS_EXTERNAL_AUTH, 0x00, key_id, cryptogram)


def pin_query() -> CommandAPDU:
    """VERIFY without data: the card answers 63Cx with the tries left (6983 blocked)."""
    return CommandAPDU(0x00, INS_VERIFY, 0x00, PIN_REF)
