"""A clearing run on Dask: one code path on this machine and on a cluster.

Stage one maps ``clearing.checks.check_file`` over the batch files (a Dask
bag; each task checks a chunk of files and writes their lines as one Parquet
part). Stage two reads the parts as a Dask DataFrame, adds the previous
run's card state, shuffles by card and maps ``clearing.chains.chain_partition``
over the partitions; the records, the exceptions and the new state are written
as Parquet in the same pass. The report is built from small aggregates read
back. Default: a ``LocalCluster`` of one worker process per core, one thread
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
from cardlib.settlement import forget_cards
from clearing.chains import OUT_COLUMNS, chain_partition, empty_frame, line_meta, state_rows
from clearing.checks import NO, BatchSummary, check_batch, write_part
from clearing.register import TerminalRegister
from clearing.report import batch_holes, build_report
from clearing.state import cards_path, read_terminals, write_terminals

log = logging.getLogger("clearing")
LINES_PER_PARTITION = 250_000  # after the shuffle by card: a few tens of MB of pandas per task
EXAMPLES = 10  # of each kind of record exception in the report
# The shuffle by card buffers what a worker sends to the others up to 1 GiB by default: on a
# day larger than that the buffers fill whatever the partitions' size. A smaller buffer sends
# sooner and keeps a worker's memory bounded by its tasks (a cluster's workers take their own).
P2P_CONFIG = {"distributed.p2p.comm.buffer": "128 MiB"}


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
    import dask

    n = workers or os.cpu_count() or 1
    with dask.config.set(P2P_CONFIG), LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
            silence_logs=level) as cluster, Client(cluster) as client:
        yield client


def run(job: Job) -> dict[str, Any]:
    """Clear the batches; write the Parquet outputs and the state; return the report."""
    with dask_client(job.scheduler, job.workers, job.debug) as client:
        return run_on(client, job)


def run_on(client: Any, job: Job) -> dict[str, Any]:
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd
    from dask.base import compute

    out = Path(job.out)
    work = out / "work"
    for sub in ("work", "records", "exceptions"):
        shutil.rmtree(out / sub, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    state_out = Path(job.state_out) if job.state_out else out / "state"
    shutil.rmtree(state_out / "cards.parquet", ignore_errors=True)
    previous_terminals = read_terminals(job.previous) if job.previous else {}

    # stage one: every batch checked, every TAC verified
    t0 = time.perf_counter()
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = max(1, min(64, -(-len(job.batches) // (workers * 4))))
    chunks = [(f"{i // size:06d}", job.batches[i: i + size]) for i in range(0, len(job.batches), size)]
    summaries: list[BatchSummary] = db.from_sequence(chunks, npartitions=len(chunks)).map(
        _check_chunk, job.register, job.store, str(work)).flatten().compute()
    summaries.sort(key=lambda s: s.file)
    holes = batch_holes(summaries, previous_terminals)
    lines_total = sum(s.count for s in summaries if s.status == "ok")
    log.info("stage one: %d batch(es), %d line(s) in %.1f s", len(summaries), lines_total, time.perf_counter() - t0)
    t0 = time.perf_counter()

    # stage two: by card, replays and chains; written as Parquet in one pass
    parts = sorted(str(p) for p in work.glob("*.parquet"))
    frames = [dd.read_parquet(parts)] if parts else []
    if job.previous:
        frames.append(dd.read_parquet(str(cards_path(job.previous))).map_partitions(state_rows, meta=line_meta()))
    writes = []
    if frames:
        frame = dd.concat(frames) if len(frames) > 1 else frames[0]
        npart = max(workers, -(-lines_total // LINES_PER_PARTITION))
        chained = frame.shuffle("card", npartitions=npart).map_partitions(chain_partition, meta=empty_frame())
        lines = chained[chained["row_kind"] == "line"]
        exceptions = lines[(lines["verdict"] != "accepted") | (lines["gap"] > 0) | lines["break"]]
        state = chained[chained["row_kind"] == "state"][["card", "s_online", "s_offline", "s_balance"]]
        state = state.rename(columns={"s_online": "online_next", "s_offline": "offline_next", "s_balance": "balance"})
        writes = [
            lines.to_parquet(str(out / "records"), partition_on=["day"], write_index=False, compute=False),
            exceptions.to_parquet(str(out / "exceptions"), partition_on=["day"], write_index=False, compute=False),
            state.to_parquet(str(state_out / "cards.parquet"), write_index=False, compute=False),
        ]
        compute(*writes)
    log.info("stage two: chains and Parquet in %.1f s", time.perf_counter() - t0)
    t0 = time.perf_counter()

    # the report, from aggregates read back
    if writes:
        records = dd.read_parquet(str(out / "records"),
                                  columns=["verdict", "gap", "break", "day", "issuer", "operator", "kind", "amount",
                                           "hour"])
        accepted = records[records["verdict"] == "accepted"]
        verdicts_s, gaps, breaks, hours_s, cells = compute(
            records["verdict"].value_counts(), records["gap"].sum(), records["break"].sum(),
            accepted["hour"].value_counts(),
            accepted.groupby(["day", "issuer", "operator", "kind"])["amount"]
            .agg(["sum", "count"]))
        verdicts = {str(k): int(v) for k, v in verdicts_s.items()}
        per_hour = {f"{int(h):02d}": int(v) for h, v in sorted(hours_s.items())}
        cells = cells.reset_index().rename(columns={"sum": "amount"}).astype({"day": str})
        has_exceptions = any((out / "exceptions").rglob("*.parquet"))
        examples: dict[str, list[dict[str, Any]]] = {}
        if has_exceptions:  # the first few of each kind per partition, on the workers; then of those
            exc = dd.read_parquet(str(out / "exceptions"), columns=EXAMPLE_COLUMNS)
            firsts = exc.map_partitions(_first_examples, meta=exc._meta).compute()
            examples = _examples(_first_examples(firsts))
    else:
        verdicts, gaps, breaks, examples, per_hour = {}, 0, 0, {}, {}
        cells = pd.DataFrame(columns=["day", "issuer", "operator", "kind", "amount", "count"])
    shutil.rmtree(work, ignore_errors=True)
    log.info("report aggregates in %.1f s", time.perf_counter() - t0)
    last = dict(previous_terminals)
    for s in summaries:
        if s.status == "ok" and s.batch_seq != NO:
            last[s.terminal] = max(last.get(s.terminal, NO), s.batch_seq)
    write_terminals(state_out, last)
    if not writes:  # an empty day keeps the previous cards' state
        if job.previous:
            shutil.copy(cards_path(job.previous), state_out / "cards.parquet")
    report = build_report(summaries, holes, verdicts, int(gaps), int(breaks), cells, examples,
                          job.register.operator_names())
    report["per_hour"] = per_hour
    return report


def _check_chunk(chunk: tuple[str, Sequence[str]], register: TerminalRegister, store: KeyStore,
                 work: str) -> list[BatchSummary]:
    """One task of stage one: a few files, their good lines in one Parquet part."""
    name, files = chunk
    rows: list[tuple[Any, ...]] = []
    try:
        summaries = [check_batch(path, register, store, rows) for path in files]
        if rows:
            write_part(rows, os.path.join(work, f"{name}.parquet"))
    finally:
        forget_cards()  # per-card caches bounded per task, not grown over the day
    return summaries


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
