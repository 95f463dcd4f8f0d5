"""The terminal loop keeps serving when the reader fails while a card is being connected."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.errors import ProtocolError, ReaderTimeoutError, TransportError
from cardlib.readers.pyhost import HostedReader
from simulators.issuer import sample_card
from simulators.psam import make_psam
from terminal.app import TerminalApp
from terminal.config import parse_config
from terminal.decision import Decision, Reason
from terminal.journal import Journal
from terminal.loop import run_loop
from terminal.psam import PsamClient
from terminal.roles import make_app

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=BEIJING)


class FlakyConnect(HostedReader):
    """A reader whose first connects fail the way a noisy PN532 line fails them."""

    def __init__(self, failures: list[TransportError]) -> None:
        super().__init__([sample_card(seed=3)])
        self.failures = failures

    def connect(self) -> bytes:
        if self.failures:
            raise self.failures.pop(0)
        return super().connect()

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        return True  # the rider lifts the card and presents it again


def flat_fare_validator(folder: Path, clock: Clock) -> tuple[TerminalApp, Journal]:
    """A bus validator charging a flat 2 yuan, with a simulated PSAM and a journal in ``folder``."""
    sam = HostedReader([make_psam()])
    sam.connect()
    journal = Journal(folder / "j.db", clock)
    app = make_app(parse_config({"terminal": {"role": "bus_validator"}, "fares": {"flat": 200}}),
                   PsamClient(Channel(sam), test=True), journal, clock)
    return app, journal


def test_a_reader_fault_while_connecting_is_a_tap_again_and_the_loop_goes_on(tmp_path: Path) -> None:
    app, journal = flat_fare_validator(tmp_path, Clock.fixed(T0))
    reader = FlakyConnect([ReaderTimeoutError("no answer to 4A"), ProtocolError("bad frame")])
    decisions: list[Decision] = []
    assert run_loop(app, reader, decisions.append, max_taps=3) == 3
    assert [d.reason for d in decisions] == [Reason.CARD_REMOVED, Reason.CARD_REMOVED, Reason.OK]
    assert [r.state for r in journal.records()] == ["completed"]  # the failed connects took nothing
    journal.close()
