"""TAC checking at settlement: every settled record's TAC recomputed with its issuer's keys.

The TAC is the card's word that it made the transaction (PBOC 3.0 e-purse,
JR/T 0025.2 §9; docs/settlement.md); ``ykt journal verify`` and the clearing
job call the same functions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cardlib.batch import tac_message
from cardlib.crypto import Algorithm, constant_time_equal
from cardlib.errors import YktError
from cardlib.keys import IssuerKeys, derive_dtk
from cardlib.pboc import macs


class SettledRecord(Protocol):
    """Anything that writes itself as a batch line (the journal's records)."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    failed: tuple[int, ...]  # record ids whose TAC did not verify (or could not be read)

    @property
    def ok(self) -> bool:
        return not self.failed


_local = threading.local()
TacFunction = Callable[[int, int], bytes]


def tac_functions(issuer: IssuerKeys) -> dict[tuple[str, str], TacFunction]:
    """Per thread (TAC functions keep a chaining state) and per issuer: each card's TAC
    key is set up once for all the chunks a worker checks; bounded."""
    cache: dict[IssuerKeys, dict[tuple[str, str], TacFunction]] = _local.__dict__.setdefault("tacs", {})
    cards = cache.setdefault(issuer, {})
    if len(cards) > 200_000:
        cards.clear()
    return cards


def forget_cards() -> None:
    """Drop this thread's per-card TAC functions (about 2.7 KB a card): a worker that has
    checked its part of a day calls it, so what it holds is bounded by the part, not the day."""
    _local.__dict__.pop("tacs", None)


def tac_ok(issuer: IssuerKeys, obj: dict[str, Any], message: tuple[int, int] | None = None) -> bool:
    """Whether a batch line's TAC is its card's TAC over the line's fields; a line that
    cannot be read is not. ``message``: the line's ``tac_message``, when the caller has it."""
    tacs = tac_functions(issuer)
    try:
        card = (obj["app_serial"], obj["algorithm"])
        tac_of = tacs.get(card)
        if tac_of is None:
            alg = Algorithm.parse(card[1])
            tac_of = tacs[card] = macs.tac_number_function(derive_dtk(issuer, bytes.fromhex(card[0]), alg), alg)
        tac = bytes.fromhex(obj["tac"] or "")
        return len(tac) == 4 and constant_time_equal(tac_of(*(message or tac_message(obj))), tac)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError, YktError):
        return False


def _verify_chunk(issuer: IssuerKeys, items: Sequence[dict[str, Any]]) -> list[int]:
    bad = []
    for obj in items:
        if not tac_ok(issuer, obj):
            bad.append(int(obj.get("id", -1)) if isinstance(obj.get("id", -1), int) else -1)
    return bad


# What forked workers check: set before the pool forks, read from the inherited memory,
# so the records are never pickled to the workers (only the chunk bounds and the ids back).
_WORK: tuple[IssuerKeys, list[dict[str, Any]]] | None = None


def _verify_range(bounds: tuple[int, int]) -> list[int]:
    assert _WORK is not None
    issuer, items = _WORK
    return _verify_chunk(issuer, items[bounds[0] : bounds[1]])


def _single_threaded() -> bool:
    """Whether this process runs one thread, native ones counted (Linux: /proc/self/task).

    A forked child keeps only the forking thread; a lock another thread held
    (an allocator's background thread, as pyarrow's jemalloc starts) stays held
    there forever and the child hangs (POSIX fork(2)). With other threads alive
    the TACs are checked in this process instead: slower, never stuck.
    """
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        import threading

        return threading.active_count() == 1


def verify_records(records: Iterable[SettledRecord | dict[str, Any]], issuer: IssuerKeys, workers: int | None = 1,
                   chunk: int = 20000, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Check every TAC (as ``cardlib.keys.verify_tac`` does, each card's key set up once).

    ``records`` are journal records or batch lines. ``workers=None`` uses
    every core (forked processes over chunks, when this process has no other
    thread to fork beside); ``progress`` is told how many
    records each finished chunk held.
    """
    global _WORK
    items = [r if isinstance(r, dict) else r.to_json() for r in records]
    bounds = [(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]
    n = (os.cpu_count() or 1) if workers is None else max(1, workers)
    failed: list[int] = []

    def done(index: int, bad: list[int]) -> None:
        failed.extend(bad)
        if progress is not None:
            progress(bounds[index][1] - bounds[index][0])

    if n > 1 and len(bounds) > 1 and _single_threaded():
        import gc
        import multiprocessing

        _WORK = (issuer, items)
        gc.freeze()  # the workers' collections leave the inherited records alone: no copy-on-write of their pages
        try:
            with multiprocessing.get_context("fork").Pool(min(n, len(bounds))) as pool:
                for index, bad in enumerate(pool.imap(_verify_range, bounds)):
                    done(index, bad)
        finally:
            gc.unfreeze()
            _WORK = None
    else:
        for index, (start, end) in enumerate(bounds):
            done(index, _verify_chunk(issuer, items[start:end]))
    return VerifyReport(len(items), tuple(failed))
