"""`ykt journal`: show, export, verify and prune the terminal's journal (docs/journal.md)."""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import timedelta

import click

from cardlib.batch import read_batch
from cardlib.errors import FormatError, MacMismatchError
from cardlib.keys import load_issuer_keys
from cardlib.safefiles import GUARDED, atomic_write, check_output, check_regular
from cardlib.settlement import verify_records
from cli.common import Options, common_options
from cli.terminal_support import yuan
from terminal.journal import SCHEMA_VERSION, STATES, Journal, JournalRecord
from terminal.journal_check import JournalCheck, check_journal

EXISTING_DB = click.Path(dir_okay=False, exists=True)
JOURNAL = click.option("--journal", "journal_path", required=True, type=EXISTING_DB, help="Journal database (SQLite).")


@click.group()
def journal() -> None:
    """The durable journal: show, check, export settlement batches, verify TACs, prune."""


def _open(path: str, opts: Options, readonly: bool = False) -> Journal:
    """An existing journal (a file that is not one is refused untouched); ``readonly`` for the
    commands that only read: opened with SQLite's mode=ro, never migrated."""
    j = Journal(path, opts.clock(), create=False, readonly=readonly)
    click.get_current_context().call_on_close(j.close)
    return j


def _checked(j: Journal, what: str, opts: Options) -> JournalCheck:
    """`ykt journal check` before a command that trusts the journal: its errors refuse the command."""
    report = check_journal(j)
    if not opts.json:
        for text in report.errors:
            click.echo(f"error: {text}", err=True)
    report.raise_if_failed(what)
    return report


def _line(r: JournalRecord) -> str:
    tac = (r.tac or b"").hex().upper() or "-"
    where = f" {r.station or r.line}" if (r.station or r.line) else ""
    note = f" ({r.failure_reason})" if r.failure_reason else ""
    return (f"#{r.id:<5} {r.tx_time:%Y-%m-%d %H:%M:%S} {r.state:<9} {r.kind:<9} {r.tx_type:02X} "
            f"{r.app_serial.hex().upper()} {yuan(r.amount):>8} TAC {tac:<8}{where}{' TEST' if r.test else ''}{note}")


@journal.command()
@JOURNAL
@click.option("--state", type=click.Choice(STATES), help="Only records in this state.")
@common_options("json")
def show(journal_path: str, state: str | None, opts: Options) -> None:
    """List records (oldest first)."""
    records = _open(journal_path, opts, readonly=True).records(state)
    if opts.json:
        opts.emit([r.to_json() for r in records])
        return
    for r in records:
        click.echo(_line(r))
    opts.note(f"{len(records)} record(s)")


@journal.command()
@JOURNAL
@click.option("--out", type=click.Path(dir_okay=False), help="Batch file (stdout when omitted).")
@click.option("--all", "all_records", is_flag=True, help="Include records exported before (in a new batch).")
@click.option("--batch-id", help="Write an earlier batch again (its file was lost).")
@click.option("--force", is_flag=True, help="Replace an existing batch, card image or deny list at --out.")
@common_options("json", "now")
def export(journal_path: str, out: str | None, all_records: bool, batch_id: str | None, force: bool,
           opts: Options) -> None:
    """Write a settlement batch (JSON Lines: a header, then one record a line)."""
    if out:  # before the batch is committed: a refused --out leaves the records unexported
        check_output(out, "batch", force=force, guard=GUARDED)
    j = _open(journal_path, opts, readonly=batch_id is not None)  # writing an old batch again only reads
    _checked(j, "export refused", opts)  # a journal that shows an edit is not settled
    if not out:  # the batch on stdout, its summary on stderr (as JSON with --json)
        header = j.export_batch(sys.stdout, all=all_records, batch_id=batch_id)
        sys.stdout.flush()
    else:
        with atomic_write(out, "batch", 0o644) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            try:
                header = j.export_batch(text, all=all_records, batch_id=batch_id)
                text.flush()
            except OSError as exc:
                # the batch is committed before it is written: name it, so it can be written again
                newest = batch_id or next(iter(b.batch_id for b in j.batches()[-1:]), "?")
                raise FormatError(f"cannot write batch {out!r}: {exc.strerror}; write it again with"
                                  f" --batch-id {newest}") from None
            text.detach()
    summary = {"batch_id": header.batch_id, "file": out, "count": header.count,
               "total_amount": header.total_amount, "sha256": header.sha256}
    if opts.json and out:
        opts.emit(summary)
    elif opts.json:
        click.echo(json.dumps(summary), err=True)
    else:
        opts.note(f"batch {header.batch_id}: {header.count} record(s), {yuan(header.total_amount)} → {out or 'stdout'}")


@journal.command()
@click.option("--journal", "journal_path", type=EXISTING_DB, help="Journal database.")
@click.option("--batch", type=click.Path(dir_okay=False, exists=True), help="A settlement batch file instead.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), help="Issuer key file (default: the TEST ONLY issuer).")
@common_options("json")
def verify(journal_path: str | None, batch: str | None, issuer_keys: str | None, opts: Options) -> None:
    """Check every settled record's TAC with the issuer's keys; exit 4 when one fails."""
    if bool(journal_path) == bool(batch):
        raise FormatError("give exactly one of --journal or --batch")
    issuer = load_issuer_keys(issuer_keys)
    if batch:
        check_regular(batch, "batch")  # a FIFO would hang the read
        _, items = read_batch(batch)
    else:
        j = _open(journal_path or "", opts, readonly=True)
        _checked(j, "verify", opts)
        items = [r.to_json() for state in ("completed", "recovered") for r in j.records(state)]
        items.sort(key=lambda x: x["id"])
    show_bar = opts.progress() and not opts.json and len(items) > 0
    if show_bar:
        with click.progressbar(length=len(items), label="verifying TACs", file=sys.stderr) as bar:
            report = verify_records(items, issuer, progress=bar.update)
    else:
        report = verify_records(items, issuer)
    result = {"checked": report.checked, "failed": list(report.failed), "ok": report.ok}
    if opts.json:
        opts.emit(result)
    else:
        for rid in report.failed:
            click.echo(f"record {rid}: TAC does not verify")
        click.echo(f"{report.checked} TAC(s) checked, {len(report.failed)} failed")
    if not report.ok:
        shown = ", ".join(map(str, report.failed[:10])) + (" …" if len(report.failed) > 10 else "")
        raise MacMismatchError(f"TAC verification failed for {len(report.failed)} record(s): {shown}")


@journal.command()
@JOURNAL
@common_options("json")
def check(journal_path: str, opts: Options) -> None:
    """Look for edits: deleted or copied records, repeated counters, test records passed off as real; exit 1 on one."""
    report = check_journal(_open(journal_path, opts, readonly=True))
    if opts.json:
        opts.emit(report.to_json())
    else:
        for kind, texts in (("error", report.errors), ("warning", report.warnings), ("note", report.notes)):
            for text in texts:
                click.echo(f"{kind}: {text}")
        click.echo(f"{report.records} record(s), {report.prunes} prune(s) recorded: {len(report.errors)} error(s),"
                   f" {len(report.warnings)} warning(s), {len(report.notes)} note(s)")
    report.raise_if_failed("journal check")


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``2w``."""
    m = re.fullmatch(r"(\d+)([wdhm])", text.strip())
    if not m:
        raise FormatError(f"--older-than {text!r}: expected a number and a unit, e.g. 30d, 2w, 12h or 90m")
    n, unit = int(m.group(1)), m.group(2)
    try:
        return timedelta(**{{"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[unit]: n})
    except OverflowError:
        raise FormatError(f"--older-than {text!r}: more than 999999999 days") from None


@journal.command()
@JOURNAL
@click.option("--older-than", required=True, help="Age of the transaction, e.g. 30d.")
@common_options("json", "now")
def prune(journal_path: str, older_than: str, opts: Options) -> None:
    """Delete exported records older than the given age (never pending or unexported ones)."""
    n = _open(journal_path, opts).prune(parse_age(older_than))
    if opts.json:
        opts.emit({"pruned": n})
    else:
        click.echo(f"{n} record(s) pruned")


@journal.command()
@JOURNAL
@common_options("json")
def migrate(journal_path: str, opts: Options) -> None:
    """Bring a journal of an older schema up to this version (the commands that only read never do)."""
    j = _open(journal_path, opts)
    before, after = j.schema_before, SCHEMA_VERSION
    if opts.json:
        opts.emit({"journal": journal_path, "schema_before": before, "schema": after})
    elif before == after:
        click.echo(f"{journal_path}: schema {after}, nothing to do")
    else:
        click.echo(f"{journal_path}: schema {before} → {after}")
