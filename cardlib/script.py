"""APDU scripts a technician writes by hand (format: docs/script-format.md).

One APDU per line (hex, spaces allowed) with an optional expectation after
``=>`` or on the next line after ``<=`` (or ``>``): a status word or a whole
response, ``X``/``?`` a wildcard hex digit, ``*`` (or ``...``) any bytes.
``reset``, ``echo TEXT``, ``#`` comments. Also reads pcsc-tools' scriptor
files: ``reset``, ``exit``, ``#`` comments and APDUs as hex bytes separated
by spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.hexutil import from_hex

_PATTERN_CHARS = re.compile(r"^[0-9A-Fa-fXx?*]*$")


@dataclass(frozen=True)
class Expectation:
    """Expected response: hex digits, X or ? per wildcard digit, * for any bytes."""

    pattern: str
    line: int

    def matches(self, response: bytes) -> bool:
        actual = response.hex().upper()
        pat = self.pattern.upper()
        if "*" in pat:
            head, _, tail = pat.partition("*")
            if len(head) + len(tail) > len(actual) or (len(actual) - len(head) - len(tail)) % 2:
                return False
            return _digits(head, actual[: len(head)]) and _digits(tail, actual[len(actual) - len(tail) :])
        if len(pat) == 4 and len(actual) > 4:  # SW only
            return _digits(pat, actual[-4:])
        return len(pat) == len(actual) and _digits(pat, actual)


def _digits(pattern: str, actual: str) -> bool:
    return all(p in "X?" or p == a for p, a in zip(pattern, actual, strict=True))


@dataclass(frozen=True)
class Step:
    """One line of work: an APDU (with an optional expectation), reset or echo."""

    kind: str  # "apdu" | "reset" | "echo"
    line: int
    command: CommandAPDU | None = None
    expect: Expectation | None = None
    text: str = ""


def _pattern(text: str, line: int) -> Expectation:
    cleaned = "".join(text.split()).replace("...", "*")
    if not cleaned or not _PATTERN_CHARS.match(cleaned) or len(cleaned.replace("*", "")) % 2 or cleaned.count("*") > 1:
        raise FormatError(f"line {line}: bad expectation {text.strip()!r} (hex digits, X/? wildcards, one *)")
    return Expectation(cleaned, line)


def _expectation_body(line: str) -> str | None:
    """The pattern of a line holding an expectation for the APDU above it, else None."""
    for marker in ("<=", "<", ">"):
        if line.startswith(marker):
            return line[len(marker) :]
    return None


def parse_script(text: str) -> list[Step]:
    """Parse a script; FormatError names the line of any problem."""
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        lower = line.lower()
        if lower == "reset":
            steps.append(Step("reset", number))
            continue
        if lower in ("exit", "quit"):
            break
        if lower == "echo" or lower.startswith(("echo ", "echo\t")):
            steps.append(Step("echo", number, text=raw.strip()[4:].strip()))
            continue
        body = _expectation_body(line)
        if body is not None:
            if not steps or steps[-1].kind != "apdu" or steps[-1].expect is not None:
                raise FormatError(f"line {number}: expectation without an APDU on the line before")
            last = steps[-1]
            steps[-1] = Step("apdu", last.line, last.command, _pattern(body, number))
            continue
        apdu_text, sep, expect_text = line.partition("=>")
        try:
            command = CommandAPDU.decode(from_hex(apdu_text, "APDU"))
        except FormatError as exc:
            raise FormatError(f"line {number}: {exc}") from None
        expect = _pattern(expect_text, number) if sep else None
        steps.append(Step("apdu", number, command, expect))
    return steps
