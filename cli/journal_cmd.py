"""`ykt journal`: show, export, verify and prune the terminal's journal."""

from __future__ import annotations

import re
import sys
from datetime import timedelta

import click

from cardlib.errors import FormatError, MacMismatchError
from cardlib.keys import load_issuer_keys
from cli.common import Options, common_options
from cli.terminal_support import yuan
from terminal.journal import STATES, Journal, read_batch, verify_records

JOURNAL = click.option("--journal", "journal_path", required=True, type=click.Path(dir_okay=False),
                       help="Journal database (SQLite).")


@click.group()
def journal() -> None:
    """The durable journal: show, export settlement batches, verify TACs, prune."""


def _open(path: str, opts: Options) -> Journal:
    j = Journal(path, opts.clock())
    click.get_current_context().call_on_close(j.close)
    return j


@journal.command()
@JOURNAL
@click.option("--state", type=click.Choice(STATES))
@common_options
def show(journal_path: str, state: str | None, opts: Options) -> None:
    """List records."""
    records = _open(journal_path, opts).records(state)
    if opts.json:
        opts.emit([r.to_json() for r in records])
        return
    for r in records:
        tag = " TEST" if r.test else ""
        click.echo(f"#{r.id:<5} {r.tx_time:%Y-%m-%d %H:%M:%S} {r.state:<9} {r.kind:<9} type {r.tx_type:02X} "
                   f"card {r.app_serial.hex().upper()} {yuan(r.amount)} TAC {(r.tac or b'').hex().upper() or '-'}{tag}")
    click.echo(f"{len(records)} record(s)", err=True)


@journal.command()
@JOURNAL
@click.option("--out", type=click.Path(dir_okay=False), help="Batch file (stdout when omitted).")
@click.option("--all", "all_records", is_flag=True, help="Include records exported before.")
@common_options
def export(journal_path: str, out: str | None, all_records: bool, opts: Options) -> None:
    """Write a settlement batch (JSON Lines: header, then one record a line)."""
    j = _open(journal_path, opts)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            header = j.export_batch(fh, all_records=all_records)
        click.echo(f"batch {header.batch_id}: {header.count} record(s), {yuan(header.total_amount)} → {out}", err=True)
    else:
        j.export_batch(sys.stdout, all_records=all_records)


@journal.command()
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False), help="Journal database.")
@click.option("--batch", type=click.Path(dir_okay=False), help="A settlement batch file instead.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), help="Issuer key file (default: the test issuer).")
@click.option("--workers", type=int, default=0, help="Processes (0: every core).")
@common_options
def verify(journal_path: str | None, batch: str | None, issuer_keys: str | None, workers: int, opts: Options) -> None:
    """Check every TAC with the issuer's keys; exit 4 when one fails."""
    if bool(journal_path) == bool(batch):
        raise FormatError("give exactly one of --journal or --batch")
    issuer = load_issuer_keys(issuer_keys)
    if batch:
        _, items = read_batch(batch)
    else:
        items = [r.to_json() for r in _open(journal_path or "", opts).records() if r.state in ("completed", "recovered")]
    report = verify_records(items, issuer, workers=workers or None)
    result = {"checked": report.checked, "failed": list(report.failed), "ok": report.ok}
    if opts.json:
        opts.emit(result)
    else:
        click.echo(f"{report.checked} TAC(s) checked, {len(report.failed)} failed")
    if not report.ok:
        raise MacMismatchError(f"TAC verification failed for record(s) {', '.join(map(str, report.failed[:10]))}")


def parse_age(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not m:
        raise FormatError(f"--older-than {text!r}: expected e.g. 30d, 12h or 90m")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


@journal.command()
@JOURNAL
@click.option("--older-than", required=True, help="Age, e.g. 30d.")
@common_options
def prune(journal_path: str, older_than: str, opts: Options) -> None:
    """Delete exported records older than the given age (never pending or unexported ones)."""
    n = _open(journal_path, opts).prune(parse_age(older_than))
    if opts.json:
        opts.emit({"pruned": n})
    else:
        click.echo(f"{n} record(s) pruned")
