"""What people read in place of codes: money with its unit, card types, sex, card kinds.
JSON output keeps the codes and adds these names beside them."""

from __future__ import annotations

from cardlib.ssse.files import CARD_TYPES

#: EF05 tag 02, the social security card's type (cardlib.ssse.files.CARD_TYPES, by code).
SSC_CARD_TYPE_NAMES = {code: name for name, code in CARD_TYPES.items()}
#: EF06 tag 0B, sex as GB/T 2261.1-2003 codes it.
SEX_NAMES = {0: "unknown", 1: "male", 2: "female", 9: "not stated"}
CARD_KIND_NAMES = {"ssc": "social security card", "tunion": "T-Union transit card"}


def yuan(fen: int) -> str:
    """Money for people: integer fen with the yuan beside it."""
    return f"{fen} fen (¥{fen / 100:.2f})"


def named(names: dict[int, str], code: int) -> str:
    """``adult (01)``: the name and the code it stands for; ``unknown (7F)`` for a code not known."""
    return f"{names.get(code, 'unknown')} ({code:02X})"
