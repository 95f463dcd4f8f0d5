"""`ykt station run`: several lanes and a pool of PSAMs in one process (docs/station.md)."""

from __future__ import annotations

import json
import signal
import threading

import click

from cli.common import Options, common_options, paint_state
from cli.terminal_support import open_journal
from terminal.station import Station
from terminal.station_config import load_station
from terminal.station_lane import LaneEvent


@click.group()
def station() -> None:
    """A station: several lanes and a pool of PSAMs (local and T-Union) in one process."""


@station.command(name="run")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Station TOML.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False),
              help="Journal database (default: station.journal, else the default journal).")
@click.option("--max-taps", default=0, type=int, help="Stop each lane after this many taps (0: until Ctrl-C).")
@common_options("json", "now")
def run(config_path: str, journal_path: str | None, max_taps: int, opts: Options) -> None:
    """Run every lane of the station until Ctrl-C; each decision on one output, the lane named."""
    config = load_station(config_path)
    journal = open_journal(journal_path or config.journal, opts, sync="write_ahead")
    station_ = Station(config, journal, opts.clock(), log=opts.note)
    click.get_current_context().call_on_close(station_.close)
    station_.start()

    def show(event: LaneEvent) -> None:
        if event.decision is not None:
            d = event.decision
            click.echo(json.dumps({"lane": event.lane, **d.to_json()}, ensure_ascii=False) if opts.json
                       else d.line(paint_state))
        elif opts.json:
            click.echo(json.dumps({"lane": event.lane, "status": event.status}, ensure_ascii=False))
        else:
            click.echo(f"{event.lane}: {event.status}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        taps = station_.run(show, stop, max_taps)
    except KeyboardInterrupt:
        stop.set()
        click.echo("stopped", err=True)
        return
    opts.note("taps: " + ", ".join(f"{lane} {n}" for lane, n in taps.items()))
