"""A city's day to clear: deterministic (``--seed``) batches with real TACs and known faults.

Cards of the built-in TEST ONLY issuers ride buses, pass metro gates, visit
museums and top up at metro ticket machines; every terminal exports two
batches (morning and afternoon) as ``ykt journal export`` writes them. Faults
are injected in known numbers and listed in ``manifest.json`` with the
counts a clearing run must report (with ``--previous`` pointing at the
``previous`` state written beside the batches):

* ``missing_batch``: one bus terminal's morning batch never came (a hole in
  its ``batch_seq``); its rides leave ``gap`` records on the cards;
* ``gap``: records taken out of their batch (each followed by a later
  purchase of the same card, so the hole shows);
* ``replay``: lines copied into the same terminal's afternoon batch;
* ``forged``: a TAC changed;
* ``break``: a card's last purchase with a balance that does not follow.

Cards touched by one fault are kept out of the others, so the counts add up.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cardlib.batch import BatchHeader, batch_digest, batch_lines, tac_message, write_batch
from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm
from cardlib.keys import IssuerKeys, derive_dtk
from cardlib.keystore import builtin_store
from cardlib.pboc import macs
from clearing.register import Terminal, TerminalRegister
from clearing.state import write_cards, write_terminals

# operator id, name, role, share of the purchase terminals, fare range (fen)
OPERATORS = (
    ("BUS-A", "城市公交", "bus", 0.45, (100, 200)),
    ("BUS-B", "郊区公交", "bus", 0.15, (200, 500)),
    ("METRO", "地铁", "metro", 0.35, (200, 900)),
    ("MUSEUM", "博物馆", "museum", 0.05, (0, 3000)),
)
LOAD_SHARE = 0.15  # cards whose day starts at a ticket machine


@dataclass(frozen=True)
class Faults:
    missing: int = 0
    replays: int = 0
    forged: int = 0
    balance_jumps: int = 0
    lost_batch: bool = False

    @classmethod
    def scaled(cls, transactions: int) -> Faults:
        n = max(1, transactions // 2000)
        return cls(missing=n, replays=n, forged=n, balance_jumps=max(1, n // 2), lost_batch=True)


@dataclass
class Day:
    """What was written: the manifest's content."""

    seed: int
    transactions: int
    cards: int
    terminals: int
    batches: int
    faults: dict[str, int] = field(default_factory=dict)
    totals: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, list[Any]] = field(default_factory=dict)


def generate(out: str | os.PathLike[str], *, seed: int = 1, transactions: int = 10_000, cards: int | None = None,
             faults: Faults | None = None, day: date = date(2026, 11, 28)) -> Day:
    """Write ``batches/``, ``register.csv``, ``previous/`` and ``manifest.json`` under ``out``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    faults = Faults.scaled(transactions) if faults is None else faults
    n = int(transactions)
    n_cards = max(1, min(n, cards if cards is not None else max(1, n * 3 // 10)))
    issuers = builtin_store().issuers
    root = Path(out)
    (root / "batches").mkdir(parents=True, exist_ok=True)

    # terminals: purchase terminals of each operator, and metro ticket machines for loads
    n_terms = int(min(5000, max(8, n // 2000)))
    terms: list[tuple[str, str, str, str]] = []  # (operator, name, role, line)
    for op, name, role, share, _ in OPERATORS:
        for k in range(max(1, round(n_terms * share))):
            terms.append((op, name, role, f"{role}-{k % 40 + 1}"))
    n_purchase_terms = len(terms)
    for k in range(max(1, n_terms // 20)):
        terms.append(("METRO", "地铁", "ticket", f"metro-{k % 40 + 1}"))
    tids = [f"{0x100000 + i:012X}" for i in range(len(terms))]
    register = TerminalRegister(Terminal(tid, op, name, f"{role.upper()}-{i:04d}", line)
                                for i, (tid, (op, name, role, line)) in enumerate(zip(tids, terms, strict=True)))
    register.write(root / "register.csv")

    # cards: issuer, serial, start-of-day counters
    issuer_of = (rng.random(n_cards) < 0.3).astype(np.int64)  # 70 % of the first city, 30 % of the second
    prefixes = ("3303", "4401")
    serials = [f"{prefixes[issuer_of[c]]}{c:016d}" for c in range(n_cards)]
    online0 = rng.integers(0, 500, n_cards)
    offline0 = rng.integers(0, 5000, n_cards)

    # transactions: each card at least one, in time order, strictly increasing seconds
    counts = 1 + rng.multinomial(n - n_cards, np.full(n_cards, 1.0 / n_cards))
    card = np.repeat(np.arange(n_cards), counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(n) - np.repeat(first, counts)
    peak = rng.random(n)  # rush hours around 8:00 and 18:00, the rest spread over the day
    secs = np.where(peak < 0.35, rng.normal(8 * 3600, 3600, n),
                    np.where(peak < 0.7, rng.normal(18 * 3600, 4000, n), rng.uniform(6 * 3600, 22 * 3600, n)))
    secs = np.clip(secs, 6 * 3600, 22 * 3600).astype(np.int64)
    order = np.lexsort((secs, card))
    secs = secs[order] + pos  # sorted within each card, then spread: strictly increasing
    has_load = rng.random(n_cards) < LOAD_SHARE
    is_load = (pos == 0) & has_load[card]
    term = np.where(is_load, n_purchase_terms + rng.integers(0, len(terms) - n_purchase_terms, n),
                    _pick_terminals(rng, terms, n_purchase_terms, n))
    lo = np.array([next(o[4][0] for o in OPERATORS if o[0] == terms[t][0]) for t in range(n_purchase_terms)] + [0]
                  * (len(terms) - n_purchase_terms))
    hi = np.array([next(o[4][1] for o in OPERATORS if o[0] == terms[t][0]) for t in range(n_purchase_terms)] + [1]
                  * (len(terms) - n_purchase_terms))
    amount = np.where(is_load, rng.choice([5000, 10000, 20000], n), rng.integers(lo[term], hi[term] + 1) // 10 * 10)
    spent = np.bincount(card, weights=np.where(is_load, 0, amount), minlength=n_cards).astype(np.int64)
    balance0 = spent + rng.integers(0, 20000, n_cards)
    delta = np.where(is_load, amount, -amount)
    running = np.cumsum(delta)
    before_card = np.repeat(running[first] - delta[first], counts)  # cumsum up to the card's first record
    balance_before = balance0[card] + running - delta - before_card
    balance_after = balance_before + delta
    card_seq = np.where(is_load, online0[card], offline0[card] + pos - has_load[card].astype(np.int64))

    # per terminal: its records in time order, journal ids and PSAM sequence numbers
    by_term = np.lexsort((secs, term))
    term_sorted = term[by_term]
    term_first = np.searchsorted(term_sorted, np.arange(len(terms)))
    rank = np.empty(n, dtype=np.int64)
    rank[by_term] = np.arange(n) - term_first[term_sorted]
    tseq0 = rng.integers(0, 100000, len(terms))
    batch_seq0 = rng.integers(1, 300, len(terms))
    afternoon = secs >= 13 * 3600

    # faults, on cards kept apart
    lost_term = -1
    drop = np.zeros(n, dtype=bool)
    forge = np.zeros(n, dtype=bool)
    jump = np.zeros(n, dtype=np.int64)
    replay: list[int] = []
    details: dict[str, list[Any]] = {"missing_batch": [], "gap": [], "replay": [], "forged": [], "break": []}
    if faults.lost_batch:
        buses = [t for t in range(n_purchase_terms) if terms[t][2] == "bus"]
        lost_term = int(buses[int(rng.integers(0, len(buses)))])
        drop |= (term == lost_term) & ~afternoon
        details["missing_batch"].append({"terminal": tids[lost_term], "batch_seq": int(batch_seq0[lost_term])})
    touched = np.zeros(n_cards, dtype=bool)
    touched[card[drop]] = True
    free = [int(c) for c in rng.permutation(n_cards) if not touched[c]]
    purchases_of = np.bincount(card, weights=~is_load, minlength=n_cards)

    def take(want: int, fits: Any) -> list[int]:
        chosen: list[int] = []
        while free and len(chosen) < want:
            c = free.pop()
            if fits(c):
                chosen.append(c)
        return chosen

    for c in take(faults.missing, lambda c: purchases_of[c] >= 2):
        idx = first[c] + counts[c] - 1 - int(rng.integers(1, purchases_of[c]))  # a purchase with a later one
        drop[idx] = True
        details["gap"].append({"card": serials[c], "card_seq": int(card_seq[idx])})
    for c in take(faults.forged, lambda c: True):
        idx = first[c] + int(rng.integers(0, counts[c]))
        forge[idx] = True
        details["forged"].append({"card": serials[c], "card_seq": int(card_seq[idx])})
    for c in take(faults.replays, lambda c: bool((~afternoon[first[c]: first[c] + counts[c]]).any())):
        idx = first[c] + int(np.flatnonzero(~afternoon[first[c]: first[c] + counts[c]])[0])
        replay.append(idx)
        details["replay"].append({"card": serials[c], "card_seq": int(card_seq[idx])})
    for c in take(faults.balance_jumps, lambda c: counts[c] >= 2 and not is_load[first[c] + counts[c] - 1]):
        idx = first[c] + counts[c] - 1
        jump[idx] = 1000
        details["break"].append({"card": serials[c], "card_seq": int(card_seq[idx])})

    # a withheld purchase shows as a gap when a later purchase of its card arrives
    last_delivered = np.full(n_cards, -1)
    delivered_purchase = ~drop & ~is_load
    np.maximum.at(last_delivered, card[delivered_purchase], np.flatnonzero(delivered_purchase))
    gaps = int(np.count_nonzero(drop & ~is_load & (last_delivered[card] > np.arange(n))))

    # the lines, per terminal and batch
    dtks: dict[int, Any] = {}
    start = datetime.combine(day, datetime.min.time(), BEIJING)
    cells: dict[tuple[str, str, str], list[int]] = {}
    files = 0
    for t in range(len(terms)):
        rows = by_term[term_first[t]: term_first[t + 1] if t + 1 < len(terms) else n]
        halves = (rows[~afternoon[rows]], rows[afternoon[rows]])
        lines_of: list[list[dict[str, Any]]] = [[], []]
        for half, idxs in enumerate(halves):
            for i in idxs:
                i = int(i)
                c = int(card[i])
                issuer = issuers[int(issuer_of[c])]
                load = bool(is_load[i])
                obj = {
                    "id": int(rank[i]) + 1, "state": "completed", "kind": "load" if load else "purchase",
                    "type": "02" if load else "06", "app_serial": serials[c], "card_seq": int(card_seq[i]),
                    "amount": int(amount[i]), "balance_before": int(balance_before[i] + jump[i]),
                    "balance_after": int(balance_after[i] + jump[i]), "terminal_id": tids[t],
                    "terminal_seq": None if load else int(tseq0[t] + rank[i]),
                    "time": (start + timedelta(seconds=int(secs[i]))).isoformat(), "tac": None,
                    "mac2": None, "mac2_verified": True, "algorithm": "3des", "key_version": 1, "key_index": 1,
                    "test": True, "station": f"{terms[t][2].upper()}-{t:04d}",
                    "line": terms[t][3], "extra": {}, "issuer_id": issuer.issuer_id.hex().upper(),
                }
                tac = _tac(dtks, c, issuer, serials[c], obj)
                obj["tac"] = (bytes([tac[0] ^ 0x5A]) + tac[1:] if forge[i] else tac).hex().upper()
                if not drop[i]:
                    lines_of[half].append(obj)
                    if not forge[i]:
                        key = (issuer.issuer_id.hex().upper(), terms[t][0], "load" if load else "purchase")
                        cell = cells.setdefault(key, [0, 0])
                        cell[0] += int(amount[i])
                        cell[1] += 1
        for i in replay:
            if int(term[i]) == t:
                lines_of[1].append(next(o for o in lines_of[0] if o["id"] == int(rank[i]) + 1))
        for half in (0, 1):
            if half == 0 and t == lost_term:
                continue
            seq = int(batch_seq0[t]) + half
            lines = batch_lines(lines_of[half])
            header = BatchHeader(f"{t:08X}{seq:08X}", tids[t], len(lines), sum(o["amount"] for o in lines_of[half]),
                                 batch_digest(lines), (start + timedelta(hours=13 if half == 0 else 23)).isoformat(),
                                 seq)
            with open(root / "batches" / f"{tids[t]}-{seq:06d}.jsonl", "w", encoding="utf-8", newline="") as fh:
                write_batch(fh, header, lines)
            files += 1

    write_cards(root / "previous", {"card": serials, "online_next": online0, "offline_next": offline0,
                                    "balance": balance0})
    write_terminals(root / "previous", {tids[t]: int(batch_seq0[t]) - 1 for t in range(len(terms))})
    result = Day(seed, n, n_cards, len(terms), files)
    result.faults = {"bad_batch": 0, "unknown_terminal": 0, "missing_batch": len(details["missing_batch"]),
                     "unknown_issuer": 0, "forged": int(forge.sum()), "replay": len(replay), "gap": gaps,
                     "break": int(np.count_nonzero(jump))}
    result.totals = [{"day": day.isoformat(), "issuer": k[0], "operator": k[1], "kind": k[2], "amount": v[0],
                      "count": v[1]} for k, v in sorted(cells.items())]
    result.details = details
    (root / "manifest.json").write_text(json.dumps(result.__dict__, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return result


def _pick_terminals(rng: Any, terms: list[tuple[str, str, str, str]], n_purchase: int, n: int) -> Any:
    """A purchase terminal for each transaction, operators weighted by their share."""
    import numpy as np

    share = {o[0]: o[3] for o in OPERATORS}
    per_op: dict[str, int] = {}
    for t in range(n_purchase):
        per_op[terms[t][0]] = per_op.get(terms[t][0], 0) + 1
    weights = np.array([share[terms[t][0]] / per_op[terms[t][0]] for t in range(n_purchase)])
    return rng.choice(n_purchase, n, p=weights / weights.sum())


def _tac(dtks: dict[int, Any], c: int, issuer: IssuerKeys, serial: str, obj: dict[str, Any]) -> bytes:
    tac_of = dtks.get(c)
    if tac_of is None:
        if len(dtks) > 100_000:
            dtks.clear()
        tac_of = dtks[c] = macs.tac_number_function(derive_dtk(issuer, bytes.fromhex(serial)), Algorithm.TDES)
    result: bytes = tac_of(*tac_message(obj))
    return result
