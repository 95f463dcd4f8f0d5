"""TAC checking at settlement: every settled record's TAC recomputed with its issuer's keys.

The TAC is the card's word that it made the transaction (PBOC 3.0 e-purse,
JR/T 0025.2, the TAC of a purchase and a load; docs/settlement.md); ``ykt journal verify`` and the clearing
job call the same functions.
"""

from __future__ import annotations

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


def verify_records(records: Iterable[SettledRecord | dict[str, Any]], issuer: IssuerKeys, chunk: int = 20000,
                   progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Check every TAC (as ``cardlib.keys.verify_tac`` does, each card's key set up once), in this
    process: using many cores is the clearing job's business.

    ``records`` are journal records or batch lines; ``progress`` is told how many
    records each finished chunk held.
    """
    items = [r if isinstance(r, dict) else r.to_json() for r in records]
    failed: list[int] = []
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        failed.extend(_verify_chunk(issuer, part))
        if progress is not None:
            progress(len(part))
    return VerifyReport(len(items), tuple(failed))
