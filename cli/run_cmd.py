"""`ykt gate run` and `ykt validator run`: a terminal on a reader or a tap script."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click

from cardlib.clock import Clock
from cardlib.errors import ConfigError
from cli.common import Options, common_options, paint_state
from cli.terminal_support import open_journal, open_psam_slot, open_terminal_slots
from terminal.config import TerminalConfig, load_config
from terminal.current_denylist import CurrentDenyList
from terminal.decision import Decision
from terminal.loop import run_loop
from terminal.roles import make_app
from terminal.taps import read_taps


def _denylist(config: TerminalConfig) -> CurrentDenyList | None:
    """The configured deny list, open until the command ends; a bad one stops the start here,
    before any reader opens."""
    if not config.denylist:
        return None
    deny = CurrentDenyList(config.denylist, lambda line: click.echo(line, err=True), config.denylist_start_without)
    click.get_current_context().call_on_close(deny.close)
    return deny


def _run(config_path: str, taps: str | None, journal_path: str | None, max_taps: int, roles: tuple[str, ...],
         opts: Options) -> None:
    config = load_config(config_path)
    if config.role not in roles:
        raise ConfigError(f"{config_path}: terminal.role is {config.role!r}; this command runs {' or '.join(roles)}")
    if "psam" not in opts.given:  # --psam, even the default's URI, wins over the configuration
        opts.psam = config.psam
    deny = _denylist(config)
    trace_path, opts.trace = opts.trace, None  # the application records each tap itself
    if taps is not None:
        if "reader" in opts.given:
            raise click.UsageError("--reader does not go with --taps: the tap script names its cards")
        psam, card_reader_name = open_psam_slot(opts), "sim-taps"
    else:
        slots, _ = open_terminal_slots(opts, connect_card=False)
        psam, card_reader_name = slots.psam, slots.card_reader.name
    journal = open_journal(journal_path or config.journal, opts, sync=config.journal_sync)
    clock = opts.clock()
    if taps is not None and not clock.is_fixed:  # a tap script's times advance a clock of its own
        clock = Clock.fixed(clock.now())
    app = make_app(config, psam, journal, clock, deny)
    if trace_path:
        from cardlib.trace import TraceRecorder

        app.trace = TraceRecorder(trace_path, card_reader_name)
        click.get_current_context().call_on_close(app.trace.close)

    def show(d: Decision) -> None:
        click.echo(json.dumps(d.to_json(), ensure_ascii=False) if opts.json else d.line(paint_state))

    if taps is not None:
        from cli.runner import run_taps

        run_taps(app, read_taps(taps), clock, show)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_loop(app, slots.card_reader, show, stop, max_taps)
    except KeyboardInterrupt:
        stop.set()
        click.echo("stopped", err=True)


def _command(roles: tuple[str, ...], doc: str) -> Any:
    @click.command(name="run", help=doc)
    @click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Terminal TOML.")
    @click.option("--taps", type=click.Path(dir_okay=False), help="Tap script (virtual cards).")
    @click.option("--journal", "journal_path", type=click.Path(dir_okay=False), help="Journal database.")
    @click.option("--max-taps", default=0, type=int, help="Stop after this many taps (0: until Ctrl-C).")
    @common_options("reader", "psam", "json", "trace", "now")
    def run(config_path: str, taps: str | None, journal_path: str | None, max_taps: int, opts: Options) -> None:
        _run(config_path, taps, journal_path, max_taps, roles, opts)

    return run


@click.group()
def gate() -> None:
    """Entry gates: metro, parks, museums, libraries."""


@click.group()
def validator() -> None:
    """Bus validators."""


gate.add_command(_command(("metro_gate", "identity_gate"), "Run a gate on a reader, or on a tap script."))
validator.add_command(_command(("bus_validator",), "Run a bus validator on a reader, or on a tap script."))
