"""Shared by the terminal commands: journal path, slots, money for people."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cardlib.channel import Channel
from cardlib.readers.registry import parse_uri
from cardlib.trace import TraceRecorder
from cli.common import Options
from cli.session import card_reader_uri, show_exchanges, wait_for_card
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.session import Slots, open_psam, open_slots


def default_journal() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "yikatong"
    base.mkdir(parents=True, exist_ok=True)
    return base / "journal.db"


def is_sample_card(uri: str | None) -> bool:
    """The built-in sample card: ``sim`` without an image path, a fresh card every run."""
    if not uri:
        return False
    parsed = parse_uri(uri)
    return parsed.scheme == "sim" and not parsed.target and parsed.options.get("kind", "card") != "psam"


def open_journal(path: str | None, opts: Options, announce: bool = True, sync: str = "full") -> Journal:
    """The journal named, else the default one; the sample card's transactions (made again on a
    fresh card every run) never enter a journal the user did not name: they stay in memory."""
    if path is None and is_sample_card(opts.reader):
        opts.note("journal: none kept for the built-in sample card (--journal FILE keeps one)")
        journal = Journal(":memory:", opts.clock(), sync)
    else:
        target = Path(path) if path else default_journal()
        if path is None and announce:
            opts.note(f"journal: {target}")
        journal = Journal(target, opts.clock(), sync)
    click.get_current_context().call_on_close(journal.close)
    return journal


def open_terminal_slots(opts: Options, connect_card: bool = True) -> tuple[Slots, Channel]:
    slots = open_slots(card_reader_uri(opts), opts.psam)
    ctx = click.get_current_context()
    ctx.call_on_close(slots.close)
    if slots.announcement:
        opts.note(slots.announcement)
    channel = Channel(slots.card_reader)
    if opts.trace:
        recorder = TraceRecorder(opts.trace, slots.card_reader.name)
        ctx.call_on_close(recorder.close)
        channel.add_observer(recorder)
    show_exchanges(opts, channel)
    if connect_card:
        wait_for_card(slots.card_reader, opts)
        atr = slots.card_reader.connect()
        if opts.trace:
            recorder.header(atr)
    return slots, channel


def open_psam_slot(opts: Options) -> PsamClient:
    """The PSAM slot alone (a tap script brings its own cards)."""
    reader, psam = open_psam(opts.psam)
    click.get_current_context().call_on_close(reader.close)
    return psam
