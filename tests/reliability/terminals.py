"""In-process terminals for the reliability suites: each with its own PSAM,
journal file on disk and explicit clock (tests/terminal/conftest.py's Terminal)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.readers.pyhost import HostedReader
from simulators.psam import make_psam
from terminal.journal import Journal
from terminal.psam import PsamClient
from tests.terminal.conftest import Terminal

START = datetime(2026, 11, 28, 7, 0, tzinfo=BEIJING)


def make_terminal(folder: Path, number: int) -> Terminal:
    """Terminal ``number``: its own PSAM (terminal 0000000001NN), journal file and clock."""
    clock = Clock.fixed(START)
    sam = HostedReader([make_psam(terminal_id=bytes.fromhex(f"0000000001{number + 1:02d}"), seed=number)])
    sam.connect()
    path = folder / f"terminal{number}.db"
    reader = HostedReader(name=f"terminal{number}")
    return Terminal(reader, Channel(reader), PsamClient(Channel(sam), test=True), Journal(path, clock), clock, path)
