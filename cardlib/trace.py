"""APDU traces as JSON Lines, with secrets and personal data masked.

A trace is a header line ``{"atr": …, "reader": …}`` written on connect and
one line per exchange ``{"t", "reader", "command", "response",
"duration_ms"}``; times are ISO 8601 in Beijing time. Masked bytes are
written as ``**`` per byte (the hex length is kept), and replaying treats
them as wildcards.

Always masked: the PIN bytes of VERIFY, CHANGE REFERENCE DATA and RESET
RETRY COUNTER (ISO 7816-4 §7.5, INS 20/24/2C) and of the PBOC RELOAD/CHANGE
PIN (80 5E), the data of WRITE KEY (80/84 D4), and whatever runs inside
:func:`secret`. Masked by default (personal-information law): the holder
records of the SSSE application (EF06) and the purse holder file 0x16, read
by SFI or as the file a SELECT by FID or path made current, including the GET
RESPONSE pieces that carry them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import IO, Any

from cardlib import iso
from cardlib.apdu import CommandAPDU
from cardlib.channel import Exchange
from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.jsontext import json_object
from cardlib.safefiles import LIMIT_TRACE, check_trace_output, read_text

MASK = "**"
PIN_INS = iso.PIN_INS
PBOC_PIN_INS = 0x5E
WRITE_KEY_INS = 0xD4
HOLDER_EF = b"\xef\x06"
HOLDER_SFI = 0x06
PURSE_HOLDER_SFI = 0x16
PURSE_HOLDER_FID = b"\x00\x16"
# the holder files however they are named: the SSSE EF06 and the purse's file 0x16 (its FID is 0016)
PERSONAL_FIDS = frozenset({HOLDER_EF, PURSE_HOLDER_FID})
PERSONAL_SFIS = frozenset({HOLDER_SFI, PURSE_HOLDER_SFI})

_secret: contextvars.ContextVar[bool] = contextvars.ContextVar("ykt_trace_secret", default=False)


@contextlib.contextmanager
def secret() -> Iterator[None]:
    """Mark the exchanges made inside the block as secret: their data is masked.

    For key material the rules below cannot recognise (a proprietary key
    load, a diversified key read back in a personalisation flow).
    """
    token = _secret.set(True)
    try:
        yield
    finally:
        _secret.reset(token)


def in_secret() -> bool:
    """Whether the exchange being made now is inside a :func:`secret` block."""
    return _secret.get()


def _masked(data: bytes) -> str:
    return MASK * len(data)


def _data_span(apdu: bytes) -> tuple[int, int]:
    """Start and end of the command data field (ISO 7816-3 §12.1 cases), empty if none."""
    n = len(apdu)
    if n <= 5:
        return 5, 5
    if apdu[4] != 0:
        return 5, min(n, 5 + apdu[4])
    if n > 7:  # extended Lc
        return 7, min(n, 7 + int.from_bytes(apdu[5:7], "big"))
    return n, n


def _mask_command_data(apdu: bytes) -> str:
    start, end = _data_span(apdu)
    return apdu[:start].hex().upper() + _masked(apdu[start:end]) + apdu[end:].hex().upper()


def _selects_holder(apdu: bytes) -> bool:
    """Whether a SELECT names a holder file by FID or as the last FID of a path."""
    try:
        sel = iso.Select.from_apdu(CommandAPDU.decode(apdu))
    except FormatError:
        return False
    by_id = sel.by in (iso.BY_ID, iso.EF_BY_ID, iso.PATH_FROM_MF, iso.PATH_FROM_CURRENT)
    return by_id and sel.name[-2:] in PERSONAL_FIDS


class Masker:
    """Decides what to hide in the exchanges of one reader; remembers the selected EF."""

    def __init__(self, mask_personal: bool = True) -> None:
        self.mask_personal = mask_personal
        self._holder_selected = False
        self._personal_pending = False  # a personal answer continues in GET RESPONSE

    @staticmethod
    def _secret_command(apdu: bytes) -> bool:
        ins = apdu[1]
        if ins in PIN_INS:
            return True
        proprietary = bool(apdu[0] & 0x80)
        return proprietary and ins in (PBOC_PIN_INS, WRITE_KEY_INS)

    def command(self, apdu: bytes, secret: bool = False) -> str:
        if len(apdu) > 5 and (secret or self._secret_command(apdu)):
            return _mask_command_data(apdu)
        return apdu.hex().upper()

    def _personal(self, apdu: bytes, response: bytes) -> bool:
        """Whether this command reads a holder file, by what the file is however it is reached:
        by SFI, or as the current file after a SELECT by FID or path or an earlier SFI access
        (ISO 7816-4 §7.2.2: READ BINARY/RECORD with an SFI makes that EF current)."""
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        if ins == iso.INS_SELECT:
            if len(response) >= 2 and response[-2] in (0x90, 0x61):  # a refused SELECT changes nothing
                self._holder_selected = _selects_holder(apdu)
            return False
        if ins in (iso.INS_READ_RECORD, iso.INS_READ_BINARY):
            sfi = iso.file_sfi(ins, p1, p2)
            if sfi is not None:
                self._holder_selected = sfi in PERSONAL_SFIS
            return self._holder_selected
        return False

    def response(self, apdu: bytes, response: bytes, secret: bool = False) -> str:
        if len(apdu) < 4:
            return response.hex().upper()
        if apdu[1] == iso.INS_GET_RESPONSE and self._personal_pending:
            personal = True
        else:
            personal = self._personal(apdu, response)
        if personal or secret:
            self._personal_pending = len(response) >= 2 and response[-2] == 0x61
        else:
            self._personal_pending = False
        if ((self.mask_personal and personal) or secret) and len(response) > 2:
            return _masked(response[:-2]) + response[-2:].hex().upper()
        return response.hex().upper()


class TraceRecorder:
    """A channel observer writing JSON Lines to a path (truncated, or appended) or a text stream."""

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        reader_name: str = "",
        mask_personal: bool = True,
        *,
        append: bool = False,
        tz: tzinfo = BEIJING,
    ) -> None:
        if isinstance(target, (str, os.PathLike)):
            check_trace_output(target)  # never the journal, a card image, a deny list, a batch…
            try:
                self._stream: IO[str] = open(target, "a" if append else "w", encoding="utf-8")
            except OSError as exc:
                raise FormatError(f"cannot write trace {os.fspath(target)!r}: {exc.strerror}") from None
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.reader_name = reader_name
        self.mask_personal = mask_personal
        self._tz = tz
        self._maskers: dict[str, Masker] = {}
        self._failed = False

    def _masker(self, reader: str) -> Masker:
        masker = self._maskers.get(reader)
        if masker is None:
            masker = self._maskers[reader] = Masker(self.mask_personal)
        return masker

    def header(self, atr: bytes, reader: str | None = None) -> None:
        """Note a connect: the ATR the replay reader will answer with."""
        name = reader or self.reader_name
        self._maskers.pop(name, None)  # a reset deselects every file
        self._write({"atr": atr.hex().upper(), "reader": name})

    def __call__(self, exchange: Exchange) -> None:
        reader = exchange.reader or self.reader_name
        masker = self._masker(reader)
        is_secret = in_secret()
        self._write(
            {
                "t": datetime.fromtimestamp(exchange.started, self._tz).isoformat(),
                "reader": reader,
                "command": masker.command(exchange.command, is_secret),
                "response": masker.response(exchange.command, exchange.response, is_secret),
                "duration_ms": round(exchange.duration * 1000, 3),
            }
        )

    def _write(self, obj: dict[str, Any]) -> None:
        if self._stream.closed:
            return
        try:
            self._stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self._stream.flush()
        except OSError as exc:  # a full disk, a file system gone: one line, not a traceback
            self._failed = True
            name = getattr(self._stream, "name", "the trace")
            raise FormatError(f"cannot write trace {name!r}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._owned:
            try:
                self._stream.close()
            except OSError:
                if not self._failed:  # the failure was not reported by a write yet
                    raise

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class TraceEntry:
    """One recorded exchange: hex with ``**`` for masked bytes; ``line`` in the file."""

    command: str
    response: str
    duration_ms: float = 0.0
    reader: str = ""
    t: str = ""
    line: int = 0


class Trace(list[TraceEntry]):
    """The entries of a trace file, with the ATR of its first header (empty if none)."""

    def __init__(
        self,
        atr: bytes = b"",
        entries: Iterable[TraceEntry] = (),
        atrs: dict[str, bytes] | None = None,
    ) -> None:
        super().__init__(entries)
        self.atr = atr
        self.atrs: dict[str, bytes] = dict(atrs or {})  # first ATR of each reader

    @property
    def entries(self) -> tuple[TraceEntry, ...]:
        return tuple(self)

    def for_reader(self, reader: str) -> Trace:
        """Only the exchanges of one reader (a trace of a card and its PSAM)."""
        atr = self.atrs.get(reader, self.atr)
        return Trace(atr, (e for e in self if e.reader == reader), {reader: atr})


def _check_hex(text: object, what: str, line: int) -> str:
    if not isinstance(text, str) or len(text) % 2:
        raise FormatError(f"trace line {line}: {what} must be hex text with two digits per byte")
    for i in range(0, len(text), 2):
        pair = text[i : i + 2]
        if pair != MASK and not all(c in "0123456789abcdefABCDEF" for c in pair):
            raise FormatError(f"trace line {line}: {what} has {pair!r}, not hex")
    return text.upper()


def iter_trace(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Numbered JSON objects of a trace's lines (blank lines skipped)."""
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        yield number, json_object(text, f"trace line {number}")


def parse_trace(lines: Iterable[str]) -> Trace:
    """Parse trace lines; FormatError names the line of any problem."""
    atr: bytes | None = None
    atrs: dict[str, bytes] = {}
    entries: list[TraceEntry] = []
    for number, obj in iter_trace(lines):
        if "command" not in obj:
            if "atr" not in obj:
                raise FormatError(f"trace line {number}: missing 'command'")
            atr_text = _check_hex(obj["atr"], "atr", number)
            if MASK in atr_text:
                raise FormatError(f"trace line {number}: the ATR cannot be masked")
            value = bytes.fromhex(atr_text)
            atrs.setdefault(str(obj.get("reader", "")), value)
            if atr is None:
                atr = value
            continue
        if "response" not in obj:
            raise FormatError(f"trace line {number}: missing 'response'")
        response = _check_hex(obj["response"], "response", number)
        if len(response) < 4:
            raise FormatError(f"trace line {number}: a response needs SW1 SW2")
        duration = obj.get("duration_ms", 0.0)
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise FormatError(f"trace line {number}: duration_ms must be a number")
        entries.append(
            TraceEntry(
                _check_hex(obj["command"], "command", number),
                response,
                float(duration),
                str(obj.get("reader", "")),
                str(obj.get("t", "")),
                number,
            )
        )
    return Trace(atr or b"", entries, atrs)


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace file: a list of :class:`TraceEntry` (``.atr`` from its header)."""
    try:
        lines = read_text(path, "trace", LIMIT_TRACE).splitlines()
    except OSError as exc:
        raise FormatError(f"cannot read trace {os.fspath(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FormatError(f"trace {os.fspath(path)!r} is not UTF-8 text") from None
    return parse_trace(lines)


def matches(pattern: str, data: bytes) -> bool:
    """Whether hex ``pattern`` (with ``**`` wildcard bytes) matches ``data``."""
    if len(pattern) != 2 * len(data):
        return False
    actual = data.hex().upper()
    if MASK not in pattern:
        return pattern == actual
    return all(
        pattern[i : i + 2] in (MASK, actual[i : i + 2]) for i in range(0, len(pattern), 2)
    )


def concrete(pattern: str, fill: int = 0x00) -> bytes:
    """Bytes of a pattern, masked bytes replaced by ``fill``."""
    if MASK not in pattern:
        return bytes.fromhex(pattern)
    return bytes(
        fill if pattern[i : i + 2] == MASK else int(pattern[i : i + 2], 16)
        for i in range(0, len(pattern), 2)
    )
