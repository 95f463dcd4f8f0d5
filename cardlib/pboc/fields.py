"""Field kinds the card's files share, as construct adapters for declarations
(cardlib/wire.py): BCD dates (YYYYMMDD, JT/T 978 and PBOC/JR/T 0025's
``CN`` date fields), BCD date and time (YYYYMMDDhhmmss, Beijing time) and
padded text (GBK names, ASCII numbers).

A value that does not fit is a FormatError with the reason; an adapter is
built by construct itself even in a compiled declaration, so its checks hold
on the fast path too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from construct import Adapter, Bytes, GreedyBytes

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime


def bcd_date(d: date) -> bytes:
    return bytes.fromhex(f"{d.year:04d}{d.month:02d}{d.day:02d}")


def parse_bcd_date(raw: bytes) -> date:
    text = raw.hex()
    if len(raw) != 4 or not text.isdigit():
        raise FormatError(f"not a BCD date: {raw.hex().upper()}")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise FormatError(f"impossible date {text}: {exc}") from None


def text_bytes(text: str, encoding: str = "ascii") -> bytes:
    """``text`` in a card's encoding; FormatError for a character it cannot hold
    (such as the U+FFFD a decoder put in place of bytes it could not read)."""
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise FormatError(f"text cannot be written in {encoding.upper()} (character {exc.start + 1})") from None


def gbk_field(text: str, size: int) -> bytes:
    """A GBK text field, 00-padded."""
    raw = text_bytes(text, "gbk")
    if len(raw) > size:
        raise FormatError(f"{text!r} is {len(raw)} bytes in GBK, the field holds {size}")
    return raw.ljust(size, b"\x00")


def gbk_text(raw: bytes) -> str:
    return raw.rstrip(b"\x00\xff").decode("gbk", errors="replace")


class _BcdDate(Adapter):  # type: ignore[misc]
    def _decode(self, obj: bytes, context: Any, path: str) -> date:
        return parse_bcd_date(obj)

    def _encode(self, obj: date, context: Any, path: str) -> bytes:
        return bcd_date(obj)


class _BcdDateTime(Adapter):  # type: ignore[misc]
    def _decode(self, obj: bytes, context: Any, path: str) -> datetime:
        return parse_bcd_datetime(obj[:4], obj[4:])

    def _encode(self, obj: datetime, context: Any, path: str) -> bytes:
        d, t = bcd_datetime(obj.astimezone(BEIJING))
        return d + t


class Text(Adapter):  # type: ignore[misc]
    """Text in ``size`` bytes, ``pad``-padded on the right, or all the bytes left (``size``
    None); read back without the padding (and without ``strip``'s bytes, such as a GBK
    name's FF filler)."""

    def __init__(self, size: int | None, encoding: str = "ascii", pad: bytes = b"\x00",
                 strip: bytes = b"\x00") -> None:
        super().__init__(Bytes(size) if size is not None else GreedyBytes)
        self.size, self.encoding, self.pad, self.strip = size, encoding, pad, strip

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return obj.rstrip(self.strip).decode(self.encoding, errors="replace")

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        raw = text_bytes(obj, self.encoding)
        if self.size is None:
            return raw
        if len(raw) > self.size:
            raise FormatError(f"{obj!r} is {len(raw)} bytes in {self.encoding.upper()}, the field holds {self.size}")
        return raw.ljust(self.size, self.pad)


#: a date, 4 bytes BCD YYYYMMDD
BcdDate = _BcdDate(Bytes(4))
#: a date and time in Beijing, 7 bytes BCD YYYYMMDDhhmmss (the date and time DEBIT and CREDIT carry)
BcdDateTime = _BcdDateTime(Bytes(7))


def GbkName(size: int) -> Text:
    """A GBK name, 00-padded; FF filler is dropped on reading."""
    return Text(size, "gbk", strip=b"\x00\xff")
