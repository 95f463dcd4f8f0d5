"""`ykt denylist`: build, check and show the binary deny list (terminal/denylist.py)."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from cardlib.errors import FormatError, RefusedError
from cardlib.safefiles import GUARDED, check_output, open_regular
from cli.common import Options, common_options, echo_kv, parse_hex
from terminal.denylist import DenyList, build_denylist, parse_serial_lines


@click.group()
def denylist() -> None:
    """Deny lists of application serials."""


@denylist.command()
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Binary deny list to write.")
@click.option("--list-version", required=True, type=click.IntRange(0, 0xFFFFFFFF),
              help="Version number the terminals compare.")
@click.option("--force", is_flag=True, help="Replace an existing deny list, card image or batch at --out.")
@common_options("json")
def build(source: str, out: str, list_version: int, force: bool, opts: Options) -> None:
    """Build the binary list from a text or CSV file of 20-hex-digit serials ('-' reads stdin)."""
    check_output(out, "deny list", force=force, guard=GUARDED)
    try:
        raw = sys.stdin.buffer if source == "-" else open_regular(source, "serial list")
        size = _size(raw)  # a file shows its bytes read; a pipe, its lines
        with io.TextIOWrapper(raw, encoding="utf-8") as fh, \
                click.progressbar(fh if size is None else None, length=size, label="reading serials",
                                  hidden=not opts.progress(), file=sys.stderr) as bar:
            lines: Iterable[str] = bar if size is None else _counted(fh, bar.update)
            count = build_denylist(parse_serial_lines(lines), out, list_version)
    except OSError as exc:
        raise FormatError(f"cannot read {source!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{source}: not UTF-8 text") from None
    except FormatError as exc:
        raise FormatError(f"{source}: {exc}") from None
    if opts.json:
        opts.emit({"file": out, "count": count, "list_version": list_version})
    else:
        click.echo(f"{out}: {count} serial(s), list version {list_version}")


def _size(raw: Any) -> int | None:
    """The bytes to read, for the progress bar (None for a pipe)."""
    try:
        size = os.fstat(raw.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        return None
    return size or None


def _counted(lines: Iterable[str], advance: Callable[[int], None]) -> Iterator[str]:
    """The lines, telling ``advance`` how far the reading has come."""
    for line in lines:
        advance(len(line))
        yield line


@denylist.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("serials", nargs=-1, required=True)
@common_options("json")
def check(path: str, serials: tuple[str, ...], opts: Options) -> None:
    """Print whether each serial is listed; exit 1 when any is (2 when the list is refused)."""
    wanted = []
    for text in serials:
        serial = parse_hex(text, "serial")
        if len(serial) != 10:
            raise FormatError(f"serial {text!r}: 20 hex digits expected")
        wanted.append(serial)
    with DenyList(path) as deny:
        results = [(s.hex().upper(), s in deny) for s in wanted]
        version = deny.version
    if opts.json:
        opts.emit({"list_version": version, "results": [{"serial": s, "listed": listed} for s, listed in results]})
    else:
        for text, listed in results:
            click.echo(f"{text}  {'LISTED' if listed else 'not listed'}")
    listed_count = sum(listed for _, listed in results)
    if listed_count:
        raise RefusedError(f"{listed_count} of {len(results)} serial(s) deny-listed (list version {version})")


@denylist.command()
@click.argument("path", type=click.Path(dir_okay=False))
@common_options("json")
def show(path: str, opts: Options) -> None:
    """The header of a deny list, once the whole file passed every check a terminal makes."""
    with DenyList(path) as deny:  # refused (exit 2) when the SHA-256 or the index check fails
        out = {"file": path, **deny.header.to_json(), "sha256_ok": True, "index_ok": True}
    if opts.json:
        opts.emit(out)
    else:
        echo_kv([(k, str(v)) for k, v in out.items()])
