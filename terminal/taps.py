"""Tap scripts: a day at a terminal, replayed on virtual cards (docs/tap-script.md).

JSON Lines, one tap a line; ``#`` lines are comments::

    {"card": "cards/adult.json", "time": "2026-11-28T08:15:00+08:00"}
    {"card": "cards/adult.json", "advance": 30, "tear": {"at": 3, "when": "after"}}
    {"card": "cards/a.json", "second": "cards/b.json"}

``time`` sets the clock, ``advance`` moves it (seconds); ``tear`` tears the
card at APDU ``at`` (or on instruction ``ins``, hex) ``before`` or ``after``
the card processes it; ``second`` puts another card in the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cardlib.clock import parse_time
from cardlib.errors import FormatError
from cardlib.jsontext import json_object
from cardlib.safefiles import LIMIT_SCRIPT, read_text

KEYS = {"card", "time", "advance", "tear", "second", "note"}
MAX_ADVANCE = 315_360_000  # ten years of seconds: the clock must stay a datetime


@dataclass(frozen=True)
class Tear:
    when: str  # before | after
    at: int | None = None
    ins: int | None = None


@dataclass(frozen=True)
class TapStep:
    line: int
    card: Path
    time: datetime | None = None
    advance: float = 0.0
    tear: Tear | None = None
    second: Path | None = None
    note: str = ""


def _tear(obj: object, line: int) -> Tear:
    if not isinstance(obj, dict):
        raise FormatError(f"tap line {line}: tear must be an object like {{\"at\": 3, \"when\": \"after\"}}")
    when = obj.get("when", "after")
    if when not in ("before", "after"):
        raise FormatError(f"tap line {line}: tear.when must be before or after")
    at, ins = obj.get("at"), obj.get("ins")
    if (at is None) == (ins is None):
        raise FormatError(f"tap line {line}: tear needs exactly one of at (APDU number) or ins (hex)")
    if at is not None and (not isinstance(at, int) or isinstance(at, bool) or at < 1):
        raise FormatError(f"tap line {line}: tear.at must be a positive APDU number")
    if ins is not None:
        try:
            ins = int(str(ins), 16)
            if not 0 <= ins <= 0xFF:
                raise ValueError(ins)
        except ValueError:
            raise FormatError(f"tap line {line}: tear.ins must be one byte in hex, e.g. \"54\"") from None
    return Tear(when, at, ins)


def parse_taps(text: str, base: Path = Path(".")) -> list[TapStep]:
    """The steps of a tap script: one JSON object a line, blank lines and ``#`` comments
    skipped; card paths relative to ``base``. FormatError names the line."""
    steps = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            steps.append(_step(_object(line, number), number, base))
    return steps


def _object(line: str, number: int) -> dict[str, Any]:
    """The line's JSON object, with known keys only and a card."""
    obj = json_object(line, f"tap line {number}")
    unknown = set(obj) - KEYS
    if unknown:
        raise FormatError(f"tap line {number}: unknown key {sorted(unknown)[0]!r}")
    if not isinstance(obj.get("card"), str):
        raise FormatError(f"tap line {number}: card (a card image path) is required")
    return obj


def _step(obj: dict[str, Any], number: int, base: Path) -> TapStep:
    advance = obj.get("advance", 0)
    if (isinstance(advance, bool) or not isinstance(advance, (int, float))
            or not 0 <= advance <= MAX_ADVANCE):  # NaN fails the comparison too
        raise FormatError(f"tap line {number}: advance must be a number of seconds 0..{MAX_ADVANCE}")
    when = None
    if "time" in obj:
        if not isinstance(obj["time"], str):
            raise FormatError(f"tap line {number}: time must be ISO 8601 text")
        try:
            when = parse_time(obj["time"])
        except FormatError as exc:
            raise FormatError(f"tap line {number}: {exc}") from None
    second = obj.get("second")
    if second is not None and not isinstance(second, str):
        raise FormatError(f"tap line {number}: second must be a card image path")
    return TapStep(number, base / obj["card"], when, float(advance),
                   _tear(obj["tear"], number) if "tear" in obj else None,
                   base / second if second else None, str(obj.get("note", "")))


def read_taps(path: str | os.PathLike[str]) -> list[TapStep]:
    source = Path(path)
    try:
        text = read_text(source, "tap script", LIMIT_SCRIPT)
    except OSError as exc:
        raise FormatError(f"cannot read tap script {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FormatError(f"tap script {source} is not UTF-8 text") from None
    return parse_taps(text, source.parent)

