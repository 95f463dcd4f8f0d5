"""Hex is for people: parsing it leniently and printing it canonically."""

from __future__ import annotations

import string

from cardlib.errors import FormatError

_SEPARATORS = str.maketrans("", "", " \t\r\n:-_")
_HEXDIGITS = set(string.hexdigits)


def from_hex(text: str, what: str = "hex") -> bytes:
    """Parse hex with optional spaces, colons, dashes and a ``0x`` prefix."""
    cleaned = text.strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    cleaned = cleaned.translate(_SEPARATORS)
    bad = next((c for c in cleaned if c not in _HEXDIGITS), None)
    if bad is not None:
        raise FormatError(f"{what}: {bad!r} is not a hex digit")
    if len(cleaned) % 2:
        raise FormatError(f"{what}: odd number of hex digits ({len(cleaned)})")
    return bytes.fromhex(cleaned)


def to_hex(data: bytes, sep: str = "") -> str:
    """Upper-case hex, the JSON convention of DESIGN.md."""
    return data.hex(sep).upper() if sep else data.hex().upper()
