"""`ykt readers` (what readers this machine has) and `ykt watch` (reader and card events)."""

from __future__ import annotations

import glob
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import click

from cardlib.clock import BEIJING
from cardlib.errors import YktError
from cardlib.readers.base import ReaderEvent
from cardlib.readers.registry import available_schemes
from cli.common import Options, common_options

SERIAL_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyS*")


def pcsc_readers() -> tuple[list[dict[str, Any]], str | None]:
    """PC/SC readers as JSON-ready rows, or the one-line reason there are none to show."""
    from cardlib.readers.pcsc import list_pcsc_readers  # pyscard is optional

    try:
        return [
            {"uri": f"pcsc:{i}", "index": i, "name": r.name, "card_present": r.card_present,
             "atr": r.atr.hex().upper()}
            for i, r in enumerate(list_pcsc_readers())
        ], None
    except YktError as exc:
        return [], str(exc)


def probe_pn532(path: str, timeout: float = 0.3) -> dict[str, Any]:
    """Whether a PN532 answers GetFirmwareVersion on a serial port."""
    from cardlib.readers.pn532 import Pn532Reader, open_serial

    row: dict[str, Any] = {"port": path, "uri": f"pn532:{path}", "pn532": False}
    try:
        port = open_serial(path, 115200, timeout)
    except YktError as exc:
        return {**row, "error": str(exc)}
    try:
        reader = Pn532Reader(port, f"pn532:{path}", timeout=timeout, retries=0)
    except YktError as exc:
        port.close()
        return {**row, "error": str(exc)}
    firmware = reader.firmware
    reader.close()
    row.update(pn532=True, firmware=firmware.hex().upper())
    if len(firmware) >= 3:
        row["version"] = f"{firmware[1]}.{firmware[2]}"
    return row


def serial_candidates(given: tuple[str, ...]) -> list[str]:
    if given:
        return list(given)
    return sorted(p for pattern in SERIAL_PATTERNS for p in glob.glob(pattern))


@click.command()
@click.option("--probe-serial", "probe", is_flag=True,
              help="Also probe serial ports for a PN532 (the PORTs given, else ttyUSB*, ttyACM*, ttyS*).")
@click.argument("ports", nargs=-1, metavar="[PORT...]")
@common_options("json")
def readers(probe: bool, ports: tuple[str, ...], opts: Options) -> None:
    """List PC/SC readers (card present, ATR) and the reader schemes available."""
    if ports and not probe:
        raise click.UsageError("serial PORTs go with --probe-serial")
    found, problem = pcsc_readers()
    serial: list[dict[str, Any]] = []
    if probe:
        candidates = serial_candidates(ports)
        with ThreadPoolExecutor(max_workers=8) as pool:  # a silent port costs a wake-up timeout
            serial = list(pool.map(probe_pn532, candidates))
    if opts.json:
        out: dict[str, Any] = {"pcsc": found, "pcsc_error": problem, "schemes": available_schemes()}
        if probe:
            out["serial"] = serial
        opts.emit(out)
        return
    if problem:
        click.echo(f"PC/SC: {problem}")
    elif not found:
        click.echo("PC/SC: no reader")
    for r in found:
        card = f"card {r['atr']}" if r["card_present"] else "no card"
        click.echo(f"{r['uri']}  {r['name']}  ({card})")
    if probe:
        if not serial:
            click.echo("serial: no port to probe")
        for row in serial:
            if row["pn532"]:
                click.echo(f"{row['uri']}  PN532 firmware {row.get('version', row['firmware'])}")
            else:
                click.echo(f"{row['port']}: no PN532 ({row['error']})")
    click.echo("schemes: " + ", ".join(available_schemes()))


def event_json(event: ReaderEvent) -> dict[str, Any]:
    """One event as DESIGN's JSON: ATR in upper-case hex, time ISO 8601 with offset (Beijing)."""
    return {"event": event.kind.value, "reader": event.reader, "atr": event.atr.hex().upper(),
            "time": datetime.fromtimestamp(event.time, BEIJING).isoformat(timespec="milliseconds")}


@click.command()
@click.option("--count", type=int, default=0, help="Stop after this many events (0: until Ctrl-C).")
@common_options("reader", "json")
def watch(count: int, opts: Options) -> None:
    """Print reader and card events as they happen (--json: one event a line).

    Without --reader: every PC/SC reader (readers plugged and unplugged, pcscd
    stopping and coming back). With --reader URI: that reader's events
    (polling where the transport has no events).
    """
    stream, closer = _event_source(opts)
    seen = 0
    try:
        for event in stream:
            seen += 1
            if opts.json:
                click.echo(json.dumps(event_json(event)))
            else:
                atr = f"  ATR {event.atr.hex(' ').upper()}" if event.atr else ""
                stamp = event_json(event)["time"][11:23]
                click.echo(f"{stamp}  {event.kind.value:20s} {event.reader}{atr}".rstrip())
            if count and seen >= count:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C is how watching ends
    finally:
        closer()


def _event_source(opts: Options) -> tuple[Any, Any]:
    if opts.reader is None:
        from cardlib.readers.pcsc_events import PcscWatcher

        watcher = PcscWatcher()
        return iter(watcher), watcher.stop
    from cardlib.readers.registry import open_reader

    reader = open_reader(opts.reader)
    return reader.events(), reader.close
