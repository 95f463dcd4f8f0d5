"""A terminal on in-process cards for the fuzz and security suites: a PSAM of
the test issuer, a journal file, a fixed clock, and the role apps."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.readers.pyhost import HostedReader
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.app import TerminalApp
from terminal.config import parse_config
from terminal.denylist import DenyList
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app
from terminal.wallet import Wallet

WHEN = datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING)
BUS: dict[str, Any] = {"terminal": {"role": "bus_validator", "name": "bus", "line": "K1"}, "fares": {"flat": 200}}


def psam_client(**kw: Any) -> PsamClient:
    sam = HostedReader([make_psam(**kw)])
    sam.connect()
    return PsamClient(Channel(sam), test=True)


class Site:
    """One terminal's PSAM, journal and clock; ``tap`` puts cards in the field of an app."""

    def __init__(self, folder: str | os.PathLike[str], cfg: dict[str, Any] | None = None, **psam: Any) -> None:
        self.clock = Clock.fixed(WHEN)
        self.psam = psam_client(**psam)
        self.journal = Journal(Path(folder) / "journal.db", self.clock)
        self.cfg = cfg or BUS
        self.deny: DenyList | None = None
        self.reader = HostedReader()

    def app(self, cfg: dict[str, Any] | None = None) -> TerminalApp:
        return make_app(parse_config(cfg or self.cfg), self.psam, self.journal, self.clock, self.deny)

    def tap(self, *cards: Any, app: TerminalApp | None = None) -> Any:
        self.reader.remove()
        for card in cards:
            self.reader.insert(card)
        return (app or self.app()).tap(self.reader)

    def wallet(self, card: Any) -> Wallet:
        self.reader.remove()
        self.reader.insert(card)
        self.reader.connect()
        return Wallet(Channel(self.reader), self.psam, self.journal, self.clock)

    def close(self) -> None:
        self.journal.close()


def purchases_journal(path: str | os.PathLike[str], count: int) -> Journal:
    """A journal holding ``count`` completed purchases of different cards (settleable)."""
    site = Site(Path(path).parent)
    site.journal.close()
    site.journal = Journal(path, site.clock)
    for i in range(count):
        site.wallet(issue_card(CardProfile(balance=1000), seed=900 + i)).purchase(100 + i)
        site.clock.advance(60)
    return site.journal
