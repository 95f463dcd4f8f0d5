"""APDU traces as JSON Lines, with secrets and personal data masked.

A trace is a header line ``{"atr": …, "reader": …}`` followed by one line per
exchange ``{"t", "reader", "command", "response", "duration_ms"}``. Masked
bytes are written as ``**`` per byte; replaying treats them as wildcards.
PIN bytes are always masked; personal data (the SSSE holder file EF06 and
the purse holder file 0x16) unless ``mask_personal=False``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from cardlib.channel import Exchange
from cardlib.errors import FormatError

MASK = "**"
PIN_INS = frozenset({0x20, 0x24, 0x2C})
HOLDER_EF = 0xEF06
HOLDER_SFI = 0x06
PURSE_HOLDER_SFI = 0x16


def _masked(data: bytes) -> str:
    return MASK * len(data)


class Masker:
    """Decides what to hide in one exchange; remembers the selected EF."""

    def __init__(self, mask_personal: bool = True) -> None:
        self.mask_personal = mask_personal
        self._holder_selected = False

    def command(self, apdu: bytes) -> str:
        if len(apdu) > 5 and apdu[1] in PIN_INS:
            return apdu[:5].hex().upper() + _masked(apdu[5 : 5 + apdu[4]]) + apdu[5 + apdu[4] :].hex().upper()
        return apdu.hex().upper()

    def _personal(self, apdu: bytes) -> bool:
        if len(apdu) < 4:
            return False
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        if ins == 0xA4:
            self._holder_selected = apdu[5:7] == HOLDER_EF.to_bytes(2, "big") if len(apdu) >= 7 else False
            return False
        if ins == 0xB2:
            sfi = p2 >> 3
            return sfi == HOLDER_SFI or (sfi == 0 and self._holder_selected)
        if ins == 0xB0:
            return bool(p1 & 0x80) and p1 & 0x1F == PURSE_HOLDER_SFI
        return False

    def response(self, apdu: bytes, response: bytes) -> str:
        personal = self._personal(apdu)
        if self.mask_personal and personal and len(response) > 2:
            return _masked(response[:-2]) + response[-2:].hex().upper()
        return response.hex().upper()


class TraceRecorder:
    """A channel observer writing JSON Lines to a path or a text stream."""

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        reader_name: str = "",
        mask_personal: bool = True,
    ) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.reader_name = reader_name
        self._masker = Masker(mask_personal)

    def header(self, atr: bytes, reader: str | None = None) -> None:
        self._write({"atr": atr.hex().upper(), "reader": reader or self.reader_name})

    def __call__(self, exchange: Exchange) -> None:
        self._write(
            {
                "t": datetime.fromtimestamp(exchange.started, UTC).astimezone().isoformat(),
                "reader": exchange.reader or self.reader_name,
                "command": self._masker.command(exchange.command),
                "response": self._masker.response(exchange.command, exchange.response),
                "duration_ms": round(exchange.duration * 1000, 3),
            }
        )

    def _write(self, obj: dict[str, Any]) -> None:
        self._stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()


@dataclass(frozen=True)
class TraceEntry:
    command: str
    response: str
    duration_ms: float = 0.0
    reader: str = ""
    t: str = ""
    line: int = 0


@dataclass(frozen=True)
class Trace:
    atr: bytes
    entries: tuple[TraceEntry, ...]


def _check_hex(text: str, what: str, line: int) -> str:
    if not isinstance(text, str) or len(text) % 2:
        raise FormatError(f"trace line {line}: {what} must be hex text")
    for i in range(0, len(text), 2):
        pair = text[i : i + 2]
        if pair != MASK:
            try:
                int(pair, 16)
            except ValueError:
                raise FormatError(f"trace line {line}: {what} has {pair!r}, not hex") from None
    return text.upper()


def iter_trace(lines: Iterator[str] | list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"trace line {number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise FormatError(f"trace line {number}: expected a JSON object")
        yield number, obj


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace file; FormatError names the line of any problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise FormatError(f"cannot read trace {os.fspath(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FormatError(f"trace {os.fspath(path)!r} is not UTF-8 text") from None
    atr = b""
    entries: list[TraceEntry] = []
    for number, obj in iter_trace(lines):
        if "command" not in obj:
            if "atr" in obj and not entries:
                atr_text = _check_hex(obj["atr"], "atr", number)
                if MASK in atr_text:
                    raise FormatError(f"trace line {number}: the ATR cannot be masked")
                atr = bytes.fromhex(atr_text)
                continue
            raise FormatError(f"trace line {number}: missing 'command'")
        if "response" not in obj:
            raise FormatError(f"trace line {number}: missing 'response'")
        duration = obj.get("duration_ms", 0.0)
        if not isinstance(duration, (int, float)):
            raise FormatError(f"trace line {number}: duration_ms must be a number")
        entries.append(
            TraceEntry(
                _check_hex(obj["command"], "command", number),
                _check_hex(obj["response"], "response", number),
                float(duration),
                str(obj.get("reader", "")),
                str(obj.get("t", "")),
                number,
            )
        )
    return Trace(atr, tuple(entries))


def matches(pattern: str, data: bytes) -> bool:
    """Whether hex ``pattern`` (with ``**`` wildcard bytes) matches ``data``."""
    if len(pattern) != 2 * len(data):
        return False
    actual = data.hex().upper()
    return all(
        pattern[i : i + 2] in (MASK, actual[i : i + 2]) for i in range(0, len(pattern), 2)
    )


def concrete(pattern: str, fill: int = 0x00) -> bytes:
    """Bytes of a pattern, masked bytes replaced by ``fill``."""
    return bytes(fill if pattern[i : i + 2] == MASK else int(pattern[i : i + 2], 16) for i in range(0, len(pattern), 2))
