"""Fault injection around any in-process card: tears, lost or corrupted answers,
delays, forced status words — at an APDU number, on an instruction, or by a
schedule, so tests reach every step of every flow (torn transactions of
JT/T 978 / PBOC EP included).

APDUs are numbered from 1 in the order they reach the card; ``count`` is the
number of the last one. After a tear the card is out of the field: every
``process`` and ``reset`` raises CardRemovedError until ``reinsert()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cardlib.errors import CardRemovedError, FormatError, ReaderTimeoutError
from cardlib.readers.base import Card


@dataclass(frozen=True)
class Fault:
    """What goes wrong with one APDU."""

    kind: str  # tear_before | tear_after | drop | corrupt | delay | force_sw | truncate
    seconds: float = 0.0
    sw: int = 0
    keep: int = 0  # truncate: the data bytes kept


TEAR_BEFORE = Fault("tear_before")  # removed before the card sees the command
TEAR_AFTER = Fault("tear_after")  # the card processed it, then left before answering
DROP = Fault("drop")  # processed, the answer is lost: ReaderTimeoutError
CORRUPT = Fault("corrupt")  # the answer's bits flipped (data; SW when there is no data)


def DELAY(seconds: float) -> Fault:  # reads like the other fault names
    """The answer comes ``seconds`` late."""
    if seconds < 0:
        raise FormatError(f"delay must not be negative, got {seconds}")
    return Fault("delay", seconds=seconds)


def FORCE_SW(sw: int) -> Fault:
    """The card answers ``sw`` alone without processing the command."""
    if not 0 <= sw <= 0xFFFF:
        raise FormatError(f"SW must be two bytes, got {sw:#x}")
    return Fault("force_sw", sw=sw)


def TRUNCATE(keep: int) -> Fault:
    """The card processes the command; its answer's data is cut to ``keep`` bytes, the SW
    kept (a 9000 that does not carry what the command answers)."""
    if keep < 0:
        raise FormatError(f"bytes kept must not be negative, got {keep}")
    return Fault("truncate", keep=keep)


Schedule = Callable[[int, bytes], Fault | None]


class _Armed:
    __slots__ = ("fault", "ins", "left")

    def __init__(self, ins: int, fault: Fault, occurrence: int) -> None:
        self.ins, self.fault, self.left = ins, fault, occurrence


class FaultyCard:
    """Wraps a card (the Card contract: atr, process, reset) and injects faults."""

    def __init__(self, card: Card, schedule: Schedule | None = None) -> None:
        self.card = card
        self.count = 0
        self.removed = False
        self.log: list[tuple[int, str]] = []  # (APDU number, fault kind)
        self._at: dict[int, Fault] = {}
        self._on_ins: list[_Armed] = []
        self._schedule = schedule

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def at(self, n: int, fault: Fault) -> FaultyCard:
        """Fault on APDU number ``n`` (counted from 1 since the wrapper was made)."""
        if n < 1:
            raise FormatError(f"APDU numbers start at 1, got {n}")
        self._at[n] = fault
        return self

    def on_ins(self, ins: int, fault: Fault, occurrence: int = 1) -> FaultyCard:
        """Fault on the ``occurrence``-th command with this INS from now on."""
        if occurrence < 1:
            raise FormatError(f"occurrence starts at 1, got {occurrence}")
        self._on_ins.append(_Armed(ins, fault, occurrence))
        return self

    def schedule(self, schedule: Schedule | None) -> FaultyCard:
        """Ask ``schedule(n, apdu)`` for a fault on every APDU (None: no fault)."""
        self._schedule = schedule
        return self

    def reinsert(self) -> None:
        """The torn card comes back into the field (the reader resets it on connect)."""
        self.removed = False

    def clear(self) -> None:
        """Disarm every fault still waiting."""
        self._at.clear()
        self._on_ins.clear()
        self._schedule = None

    def reset(self) -> bytes:
        if self.removed:
            raise CardRemovedError("card torn away")
        return self.card.reset()

    def _fault_for(self, apdu: bytes) -> Fault | None:
        fault = self._at.pop(self.count, None)
        if self._on_ins and len(apdu) > 1:
            for armed in list(self._on_ins):  # every arming counts its own occurrences
                if armed.ins == apdu[1]:
                    armed.left -= 1
                    if armed.left == 0:
                        self._on_ins.remove(armed)
                        fault = fault or armed.fault
        if fault is None and self._schedule is not None:
            fault = self._schedule(self.count, apdu)
        return fault

    def process(self, apdu: bytes) -> bytes:
        if self.removed:
            raise CardRemovedError("card torn away")
        self.count += 1
        fault = self._fault_for(apdu)
        if fault is None:
            return self.card.process(apdu)
        n = self.count
        self.log.append((n, fault.kind))
        kind = fault.kind
        if kind == "tear_before":
            self.removed = True
            raise CardRemovedError(f"card torn away before APDU {n}")
        if kind == "force_sw":
            return fault.sw.to_bytes(2, "big")
        if kind == "delay":
            time.sleep(fault.seconds)
            return self.card.process(apdu)
        return self._after(fault, n, self.card.process(apdu))

    def _after(self, fault: Fault, n: int, answer: bytes) -> bytes:
        """A fault that strikes once the card has processed APDU ``n``."""
        kind = fault.kind
        if kind == "tear_after":
            self.removed = True
            raise CardRemovedError(f"card torn away after APDU {n} was processed")
        if kind == "drop":
            raise ReaderTimeoutError(f"no answer to APDU {n}")
        if kind == "corrupt":
            if len(answer) > 2:
                return bytes(b ^ 0x5A for b in answer[:-2]) + answer[-2:]
            return bytes(b ^ 0x5A for b in answer)
        if kind == "truncate":
            return answer[: min(fault.keep, len(answer) - 2)] + answer[-2:]
        raise FormatError(f"unknown fault {kind!r}")
