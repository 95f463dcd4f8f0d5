"""Opening readers and channels for a command, with --trace attached."""

from __future__ import annotations

import click

from cardlib.channel import Channel
from cardlib.readers.base import Reader
from cardlib.readers.registry import open_reader
from cardlib.trace import TraceRecorder
from cli.common import Options


def open_channel(opts: Options, uri: str | None = None, raw: bool = False, connect: bool = True) -> Channel:
    """Open the reader (``--reader`` by default), connect, record to ``--trace``.

    Everything is closed when the click context ends.
    """
    ctx = click.get_current_context()
    reader: Reader = open_reader(uri or opts.reader)
    ctx.call_on_close(reader.close)
    channel = Channel(reader, raw=raw)
    recorder = None
    if opts.trace:
        recorder = TraceRecorder(opts.trace, reader.name)
        ctx.call_on_close(recorder.close)
        channel.add_observer(recorder)
    if connect:
        atr = reader.connect()
        if recorder is not None:
            recorder.header(atr, reader.name)
    return channel
