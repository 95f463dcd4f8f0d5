"""`ykt script FILE`: run an APDU script, stop at the first mismatch (exit 1); ``-`` reads stdin."""

from __future__ import annotations

import sys
from typing import Any

import click

from cardlib.errors import FormatError, MismatchError
from cardlib.readers.base import Disposition
from cardlib.safefiles import LIMIT_SCRIPT, read_text
from cardlib.script import parse_script
from cardlib.sw import describe
from cli.common import Options, common_options, wait_option
from cli.session import open_channel, reconnect


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--raw", is_flag=True, help="No T=0 handling.")
@wait_option
@common_options("reader", "json", "trace")
def script(path: str, raw: bool, opts: Options) -> None:
    """Run an APDU script (ours or a pcsc-tools scriptor file) against the card.

    PATH ``-`` reads the script from standard input (as scriptor does).
    """
    steps = parse_script(_read_script(path))
    channel = open_channel(opts, raw=raw)
    results: list[dict[str, Any]] = []
    for step in steps:
        if step.kind == "echo":
            if not opts.json:
                click.echo(step.text)
            continue
        if step.kind == "reset":
            channel.reader.disconnect(Disposition.RESET)
            atr = reconnect(channel)
            if not opts.json:
                click.echo(f"reset: ATR {atr.hex(' ').upper()}")
            continue
        assert step.command is not None
        response = channel.transmit(step.command)
        ok = step.expect is None or step.expect.matches(response.encode())
        results.append({"line": step.line, "command": step.command.hex(),
                        "response": response.hex(), "sw": f"{response.sw:04X}",
                        "meaning": describe(response.sw), "ok": ok})
        if not opts.json:
            click.echo(f"> {step.command.encode().hex(' ').upper()}")
            click.echo(f"< {response.encode().hex(' ').upper()}  {describe(response.sw)}")
        if not ok:
            assert step.expect is not None
            if opts.json:
                opts.emit(results)
            where = f"line {step.line}" + (
                f" (expectation on line {step.expect.line})" if step.expect.line != step.line else ""
            )
            raise MismatchError(
                f"{where}: expected {step.expect.pattern}, card answered {response.hex()}"
            )
    if opts.json:
        opts.emit(results)


def _read_script(path: str) -> str:
    """The whole script, read before a card is opened: a bad line sends nothing.

    A file must be a regular file of at most LIMIT_SCRIPT bytes (a FIFO or a
    device is refused at once); standard input is read up to the same limit.
    """
    if path == "-":
        try:
            text = sys.stdin.read(LIMIT_SCRIPT + 1)
        except UnicodeDecodeError as exc:
            raise FormatError(f"script on standard input is not UTF-8 text: {exc.reason}") from None
        if len(text) > LIMIT_SCRIPT:
            raise FormatError(f"script on standard input is longer than {LIMIT_SCRIPT} characters")
        return text
    try:
        return read_text(path, "script", LIMIT_SCRIPT)
    except OSError as exc:
        raise FormatError(f"cannot read script {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FormatError(f"script {path!r} is not UTF-8 text") from None
