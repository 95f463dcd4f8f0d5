"""Status words: ISO 7816-4 §5.1.3 and the PBOC / JT/T 978 purse (reference §4)."""

from __future__ import annotations

SUCCESS = 0x9000


def describe(sw: int) -> str:
    """A short English meaning of a status word."""
    if sw == SUCCESS:
        return "success"
    if sw >> 8 == 0x61:
        return f"{sw & 0xFF or 256} more bytes available (GET RESPONSE)"
    if sw >> 8 == 0x6C:
        return f"wrong Le: resend with Le={sw & 0xFF or 256}"
    return "unknown status"


def is_success(sw: int) -> bool:
    return sw == SUCCESS


def is_more_data(sw: int) -> bool:
    """61xx: the card has more response bytes."""
    return sw >> 8 == 0x61


def is_wrong_le(sw: int) -> bool:
    """6Cxx: resend the command with Le = xx."""
    return sw >> 8 == 0x6C
