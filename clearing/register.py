"""The terminal register: which operator runs a terminal, at which station and on which line.

A CSV file (UTF-8, a header line) with the columns ``terminal_id`` (12 hex
digits), ``operator`` (an id), ``operator_name`` (what people read, may be
Chinese), ``station`` and ``line`` (either may be empty); docs/settlement.md.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cardlib.errors import FormatError

COLUMNS = ("terminal_id", "operator", "operator_name", "station", "line")


@dataclass(frozen=True)
class Terminal:
    terminal_id: str  # 12 upper-case hex digits, as batch headers write it
    operator: str
    operator_name: str
    station: str
    line: str


class TerminalRegister:
    def __init__(self, terminals: Iterable[Terminal]) -> None:
        self._by: dict[str, Terminal] = {}
        for t in terminals:
            if t.terminal_id in self._by:
                raise FormatError(f"terminal register: terminal {t.terminal_id} listed twice")
            self._by[t.terminal_id] = t

    def __iter__(self) -> Iterator[Terminal]:
        return iter(sorted(self._by.values(), key=lambda t: t.terminal_id))

    def __len__(self) -> int:
        return len(self._by)

    def find(self, terminal_id: str) -> Terminal | None:
        return self._by.get(terminal_id.upper())

    def operator_names(self) -> dict[str, str]:
        return {t.operator: t.operator_name or t.operator for t in self}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TerminalRegister:
        name = os.fspath(path)
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
        except OSError as exc:
            raise FormatError(f"cannot read terminal register {name!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise FormatError(f"terminal register {name}: not UTF-8 text") from None
        if not rows or tuple(c.strip() for c in rows[0]) != COLUMNS:
            raise FormatError(f"terminal register {name} line 1: the header must be {','.join(COLUMNS)}")
        terminals = []
        for number, row in enumerate(rows[1:], 2):
            if not row:
                continue
            if len(row) != len(COLUMNS):
                raise FormatError(f"terminal register {name} line {number}: {len(COLUMNS)} columns expected")
            tid = row[0].strip().upper()
            if len(tid) != 12 or not all(c in "0123456789ABCDEF" for c in tid):
                raise FormatError(f"terminal register {name} line {number}: terminal_id is not 12 hex digits")
            if not row[1].strip():
                raise FormatError(f"terminal register {name} line {number}: operator is empty")
            terminals.append(Terminal(tid, row[1].strip(), row[2].strip(), row[3].strip(), row[4].strip()))
        return cls(terminals)

    def write(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(COLUMNS)
            for t in self:
                out.writerow((t.terminal_id, t.operator, t.operator_name, t.station, t.line))
