"""How the code speaks of the card, read from the source: the terminal and the CLI name status
words from cardlib.sw (never ``0x6A81``), so a reader finds their meaning in one table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: a status word written as a number: 6xxx or 9xxx in hex (TLV tags such as 9F0C are not status words)
SW_LITERAL = re.compile(r"\b0x(?:6[0-9A-Fa-f]|9[0-4])[0-9A-Fa-f]{2}\b")


def sw_literals(text: str) -> list[str]:
    return [m.group(0) for line in text.splitlines() if not line.lstrip().startswith("#")
            for m in SW_LITERAL.finditer(line.split("#", 1)[0])]


def test_the_terminal_and_the_cli_name_their_status_words() -> None:
    found = [f"{path.relative_to(ROOT)}: {literal}"
             for package in ("terminal", "cli") for path in sorted((ROOT / package).rglob("*.py"))
             for literal in sw_literals(path.read_text("utf-8"))]
    assert found == []


def test_the_check_sees_a_literal() -> None:
    assert sw_literals("if exc.sw in (0x6A81, 0x9303):\n    found = obj.find(0x9F0C)\n") == ["0x6A81", "0x9303"]
