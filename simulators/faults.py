"""Fault injection around any in-process card: tears, lost or corrupted answers,
delays, forced status words — at an APDU number, on an instruction, or by a
schedule, so tests reach every step of every flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cardlib.errors import CardRemovedError, ReaderTimeoutError
from cardlib.readers.base import Card


@dataclass(frozen=True)
class Fault:
    kind: str  # tear_before | tear_after | drop | corrupt | delay | force_sw
    seconds: float = 0.0
    sw: int = 0


TEAR_BEFORE = Fault("tear_before")
TEAR_AFTER = Fault("tear_after")
DROP = Fault("drop")
CORRUPT = Fault("corrupt")


def DELAY(seconds: float) -> Fault:  # noqa: N802 - reads like the other fault names
    return Fault("delay", seconds=seconds)


def FORCE_SW(sw: int) -> Fault:  # noqa: N802
    return Fault("force_sw", sw=sw)


Schedule = Callable[[int, bytes], Fault | None]


class FaultyCard:
    """Wraps a card; ``count`` numbers the APDUs from 1."""

    def __init__(self, card: Card, schedule: Schedule | None = None) -> None:
        self.card = card
        self.count = 0
        self.removed = False
        self.log: list[tuple[int, str]] = []
        self._at: dict[int, Fault] = {}
        self._on_ins: list[tuple[int, Fault, int]] = []
        self._ins_seen: dict[int, int] = {}
        self._schedule = schedule

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def at(self, n: int, fault: Fault) -> FaultyCard:
        self._at[n] = fault
        return self

    def on_ins(self, ins: int, fault: Fault, occurrence: int = 1) -> FaultyCard:
        self._on_ins.append((ins, fault, occurrence))
        return self

    def reinsert(self) -> None:
        self.removed = False

    def clear(self) -> None:
        """Disarm every scheduled fault."""
        self._at.clear()
        self._on_ins.clear()
        self._schedule = None

    def reset(self) -> bytes:
        if self.removed:
            raise CardRemovedError("card torn away")
        return self.card.reset()

    def _fault_for(self, apdu: bytes) -> Fault | None:
        fault = self._at.pop(self.count, None)
        if fault is None and len(apdu) > 1:
            seen = self._ins_seen[apdu[1]] = self._ins_seen.get(apdu[1], 0) + 1
            for i, (ins, f, occurrence) in enumerate(self._on_ins):
                if ins == apdu[1] and occurrence == seen:
                    del self._on_ins[i]
                    fault = f
                    break
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
        self.log.append((self.count, fault.kind))
        if fault.kind == "tear_before":
            self.removed = True
            raise CardRemovedError(f"card torn away before APDU {self.count}")
        if fault.kind == "delay":
            time.sleep(fault.seconds)
            return self.card.process(apdu)
        if fault.kind == "force_sw":
            return fault.sw.to_bytes(2, "big")
        answer = self.card.process(apdu)
        if fault.kind == "tear_after":
            self.removed = True
            raise CardRemovedError(f"card torn away after APDU {self.count} was processed")
        if fault.kind == "drop":
            raise ReaderTimeoutError(f"no answer to APDU {self.count}")
        if fault.kind == "corrupt":
            return bytes(b ^ 0x5A for b in answer[:-2]) + answer[-2:] if len(answer) > 2 else b"\x6f\x00"
        raise ValueError(f"unknown fault {fault.kind}")
