"""`ykt apdu`: send APDUs and show each answer decoded."""

from __future__ import annotations

from typing import Any

import click

from cardlib.apdu import CommandAPDU
from cardlib.channel import Exchange
from cardlib.sw import describe
from cli.common import Options, common_options, parse_hex, wait_option
from cli.session import open_channel


@click.command()
@click.argument("apdus", nargs=-1, required=True, metavar="HEX...")
@click.option("--raw", is_flag=True, help="No T=0 handling: show 61xx/6Cxx as the card sent them.")
@wait_option
@common_options("reader", "json", "trace")
def apdu(apdus: tuple[str, ...], raw: bool, opts: Options) -> None:
    """Send each APDU to the card; exit 0 whatever the SW (the SW is data)."""
    commands = [CommandAPDU.decode(parse_hex(text, "APDU")) for text in apdus]
    channel = open_channel(opts, raw=raw)
    wire: list[Exchange] = []
    channel.add_observer(wire.append)
    results: list[dict[str, Any]] = []
    for command in commands:
        wire.clear()
        response = channel.transmit(command)
        total = sum(e.duration for e in wire)
        item: dict[str, Any] = {
            "command": command.hex(),
            "data": response.data.hex().upper(),
            "sw": f"{response.sw:04X}",
            "meaning": describe(response.sw),
            "duration_ms": round(total * 1000, 3),
            "exchanges": [
                {"command": e.command.hex().upper(), "response": e.response.hex().upper(),
                 "duration_ms": round(e.duration * 1000, 3)}
                for e in wire
            ],
        }
        results.append(item)
        if not opts.json:
            click.echo(f"> {command.encode().hex(' ').upper()}")
            if len(wire) > 1:
                for e in wire[1:]:
                    click.echo(f"  (then {e.command.hex(' ').upper()})")
            if response.data:
                click.echo(f"< {response.data.hex(' ').upper()}")
            click.echo(f"< {item['sw']}  {item['meaning']}  ({item['duration_ms']:.3f} ms)")
    if opts.json:
        opts.emit(results)
