"""Opening readers and channels for a command, with ``--trace FILE`` attached.

Every command that talks to a card opens it here, so ``--trace`` works the
same everywhere: one recorder per command run (a card and its PSAM share
the file, each exchange names its reader), closed with the click context.
"""

from __future__ import annotations

import math
import sys

import click

from cardlib.channel import Channel
from cardlib.errors import NoCardError
from cardlib.readers.base import Reader
from cardlib.readers.registry import open_reader
from cardlib.trace import TraceRecorder
from cli.common import Options

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
    """Open the reader (``--reader`` by default), connect, record to ``--trace``.

    The reader and the trace are closed when the click context ends.
    """
    ctx = click.get_current_context()
    reader: Reader = open_reader(uri or opts.reader)
    ctx.call_on_close(reader.close)
    channel = Channel(reader, raw=raw)
    recorder = trace_recorder(opts)
    if recorder is not None:
        channel.add_observer(recorder)
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
