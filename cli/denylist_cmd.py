"""`ykt denylist`: build, check and show the binary deny list."""

from __future__ import annotations

import click

from cardlib.errors import FormatError, RefusedError
from cli.common import Options, common_options, parse_hex
from terminal.denylist import DenyList, build_denylist, parse_serial_lines


@click.group()
def denylist() -> None:
    """Deny lists of application serials."""


@denylist.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--list-version", default=1, type=int, show_default=True)
@common_options
def build(source: str, out: str, list_version: int, opts: Options) -> None:
    """Build the binary list from a text or CSV file of 20-hex-digit serials."""
    try:
        with open(source, encoding="utf-8") as fh:
            count = build_denylist(parse_serial_lines(fh), out, list_version)
    except OSError as exc:
        raise FormatError(f"cannot read {source!r}: {exc.strerror}") from None
    if opts.json:
        opts.emit({"file": out, "count": count, "list_version": list_version})
    else:
        click.echo(f"{out}: {count} serial(s), list version {list_version}")


@denylist.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("serials", nargs=-1, required=True)
@common_options
def check(path: str, serials: tuple[str, ...], opts: Options) -> None:
    """Exit 1 when any serial is listed."""
    deny = DenyList(path)
    results = {}
    for text in serials:
        serial = parse_hex(text, "serial")
        if len(serial) != 10:
            raise FormatError(f"serial {text!r}: 20 hex digits expected")
        results[serial.hex().upper()] = serial in deny
    if opts.json:
        opts.emit(results)
    else:
        for text, listed in results.items():
            click.echo(f"{text}  {'LISTED' if listed else 'not listed'}")
    if any(results.values()):
        raise RefusedError(f"{sum(results.values())} serial(s) deny-listed")


@denylist.command()
@click.argument("path", type=click.Path(dir_okay=False))
@common_options
def show(path: str, opts: Options) -> None:
    """The header of a deny list."""
    deny = DenyList(path, verify=True)
    out = {"format_version": deny.header.format_version, "list_version": deny.version, "count": len(deny),
           "sha256": deny.header.sha256.hex(), "sha256_ok": True}
    if opts.json:
        opts.emit(out)
    else:
        for k, v in out.items():
            click.echo(f"{k}: {v}")
