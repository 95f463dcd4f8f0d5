"""Opening readers and channels for a command, with ``--trace FILE`` attached.

Every command that talks to a card opens it here, so ``--trace`` and ``-v``
work the same everywhere: one recorder per command run (a card and its PSAM
share the file, each exchange names its reader), closed with the click
context. Without ``--reader`` the card is looked for as scriptor and
opensc-tool look for it (DESIGN.md): never a simulated card unasked.
"""

from __future__ import annotations

import math
import os
import sys

import click

from cardlib.channel import Channel, Exchange
from cardlib.errors import NoCardError, ReaderUnavailableError, YktError
from cardlib.readers.base import Reader
from cardlib.readers.registry import open_reader
from cardlib.trace import Masker, TraceRecorder, in_secret
from cli.common import Options

READER_ENV = "YKT_READER"
SAMPLE_HINT = "--reader sim tries the built-in sample card"


def card_reader_uri(opts: Options) -> str:
    """``--reader``, else ``$YKT_READER``, else the first PC/SC reader holding a card (named on
    stderr), else ReaderUnavailableError (exit 3) saying so in one line."""
    if opts.reader:
        return opts.reader
    chosen = os.environ.get(READER_ENV, "").strip()
    if chosen:
        opts.reader = chosen
        return chosen
    from cardlib.readers.pcsc import list_pcsc_readers  # pyscard is optional

    try:
        found = list_pcsc_readers()
    except YktError as exc:
        reason = str(exc).splitlines()[0]
    else:
        for index, info in enumerate(found):
            if info.card_present:
                opts.reader = f"pcsc:{index}"
                opts.note(f"reader: {opts.reader} ({info.name})")
                return opts.reader
        if found and opts.wait is not None:  # --wait: the first reader, for a card to come
            opts.reader = "pcsc:0"
            opts.note(f"reader: {opts.reader} ({found[0].name})")
            return opts.reader
        reason = f"no card in {', '.join(info.name for info in found)}" if found else "no PC/SC reader"
    raise ReaderUnavailableError(f"no card reader ({reason}; ${READER_ENV} is not set); {SAMPLE_HINT}")


def show_exchanges(opts: Options, channel: Channel) -> None:
    """``-v``: every exchange on stderr as it happens, masked as a trace masks it."""
    if opts.verbosity < 1:
        return
    masker = Masker()

    def show(exchange: Exchange) -> None:
        hidden = in_secret()
        click.echo(f"> {masker.command(exchange.command, hidden)}", err=True)
        click.echo(f"< {masker.response(exchange.command, exchange.response, hidden)}"
                   f"  ({exchange.duration * 1000:.3f} ms, {exchange.reader})", err=True)

    channel.add_observer(show)

_RECORDER_KEY = "ykt.trace_recorder"


def trace_recorder(opts: Options) -> TraceRecorder | None:
    """The recorder of ``--trace FILE`` for this command run (None without --trace)."""
    if not opts.trace:
        return None
    ctx = click.get_current_context()
    recorder: TraceRecorder | None = ctx.meta.get(_RECORDER_KEY)
    if recorder is None:
        recorder = TraceRecorder(opts.trace)
        ctx.meta[_RECORDER_KEY] = recorder
        ctx.call_on_close(recorder.close)
    return recorder


def open_channel(
    opts: Options, uri: str | None = None, raw: bool = False, connect: bool = True
) -> Channel:
    """Open the reader (the card's: :func:`card_reader_uri`, by default), connect, record to ``--trace``.

    The reader and the trace are closed when the click context ends.
    """
    ctx = click.get_current_context()
    reader: Reader = open_reader(uri or card_reader_uri(opts))
    ctx.call_on_close(reader.close)
    channel = Channel(reader, raw=raw)
    recorder = trace_recorder(opts)
    if recorder is not None:
        channel.add_observer(recorder)
    show_exchanges(opts, channel)
    if connect:
        wait_for_card(reader, opts)
        reconnect(channel)
    return channel


def wait_for_card(reader: Reader, opts: Options) -> None:
    """``--wait``: block on the reader's own wait-for-card until a card is there (NoCardError,
    exit 3, when the seconds run out); nothing without ``--wait``."""
    if opts.wait is None:
        return
    if sys.stderr.isatty():
        click.echo(f"waiting for a card in {reader.name} (Ctrl-C to stop)…", err=True)
    if not reader.wait_for_card(None if math.isinf(opts.wait) else opts.wait):
        raise NoCardError(f"no card in {reader.name} after waiting {opts.wait:g} s")


def reconnect(channel: Channel) -> bytes:
    """(Re)connect the channel's card and note its ATR in the trace."""
    atr = channel.reader.connect()
    ctx = click.get_current_context(silent=True)
    recorder = ctx.meta.get(_RECORDER_KEY) if ctx is not None else None
    if recorder is not None:
        recorder.header(atr, channel.reader.name)
    return atr
