"""Naming a card by its ATR from pcsc-tools' smartcard_list.txt, as ``ATR_analysis`` does.

The list (https://pcsc-tools.apdu.fr/smartcard_list.txt, installed with
pcsc-tools) is a sequence of entries: an ATR pattern on a line of its own —
hex bytes separated by spaces, with regular-expression parts such as ``..``
for any byte or ``[12]`` for a choice — then one or more description lines
starting with a tab, then an empty line; ``#`` starts a comment line.
``ATR_analysis`` writes the ATR as upper-case hex bytes separated by single
spaces, matches it against every pattern as a whole, case-insensitively,
and prints the descriptions of every matching entry in file order; it reads
the first list found of: ``$XDG_CACHE_HOME/smartcard_list.txt`` (default
``~/.cache``), ``~/.smartcard_list.txt``, ``/usr/local/pcsc/``,
``/usr/share/pcsc/``, ``/usr/local/share/pcsc/``. This module does the same.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_REGEX_CHARS = frozenset(".[]*+?()|\\{}^$")


@dataclass(frozen=True)
class CardMatch:
    """One entry of the list whose pattern matches the ATR."""

    pattern: str
    descriptions: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"pattern": self.pattern, "descriptions": list(self.descriptions)}


def candidate_lists() -> list[Path]:
    """Where ATR_analysis looks, in its order."""
    home = Path(os.environ.get("HOME", "~")).expanduser()
    cache = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else home / ".cache"
    return [cache / "smartcard_list.txt", home / ".smartcard_list.txt", Path("/usr/local/pcsc/smartcard_list.txt"),
            Path("/usr/share/pcsc/smartcard_list.txt"), Path("/usr/local/share/pcsc/smartcard_list.txt")]


def find_list() -> Path | None:
    """The list ATR_analysis would read, or None when pcsc-tools' list is not installed."""
    return next((p for p in candidate_lists() if p.is_file()), None)


def atr_text(atr: bytes) -> str:
    """The ATR the way the list's patterns are written: ``3B 8F 80 01 …``."""
    return atr.hex(" ").upper()


def match_atr(atr: bytes, text: str) -> list[CardMatch]:
    """Every entry of the list ``text`` whose pattern matches ``atr``, in file order."""
    wanted = atr_text(atr)
    matches: list[CardMatch] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line or line.startswith(("#", "\t")):
            continue
        if not _matches(line, wanted):
            continue
        descriptions = []
        while i < len(lines) and lines[i].startswith("\t"):
            descriptions.append(lines[i].strip())
            i += 1
        matches.append(CardMatch(line, tuple(descriptions)))
    return matches


def _matches(pattern: str, atr: str) -> bool:
    if not _REGEX_CHARS.intersection(pattern):
        return pattern.upper() == atr
    try:
        return re.fullmatch(pattern, atr, re.IGNORECASE) is not None
    except re.error:  # a pattern Python's engine does not take: no match, as for a line that is not an ATR
        return False


def name_card(atr: bytes, path: Path | None = None) -> tuple[Path, list[CardMatch]] | None:
    """The list used and its matches for ``atr``; None when no list is installed or readable."""
    path = path or find_list()
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return path, match_atr(atr, text)
