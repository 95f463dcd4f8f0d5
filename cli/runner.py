"""Running a terminal application from the CLI: on a reader, or on a tap script
with virtual cards (the script's cards are card images, saved after every change)."""

from __future__ import annotations

from datetime import timedelta

from cardlib.clock import Clock
from cardlib.readers.pyhost import HostedReader
from simulators.faults import TEAR_AFTER, TEAR_BEFORE, FaultyCard
from simulators.image import load_card, release_card
from terminal.app import TerminalApp
from terminal.decision import Decision
from terminal.loop import Show
from terminal.taps import TapStep

#: The reader a tap script's cards are put in: named in the decisions and in the trace.
TAPS_READER = "sim-taps"


def run_taps(app: TerminalApp, steps: list[TapStep], clock: Clock, show: Show) -> list[Decision]:
    """Replay a tap script with virtual cards (file-backed: every change is saved)."""
    reader = HostedReader(name=TAPS_READER)
    decisions = []
    for step in steps:
        app.refresh_denylist()  # a list replaced between taps is taken up (or refused) before the next
        if step.time is not None:
            clock.set(step.time)
        if step.advance:
            clock.advance(timedelta(seconds=step.advance))
        held = [load_card(step.card)]  # each image held for its tap only
        try:
            card: object = held[0]
            if step.tear is not None:
                fault = TEAR_BEFORE if step.tear.when == "before" else TEAR_AFTER
                faulty = FaultyCard(card)  # type: ignore[arg-type]
                if step.tear.at is not None:
                    faulty.at(step.tear.at, fault)
                else:
                    faulty.on_ins(step.tear.ins or 0, fault)
                card = faulty
            reader.remove()
            reader.insert(card)  # type: ignore[arg-type]
            if step.second is not None:
                held.append(load_card(step.second))
                reader.insert(held[-1])
            decision = app.tap(reader)
        finally:
            for each in held:
                release_card(each)
        decisions.append(decision)
        show(decision)
    reader.remove()
    return decisions
