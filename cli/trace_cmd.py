"""`ykt trace show`: read a recorded APDU trace."""

from __future__ import annotations

from typing import Any

import click

from cardlib.sw import describe
from cardlib.trace import read_trace
from cli.common import Options, common_options


@click.group()
def trace() -> None:
    """Recorded APDU traces (JSON Lines; replay one with --reader trace:FILE)."""


@trace.command()
@click.argument("path", type=click.Path(dir_okay=False))
@common_options("json")
def show(path: str, opts: Options) -> None:
    """List the exchanges of a trace with SW meanings."""
    recorded = read_trace(path)
    rows: list[dict[str, Any]] = []
    for entry in recorded.entries:
        sw = entry.response[-4:]
        meaning = describe(int(sw, 16)) if "*" not in sw and len(sw) == 4 else ""
        rows.append({"command": entry.command, "response": entry.response, "sw": sw,
                     "meaning": meaning, "duration_ms": entry.duration_ms, "t": entry.t,
                     "reader": entry.reader})
    if opts.json:
        opts.emit({"atr": recorded.atr.hex().upper(), "exchanges": rows})
        return
    if recorded.atr:
        click.echo(f"ATR {recorded.atr.hex(' ').upper()}")
    several = len({row["reader"] for row in rows}) > 1
    for i, row in enumerate(rows, 1):
        who = f" [{row['reader']}]" if several else ""
        click.echo(f"{i:4d} > {_spaced(row['command'])}{who}")
        click.echo(f"     < {_spaced(row['response'])}  {row['meaning']}  ({row['duration_ms']:.3f} ms)")


def _spaced(hex_text: str) -> str:
    """Bytes apart for reading; masked bytes stay ``**``."""
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))
