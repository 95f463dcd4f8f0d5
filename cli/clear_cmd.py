"""`ykt clear`: a clearing centre's day over many terminals' batches (docs/settlement.md);
`ykt clear-day`: a generated day to clear. Dask is imported when the job starts."""

from __future__ import annotations

import sys
from datetime import date

import click

from cli.common import Options, common_options


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--register", "register_path", required=True, type=click.Path(dir_okay=False),
              help="Terminal register (CSV: terminal_id,operator,operator_name,station,line).")
@click.option("--keys", "key_paths", multiple=True, type=click.Path(),
              help="Issuer key file or folder of them (repeatable; default: the built-in TEST ONLY issuers).")
@click.option("--previous", type=click.Path(file_okay=False), help="The state folder an earlier run left.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: Parquet records and exceptions by day, pictures, summary.html.")
@click.option("--state-out", type=click.Path(file_okay=False), help="Where this run's state goes (default: OUT/state).")
@click.option("--scheduler", metavar="ADDRESS", help="A running Dask scheduler, e.g. tcp://HOST:8786.")
@click.option("--workers", type=click.IntRange(1), help="Worker processes of the local cluster (default: one per core).")
@click.option("--no-pictures", is_flag=True, help="Skip the PNG pictures and summary.html.")
@common_options
def clear(paths: tuple[str, ...], register_path: str, key_paths: tuple[str, ...], previous: str | None, out: str,
          state_out: str | None, scheduler: str | None, workers: int | None, no_pictures: bool, opts: Options) -> None:
    """Clear batch files (folders of *.jsonl or files): check, verify, chain, and split the money."""
    from cardlib.keystore import KeyStore, builtin_store  # noqa: PLC0415
    from clearing.engine import Job, batch_files, run  # noqa: PLC0415
    from clearing.register import TerminalRegister  # noqa: PLC0415
    from clearing.report import render  # noqa: PLC0415

    job = Job(batch_files(paths), TerminalRegister.load(register_path),
              KeyStore.load(key_paths) if key_paths else builtin_store(), out, previous, state_out, scheduler,
              workers, opts.debug)
    report = run(job)
    if not no_pictures:
        from clearing.pictures import draw  # noqa: PLC0415

        draw(out, report)
    sys.stdout.write(render(report, opts.json))


@click.command("clear-day")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the day into.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--transactions", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--cards", type=click.IntRange(1), help="Cards (default: 30 % of the transactions).")
@click.option("--day", default="2026-11-28", show_default=True, help="The day (Beijing).")
@click.option("--clean", is_flag=True, help="No injected faults.")
@common_options
def clear_day(out: str, seed: int, transactions: int, cards: int | None, day: str, clean: bool, opts: Options) -> None:
    """Generate a city's day of TEST ONLY batches with known faults (manifest.json)."""
    from cardlib.errors import FormatError  # noqa: PLC0415
    from clearing.generate import Faults, generate  # noqa: PLC0415

    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise FormatError(f"--day {day!r}: expected YYYY-MM-DD") from None
    made = generate(out, seed=seed, transactions=transactions, cards=cards, faults=Faults() if clean else None,
                    day=when)
    if opts.json:
        opts.emit(made.__dict__)
    else:
        click.echo(f"{made.transactions} transaction(s) of {made.cards} card(s) on {made.terminals} terminal(s):"
                   f" {made.batches} batch file(s) in {out}/batches; faults {made.faults}")
