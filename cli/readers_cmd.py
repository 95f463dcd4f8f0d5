"""`ykt readers`: what readers and reader backends this machine has."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click

from cardlib.errors import YktError
from cardlib.readers.registry import available_schemes
from cli.common import Options, common_options


def _pcsc_readers() -> tuple[list[dict[str, Any]], str | None]:
    try:
        pcsc = import_module("cardlib.readers.pcsc")  # needs pyscard
    except ImportError:
        return [], "PC/SC support not available"
    lister = getattr(pcsc, "list_pcsc_readers", None)
    if lister is None:
        return [], "PC/SC listing not available"
    try:
        return [
            {"index": i, "name": r.name, "card_present": r.card_present, "atr": r.atr.hex().upper()}
            for i, r in enumerate(lister())
        ], None
    except YktError as exc:
        return [], str(exc)


@click.command()
@common_options
def readers(opts: Options) -> None:
    """List PC/SC readers (card present, ATR) and the reader schemes available."""
    found, problem = _pcsc_readers()
    if opts.json:
        opts.emit({"pcsc": found, "pcsc_error": problem, "schemes": available_schemes()})
        return
    if problem:
        click.echo(f"PC/SC: {problem}")
    for r in found:
        card = f"card {r['atr']}" if r["card_present"] else "no card"
        click.echo(f"pcsc:{r['index']}  {r['name']}  ({card})")
    click.echo("schemes: " + ", ".join(available_schemes()))


@click.command()
@click.option("--count", type=int, default=0, help="Stop after this many events (0: until Ctrl-C).")
@common_options
def watch(count: int, opts: Options) -> None:
    """Print reader and card events as they happen (--json: one event a line)."""
    import json  # noqa: PLC0415

    from cardlib.readers.registry import open_reader  # noqa: PLC0415

    reader = open_reader(opts.reader)
    seen = 0
    try:
        for event in reader.events():
            seen += 1
            if opts.json:
                click.echo(json.dumps({"event": event.kind.value, "reader": event.reader,
                                       "atr": event.atr.hex().upper(), "time": event.time}))
            else:
                atr = f"  ATR {event.atr.hex(' ').upper()}" if event.atr else ""
                click.echo(f"{event.kind.value:20s} {event.reader}{atr}")
            if count and seen >= count:
                break
    finally:
        reader.close()
