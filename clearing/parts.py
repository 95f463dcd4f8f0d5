"""Each card's lines in one partition without a shuffle: stage one's tasks split their rows by
a hash of the card number as they write them, and stage two reads one partition's pieces.

A card's records come from many terminals, so every batch holds a little of
many partitions. Partition ``p`` is the folder ``WORK/p00007``: one Arrow IPC
file per stage-one task that met its cards, and the previous run's state rows
of its cards (``state-*.arrow``). The hash is pandas' (``hash_array``: the same
in every process, where Python's ``hash`` of a text is not), so on a cluster
the workers agree on where a card goes; WORK must be on a file system they
all see, as the batches are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearing.checks import LINE_COLUMNS
from clearing.state import CARD_COLUMNS

STATE_PREFIX = "state-"
READ_ROWS = 262_144  # rows of a previous state read at once (a few MB of Arrow)


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {"str": pa.string(), "int64": pa.int64(), "bytes": pa.binary()}[kind]


def line_schema() -> Any:
    import pyarrow as pa

    return pa.schema([(c, _arrow_type(t)) for c, t in LINE_COLUMNS.items()])


def state_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("card", pa.string()), *((c, pa.int64()) for c in CARD_COLUMNS[1:])])


def folder(work: str, part: int) -> str:
    return os.path.join(work, f"p{part:05d}")


def partition_of(cards: Sequence[str], parts: int) -> Any:
    """Each card number's partition (a numpy array of int64)."""
    import numpy as np
    import pandas as pd

    return (pd.util.hash_array(np.asarray(cards, dtype=object)) % parts).astype(np.int64)


def write_lines(rows: Sequence[tuple[Any, ...]], parts: int, work: str, name: str) -> None:
    """Rows in ``LINE_COLUMNS`` order -> ``name.arrow`` in each partition some of their cards go to."""
    import pyarrow as pa

    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    schema = line_schema()
    table = pa.table([pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)], schema=schema)
    _write_split(table, partition_of(columns[list(LINE_COLUMNS).index("card")], parts), parts, work, f"{name}.arrow")


def write_state(path: str, parts: int, work: str, name: str) -> None:
    """A previous run's card state file -> ``state-name.arrow`` in each partition, read a slice
    at a time (a national day's state is larger than a task should hold)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = state_schema()
    for number, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS, columns=list(CARD_COLUMNS))):
        table = pa.Table.from_batches([batch]).cast(schema)
        cards = table.column("card").to_numpy(zero_copy_only=False)
        _write_split(table, partition_of(cards, parts), parts, work, f"{STATE_PREFIX}{name}-{number:05d}.arrow")


def _write_split(table: Any, part: Any, parts: int, work: str, file: str) -> None:
    import numpy as np
    import pyarrow as pa

    order = np.argsort(part, kind="stable")
    counts = np.bincount(part, minlength=parts)
    table = table.take(pa.array(order))
    start = 0
    for p, count in enumerate(counts.tolist()):
        if count:
            os.makedirs(folder(work, p), exist_ok=True)
            with pa.OSFile(os.path.join(folder(work, p), file), "wb") as sink, \
                    pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table.slice(start, count))
            start += count


def read_partition(work: str, part: int) -> Any:
    """One partition's lines and state rows as one pandas frame (``LINE_COLUMNS``)."""
    import pandas as pd
    import pyarrow as pa

    from clearing.chains import line_meta, state_rows

    where = Path(folder(work, part))
    files = sorted(where.glob("*.arrow")) if where.is_dir() else []
    lines = [_read(f) for f in files if not f.name.startswith(STATE_PREFIX)]
    states = [_read(f) for f in files if f.name.startswith(STATE_PREFIX)]
    frames = [pa.concat_tables(lines).to_pandas()] if lines else [line_meta()]
    if states:
        frames.append(state_rows(pa.concat_tables(states).to_pandas()))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _read(path: Path) -> Any:
    import pyarrow as pa

    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).read_all()


def state_files(path: Path) -> list[str]:
    """A state's ``cards.parquet``: one file (the generator's) or a folder of parts (a run's)."""
    return [str(path)] if path.is_file() else sorted(str(f) for f in path.glob("*.parquet"))
