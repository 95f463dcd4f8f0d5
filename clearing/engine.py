"""A clearing run on Dask: one code path on this machine and on a cluster.

Stage one maps ``clearing.checks.check_batch`` over the batch files (a Dask
bag; each task checks a chunk of files) and splits their lines by a hash of
the card into the partitions of stage two (``clearing.parts``; the previous
run's card state likewise): each card's lines meet in one partition without
a shuffle. Stage two maps ``clearing.chains.chain_partition`` over the
partitions (a Dask bag of partition numbers): the TACs, each card's key
derived once; replays and chains; each task writes its records, exceptions
and the cards' new state as Parquet and gives back small aggregates, from
which the client builds the report. No task holds more than a chunk of
files or a partition of cards, whatever the day's size. Default: a ``LocalCluster`` of one worker process per core, one thread
each (the work is pure Python and holds the GIL); ``scheduler`` names a
running cluster (``tcp://HOST:8786``), which must see the same files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardlib.errors import FormatError
from cardlib.keystore import KeyStore
from clearing.chains import OUT_COLUMNS, chain_partition
from clearing.checks import NO, BatchSummary, check_batch
from clearing.parts import read_partition, state_files, write_lines, write_state
from clearing.register import TerminalRegister
from clearing.report import batch_holes, build_report
from clearing.state import CARD_COLUMNS, cards_path, read_terminals, write_terminals

log = logging.getLogger("clearing")
LINES_PER_PARTITION = 100_000  # of cards, in stage two: a bounded frame per task whatever the day's size
FILES_PER_TASK = 48  # batch files a stage-one task checks (about 1,000 lines each)
BYTES_PER_LINE = 480  # a batch line's JSON, about: the partitions are counted before the files are read
EXAMPLES = 10  # of each kind of record exception in the report


@dataclass(frozen=True)
class Job:
    batches: tuple[str, ...]  # batch files, in name order
    register: TerminalRegister
    store: KeyStore
    out: str  # records/, exceptions/ (Parquet by day), batches.json; pictures beside
    previous: str | None = None  # a state folder of an earlier run
    state_out: str | None = None  # where this run's end state goes (default: out/state)
    scheduler: str | None = None  # tcp://HOST:8786; None: a LocalCluster here
    workers: int | None = None  # LocalCluster worker processes (default: one per core)
    debug: bool = False


def batch_files(paths: Sequence[str]) -> tuple[str, ...]:
    """Folders (their ``*.jsonl``) and files, each once, in name order."""
    found: set[str] = set()
    for p in paths:
        if os.path.isdir(p):
            found.update(str(f) for f in Path(p).glob("*.jsonl") if f.is_file())
        elif os.path.isfile(p):
            found.add(str(Path(p)))
        else:
            raise FormatError(f"no such batch file or folder: {p!r}")
    if not found:
        raise FormatError("no batch files (*.jsonl) given")
    return tuple(sorted(found, key=lambda f: (os.path.basename(f), f)))


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None, debug: bool) -> Iterator[Any]:
    """A client of the given scheduler, or of a LocalCluster started (and stopped) here."""
    from distributed import Client, LocalCluster

    level = logging.INFO if debug else logging.ERROR
    for name in ("distributed", "dask", "clearing"):
        logging.getLogger(name).setLevel(level)
    if debug and not log.handlers:
        log.addHandler(logging.StreamHandler())
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise FormatError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
            silence_logs=level) as cluster, Client(cluster) as client:
        yield client


def run(job: Job) -> dict[str, Any]:
    """Clear the batches; write the Parquet outputs and the state; return the report."""
    with dask_client(job.scheduler, job.workers, job.debug) as client:
        return run_on(client, job)


def run_on(client: Any, job: Job) -> dict[str, Any]:
    import dask.bag as db
    import pandas as pd
    from dask.base import compute

    out = Path(job.out)
    work = out / "work"
    for sub in ("work", "records", "exceptions"):
        shutil.rmtree(out / sub, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    state_out = Path(job.state_out) if job.state_out else out / "state"
    state_new = state_out / "cards.parquet.new"  # beside the old one until the run is done
    shutil.rmtree(state_new, ignore_errors=True)
    previous_terminals = read_terminals(job.previous) if job.previous else {}
    previous_cards = state_files(cards_path(job.previous)) if job.previous else []

    # stage one: every batch checked, its lines split by card into the partitions
    t0 = time.perf_counter()
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = max(1, min(FILES_PER_TASK, -(-len(job.batches) // (workers * 4))))
    chunks = [(f"{i // size:06d}", job.batches[i: i + size]) for i in range(0, len(job.batches), size)]
    lines_guess = sum(os.path.getsize(f) for f in job.batches) // BYTES_PER_LINE
    parts = workers * max(1, -(-lines_guess // (LINES_PER_PARTITION * workers)))
    found = db.from_sequence(chunks, npartitions=len(chunks)).map(
        _check_chunk, job.register, job.store, str(work), parts).flatten()
    states = db.from_sequence(list(enumerate(previous_cards)) or [(0, "")], npartitions=max(1, len(previous_cards)))
    summaries, _ = compute(found, states.map(_split_state, str(work), parts))
    summaries.sort(key=lambda s: s.file)
    holes = batch_holes(summaries, previous_terminals)
    lines_total = sum(s.count for s in summaries if s.status == "ok")
    log.info("stage one: %d batch(es), %d line(s) in %.1f s", len(summaries), lines_total, time.perf_counter() - t0)
    t0 = time.perf_counter()

    # stage two: per partition of cards, TACs, replays and chains; written as Parquet
    results: list[Partial] = db.from_sequence(range(parts), npartitions=parts).map(
        _chain_part, str(work), str(out), str(state_new), job.store).compute()
    shutil.rmtree(work, ignore_errors=True)
    old = state_out / "cards.parquet"
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()
    state_new.rename(old)
    log.info("stage two: TACs, chains and Parquet in %.1f s", time.perf_counter() - t0)

    # the report, from each partition's aggregates
    verdicts: dict[str, int] = {}
    hours: dict[int, int] = {}
    cells: dict[tuple[str, str, str, str], list[int]] = {}
    for r in results:
        for k, v in r.verdicts.items():
            verdicts[k] = verdicts.get(k, 0) + v
        for h, v in r.hours.items():
            hours[h] = hours.get(h, 0) + v
        for cell, (amount, count) in r.cells.items():
            total = cells.setdefault(cell, [0, 0])
            total[0] += amount
            total[1] += count
    firsts = [r.examples for r in results if len(r.examples)]
    examples = _examples(_first_examples(pd.concat(firsts))) if firsts else {}
    cell_frame = pd.DataFrame([(*k, v[0], v[1]) for k, v in cells.items()],
                              columns=["day", "issuer", "operator", "kind", "amount", "count"])
    last = dict(previous_terminals)
    for s in summaries:
        if s.status == "ok" and s.batch_seq != NO:
            last[s.terminal] = max(last.get(s.terminal, NO), s.batch_seq)
    write_terminals(state_out, last)
    report = build_report(summaries, holes, verdicts, sum(r.gaps for r in results), sum(r.breaks for r in results),
                          cell_frame, examples, job.register.operator_names())
    report["per_hour"] = {f"{h:02d}": v for h, v in sorted(hours.items())}
    return report


def _check_chunk(chunk: tuple[str, Sequence[str]], register: TerminalRegister, store: KeyStore,
                 work: str, parts: int) -> list[BatchSummary]:
    """One task of stage one: a few files, their good lines split by card into the partitions."""
    name, files = chunk
    rows: list[tuple[Any, ...]] = []
    summaries = [check_batch(path, register, store, rows) for path in files]
    write_lines(rows, parts, work, name)
    return summaries


def _split_state(item: tuple[int, str], work: str, parts: int) -> None:
    number, path = item
    if path:
        write_state(path, parts, work, f"{number:05d}")


@dataclass(frozen=True)
class Partial:
    """What a partition of cards gives the report: counts, cells and a few examples."""

    verdicts: dict[str, int]
    gaps: int
    breaks: int
    hours: dict[int, int]
    cells: dict[tuple[str, str, str, str], tuple[int, int]]  # (day, issuer, operator, kind) -> amount, count
    examples: Any  # the partition's first rows of each kind of exception (pandas)


def _chain_part(part: int, work: str, out: str, state_new: str, store: KeyStore) -> Partial:
    """One task of stage two: a partition's cards chained; records, exceptions (Parquet by day)
    and the cards' new state written; its aggregates back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    chained = chain_partition(read_partition(work, part), store)
    is_line = chained["row_kind"] == "line"
    lines = chained[is_line]
    state = chained[~is_line][["card", "s_online", "s_offline", "s_balance"]]
    state.columns = list(CARD_COLUMNS)
    os.makedirs(state_new, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(state, preserve_index=False), os.path.join(state_new, f"part-{part:05d}.parquet"))
    exceptions = lines[(lines["verdict"] != "accepted") | (lines["gap"] > 0) | lines["break"]]
    for frame, sub in ((lines, "records"), (exceptions, "exceptions")):
        if len(frame):
            pq.write_to_dataset(pa.Table.from_pandas(frame[RECORD_COLUMNS], preserve_index=False),
                                os.path.join(out, sub), partition_cols=["day"],
                                basename_template=f"part-{part:05d}-{{i}}.parquet")
    accepted = lines[lines["verdict"] == "accepted"]
    cells = accepted.groupby(["day", "issuer", "operator", "kind"])["amount"].agg(["sum", "count"])
    return Partial(
        {str(k): int(v) for k, v in lines["verdict"].value_counts().items()}, int(lines["gap"].sum()),
        int(lines["break"].sum()), {int(h): int(v) for h, v in accepted["hour"].value_counts().items()},
        {tuple(str(x) for x in k): (int(v["sum"]), int(v["count"])) for k, v in cells.iterrows()},  # type: ignore[misc]
        _first_examples(exceptions[EXAMPLE_COLUMNS]))


RECORD_COLUMNS = [c for c in OUT_COLUMNS if c != "message"]  # (the TAC input is in the key)
EXAMPLE_COLUMNS = ["card", "kind", "card_seq", "terminal", "file", "line_no", "gap", "verdict", "break"]
_EXAMPLE_ORDER = ["card", "kind", "card_seq", "file", "line_no"]


def _picks(exc: Any) -> dict[str, Any]:
    """Each kind of record exception's rows, in the report's order."""
    exc = exc.sort_values(_EXAMPLE_ORDER, kind="stable")
    return {
        "forged": exc[exc["verdict"] == "forged"], "unknown_issuer": exc[exc["verdict"] == "unknown_issuer"],
        "replay": exc[exc["verdict"] == "replay"], "gap": exc[exc["gap"] > 0], "break": exc[exc["break"]],
    }


def _first_examples(exc: Any) -> Any:
    """The first ``EXAMPLES`` rows of each kind: the first of the day's are among the first of
    its parts, so only these leave a worker (a bounded number, whatever the day's size)."""
    import pandas as pd

    frames = [frame.head(EXAMPLES) for frame in _picks(exc).values()]
    return pd.concat(frames).drop_duplicates() if len(exc) else exc


def _examples(exc: Any) -> dict[str, list[dict[str, Any]]]:
    if len(exc) == 0:
        return {}
    cols = ["card", "kind", "card_seq", "terminal", "file", "line_no", "gap"]
    return {k: [{c: (int(v) if c in ("card_seq", "line_no", "gap") else str(v)) for c, v in zip(cols, row, strict=True)}
                for row in frame[cols].head(EXAMPLES).itertuples(index=False)]
            for k, frame in _picks(exc).items() if len(frame)}


__all__ = ["OUT_COLUMNS", "Job", "batch_files", "dask_client", "run", "run_on"]
