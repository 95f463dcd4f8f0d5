"""Shared by the terminal commands: journal path, slots, money for people."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cardlib.channel import Channel
from cardlib.trace import TraceRecorder
from cli.common import Options
from cli.session import wait_for_card
from terminal.journal import Journal
from terminal.session import Slots, open_slots


def default_journal() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "yikatong"
    base.mkdir(parents=True, exist_ok=True)
    return base / "journal.db"


def open_journal(path: str | None, opts: Options, announce: bool = True, sync: str = "full") -> Journal:
    target = Path(path) if path else default_journal()
    if path is None and announce:
        click.echo(f"journal: {target}", err=True)
    journal = Journal(target, opts.clock(), sync)
    click.get_current_context().call_on_close(journal.close)
    return journal


def open_terminal_slots(opts: Options, connect_card: bool = True) -> tuple[Slots, Channel]:
    slots = open_slots(opts.reader, opts.psam)
    ctx = click.get_current_context()
    ctx.call_on_close(slots.close)
    if slots.announcement:
        click.echo(slots.announcement, err=True)
    channel = Channel(slots.card_reader)
    if opts.trace:
        recorder = TraceRecorder(opts.trace, slots.card_reader.name)
        ctx.call_on_close(recorder.close)
        channel.add_observer(recorder)
    if connect_card:
        wait_for_card(slots.card_reader, opts)
        atr = slots.card_reader.connect()
        if opts.trace:
            recorder.header(atr)
    return slots, channel


def yuan(fen: int) -> str:
    return f"{fen} fen (¥{fen / 100:.2f})"
