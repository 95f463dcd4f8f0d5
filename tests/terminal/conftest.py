"""A terminal on in-process cards: card and PSAM readers, a journal file, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.readers.pyhost import HostedReader
from simulators.psam import make_psam
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.wallet import Wallet


@dataclass
class Terminal:
    reader: HostedReader
    channel: Channel
    psam: PsamClient
    journal: Journal
    clock: Clock
    path: Path

    def wallet(self) -> Wallet:
        return Wallet(self.channel, self.psam, self.journal, self.clock)

    def tap(self, card: object) -> Wallet:
        self.reader.remove()
        self.reader.insert(card)  # type: ignore[arg-type]
        self.reader.connect()
        return self.wallet()

    def restart(self) -> None:
        self.journal.close()
        self.journal = Journal(self.path, self.clock)
        sam_reader = HostedReader([self.psam.channel.reader.cards[0]])  # type: ignore[attr-defined]
        sam_reader.connect()
        self.psam = PsamClient(Channel(sam_reader), test=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    clock = Clock.fixed(datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING))
    sam_reader = HostedReader([make_psam()])
    sam_reader.connect()
    psam = PsamClient(Channel(sam_reader), test=True)
    reader = HostedReader()
    path = tmp_path / "journal.db"
    t = Terminal(reader, Channel(reader), psam, Journal(path, clock), clock, path)
    yield t
    t.journal.close()
