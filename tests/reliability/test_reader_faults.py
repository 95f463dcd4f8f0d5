"""Reader faults on the real stacks, under the running terminal loop: a PN532
whose serial device goes away and comes back, line noise (garbage, NACKs,
lost answers) at random moments of the PN532 link, and cards torn away at
random APDUs behind pcscd + vpcd. The loop keeps running, and no money or
journal record is lost: every card's balance is its issued balance less the
amounts its journal records say were taken, and nothing stays pending."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.keys import default_issuer, verify_tac
from cardlib.readers.base import Reader
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import open_reader
from simulators.faults import TEAR_AFTER, TEAR_BEFORE, FaultyCard
from simulators.field import open_field, wait_for
from simulators.issuer import CardProfile, SocialSecurityCard, issue_card
from simulators.pn532 import Pn532Emulator
from simulators.psam import make_psam
from terminal.app import TerminalApp
from terminal.config import parse_config
from terminal.decision import Decision
from terminal.journal import Journal
from terminal.loop import run_loop
from terminal.psam import PsamClient
from terminal.roles import make_app
from tests.pcsc_support import pcscd  # noqa: F401

BUS = {"terminal": {"role": "bus_validator", "name": "bus", "line": "K1"}, "fares": {"flat": 200},
       "windows": {"repeat_tap_seconds": 0}}
SEED = 7000


def bus(tmp_path: Path) -> TerminalApp:
    clock = Clock.fixed(datetime(2026, 11, 28, 7, 0, tzinfo=BEIJING))
    sam = HostedReader([make_psam()])
    sam.connect()
    return make_app(parse_config(BUS), PsamClient(Channel(sam), test=True), Journal(tmp_path / "j.db", clock), clock)


def leave(emu: Pn532Emulator, card: object) -> None:
    """The card leaves the field, and stays away long enough for the loop to see it go."""
    emu.remove(card)  # type: ignore[arg-type]
    threading.Event().wait(0.3)


class Loop:
    """The terminal loop in a thread, as a validator runs it."""

    def __init__(self, app: TerminalApp, reader: Reader) -> None:
        self.decisions: list[Decision] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run_loop, args=(app, reader, self.decisions.append, self.stop),
                                       kwargs={"poll": 0.05}, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 20) -> Decision:
        assert wait_for(lambda: len(self.decisions) >= count, timeout), f"no decision {count} within {timeout} s"
        assert self.thread.is_alive()
        return self.decisions[count - 1]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def cards(n: int, base: int) -> list[SocialSecurityCard]:
    return [issue_card(CardProfile(balance=1000), seed=base + i) for i in range(n)]


def assert_nothing_lost(app: TerminalApp, issued: list[SocialSecurityCard]) -> None:
    """Balance = issued − the journal's settled amounts, per card; nothing pending; every TAC verifies."""
    records = app.journal.records()
    assert [r.id for r in records if r.state == "pending"] == []
    for card in issued:
        taken = sum(r.amount for r in records if r.app_serial == card.app_serial and r.state in ("completed", "recovered"))
        assert card.balance == 1000 - taken, card.app_serial.hex()
    for r in records:
        if r.state in ("completed", "recovered"):
            assert r.tac is not None and verify_tac(default_issuer(), r.app_serial, r.tac_fields(), r.tac)
    assert app.journal.check_integrity() == []


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[Pn532Emulator, str]]:
    link = str(tmp_path / "ttyPN532")  # a stable name, as udev's /dev/serial/by-id gives one
    emu = Pn532Emulator()
    emu.start(link)
    yield emu, link
    emu.stop()


def test_pn532_unplugged_and_plugged_back(tmp_path: Path, emulator: tuple[Pn532Emulator, str]) -> None:
    emu, link = emulator
    app = bus(tmp_path)
    reader = open_reader(f"pn532:{link}?timeout=0.2")
    loop = Loop(app, reader)
    a, b = cards(2, SEED)
    try:
        emu.insert(a)
        assert loop.wait(1).open
        leave(emu, a)
        emu.stop()  # the USB-UART is pulled out while the loop polls
        threading.Event().wait(0.5)
        assert loop.thread.is_alive() and len(loop.decisions) == 1
        back = Pn532Emulator([b])  # plugged back: a new device behind the same name
        back.start(link)
        try:
            second = loop.wait(2)
            assert second.open and second.amount == 200
        finally:
            loop.close()
            back.stop()
    finally:
        reader.close()
    assert_nothing_lost(app, [a, b])


def test_pn532_line_noise_at_random_moments(tmp_path: Path, emulator: tuple[Pn532Emulator, str]) -> None:
    emu, link = emulator
    app = bus(tmp_path)
    reader = open_reader(f"pn532:{link}?timeout=0.2&retries=2")
    loop = Loop(app, reader)
    rng = random.Random(11)
    noisy = threading.Event()
    noisy.set()
    injected: list[int] = []

    def noise() -> None:
        faults = [lambda: emu.inject_garbage(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))),
                  lambda: emu.inject_nack(1), lambda: emu.drop_next_response(1)]
        while noisy.is_set() and not loop.stop.is_set():
            if not emu.faults_pending:  # one fault at a time, at a random moment
                rng.choice(faults)()
                injected.append(1)
            threading.Event().wait(rng.uniform(0.001, 0.01))

    issued = cards(6, SEED + 10)
    source = threading.Thread(target=noise, daemon=True)
    source.start()
    seen = 0
    try:
        for card in issued:  # each card tapped in the noise...
            emu.insert(card)
            seen += 1
            loop.wait(seen)
            leave(emu, card)
            app.clock.advance(5)
        noisy.clear()
        source.join(5)
        assert len(injected) >= 12  # the line really was noisy while cards were tapped (two faults a tap or more)
        for card in issued:  # ...and once more on a quiet line: torn ones are recovered
            emu.insert(card)
            seen += 1
            loop.wait(seen)
            leave(emu, card)
            app.clock.advance(5)
        assert loop.thread.is_alive()
    finally:
        noisy.clear()
        loop.close()
        reader.close()
    assert_nothing_lost(app, issued)
    assert sum(c.balance for c in issued) < 6000  # money did move through the noise and after it


def test_cards_torn_at_random_apdus_behind_pcscd(tmp_path: Path, pcscd: Any) -> None:  # noqa: F811
    app = bus(tmp_path)
    field = open_field("pcsc")
    loop = Loop(app, field.reader)
    rng = random.Random(5)
    issued = cards(4, SEED + 30)
    seen = 0
    try:
        for card in issued:
            # a bus tap on these cards is 11 APDUs (tests/terminal/test_tap_apdus.py): tear within it
            faulty = FaultyCard(card).at(rng.randrange(1, 12), rng.choice([TEAR_BEFORE, TEAR_AFTER]))
            field.insert(faulty)
            seen += 1
            loop.wait(seen)
            field.remove(faulty)
            faulty.clear()
            faulty.reinsert()
            app.clock.advance(20)
            field.insert(faulty)  # presented again within the recovery window
            seen += 1
            loop.wait(seen)
            field.remove(faulty)
        assert loop.thread.is_alive()
    finally:
        loop.close()
        field.close()
    assert_nothing_lost(app, issued)
    assert all(c.balance == 800 for c in issued)  # each paid once, torn or not
