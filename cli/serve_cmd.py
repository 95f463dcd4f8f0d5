"""`ykt sim serve FILE`: a card image behind real pcscd (the vpcd driver) or an
emulated PN532 on a pseudo-terminal, until `quit` or Ctrl-C.

stdin lines `insert`, `remove`, `quit` and SIGUSR1 (toggle) move the card.
"""

from __future__ import annotations

import sys

import click

from cardlib.errors import FormatError
from cli.common import Options, common_options


def parse_endpoint(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` → (host, port); the host defaults to 127.0.0.1."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise FormatError(f"--vpcd {text!r}: expected [HOST:]PORT") from None
    if not 0 < number < 65536:
        raise FormatError(f"--vpcd {text!r}: port must be 1..65535")
    return host.strip("[]") or "127.0.0.1", number


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--vpcd", "vpcd", metavar="[HOST:]PORT",
              help="Serve to pcscd's vpcd driver (35963 = Virtual PCD 00 00, 35964 = 00 01).")
@click.option("--pn532", is_flag=True, help="Serve behind an emulated PN532 on a pseudo-terminal.")
@click.option("--link", type=click.Path(), help="With --pn532: a stable symlink to the device.")
@common_options("json")
def serve(path: str, vpcd: str | None, pn532: bool, link: str | None, opts: Options) -> None:
    """Serve a card image until Ctrl-C; stdin lines `insert`, `remove`, `quit` (SIGUSR1 toggles)."""
    from simulators.image import load_card
    from simulators.vpcd import VpcdBridge, control_loop, serve_until_stopped

    if bool(vpcd) == pn532:
        raise FormatError("give exactly one of --vpcd [HOST:]PORT or --pn532")
    if link and not pn532:
        raise FormatError("--link goes with --pn532")
    card = load_card(path)
    if vpcd:
        host, port = parse_endpoint(vpcd)
        bridge = VpcdBridge(card, host, port)
        where = {"served": path, "vpcd": f"{host}:{port}", "reader": bridge.reader_name}
        _announce(opts, where, f"serving {path} to vpcd at {host}:{port} (PC/SC reader {bridge.reader_name!r})")
        serve_until_stopped(bridge)
        return
    from simulators.pn532 import Pn532Emulator

    emulator = Pn532Emulator([card])
    device = emulator.start(link)
    present = [True]

    def insert() -> None:
        present[0] = True
        emulator.insert(card)

    def remove() -> None:
        present[0] = False
        emulator.remove(card)

    def toggle() -> None:
        (remove if present[0] else insert)()

    _announce(opts, {"served": path, "pn532": device, "reader": f"pn532:{device}"},
              f"serving {path} behind a PN532 at {device} (reader pn532:{device})")
    control_loop(None, insert, remove, toggle, emulator.stop)


def _announce(opts: Options, where: dict[str, str], text: str) -> None:
    """Say where the card is served, on stdout at once (scripts wait for this line)."""
    if opts.json:
        opts.emit(where)
    else:
        click.echo(text)
    sys.stdout.flush()
