"""`ykt clear`: a clearing centre's day over many terminals' batches (docs/settlement.md).
Dask is imported when the job starts; `ykt sim day` generates a day to clear."""

from __future__ import annotations

import sys

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
@common_options("json")
def clear(paths: tuple[str, ...], register_path: str, key_paths: tuple[str, ...], previous: str | None, out: str,
          state_out: str | None, scheduler: str | None, workers: int | None, no_pictures: bool, opts: Options) -> None:
    """Clear batch files (folders of *.jsonl or files): check, verify, chain, and split the money."""
    from cardlib.keystore import KeyStore, builtin_store
    from clearing.engine import Job, batch_files, run
    from clearing.register import TerminalRegister
    from clearing.report import render

    job = Job(batch_files(paths), TerminalRegister.load(register_path),
              KeyStore.load(key_paths) if key_paths else builtin_store(), out, previous, state_out, scheduler,
              workers, opts.debug)
    report = run(job)
    if not no_pictures:
        from clearing.pictures import draw

        draw(out, report)
    sys.stdout.write(render(report, opts.json))
