"""B6: settlement verification of 1 million transactions (TAC checks).

The records are settlement batch lines (``JournalRecord.to_json`` shape, as
``read_batch`` returns them) of 20,000 cards of the test issuer, 3DES, with
valid TACs. ``YKT_BENCH_SETTLE_N`` sets the count (default 1M).

* ours: ``terminal.journal.verify_records`` (what ``ykt journal verify`` runs):
  on one core (``workers=1``) and on every core (``workers=None``, forked
  workers);
* bare: a loop with ``cryptography``'s DES (TripleDES with K‖K‖K) in ECB
  doing the same MAC chain (ISO 9797-1 algorithm 1, padding 2, zero IV) over
  the same TAC inputs, already as bytes, with the same per-card TAC keys
  already derived (a context per card made on first use), comparing the first
  four bytes with the TAC.

Every core first: ours (``workers=None``) and the bare loop on as many forked
workers over the same chunks, in ABBA order (per-card contexts cold in every
pass; a neighbour taking a core slows both alike). Then one core: ours and
bare alternate over slices of 100,000 (each sets up its per-card contexts
once). The cards' derived keys are cached on
both sides from generating the records (``derive_dtk``'s cache; the bare loop
gets them as a list), so neither pays key derivation. Targets: one core ≥ 0.8× bare; every core used: our speed-up from one core
to all ≥ 0.8× the bare loop's speed-up measured beside it (on a quiet
2-core machine both approach 2×; the shared machines often lend less than
two cores, which this comparison cancels, and the load average is printed).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm, tac_key
from cardlib.keys import default_issuer, derive_dtk, verify_tac
from cardlib.pboc import macs
from terminal.journal import verify_records
from tests.bench.common import Result, banner, cores, knob, say

NAME = "B6"
TITLE = "settlement verification of 1 million transactions (TAC checks)"
CARDS = 20_000
SLICE = 100_000
TARGET_PER_CORE = 0.8
TARGET_SCALING = 0.8
TERMINAL = bytes.fromhex("010203040506")
START = datetime(2026, 11, 28, 6, 0, tzinfo=BEIJING)


def records(n: int, cards: int) -> tuple[list[dict[str, Any]], list[tuple[int, bytes, bytes]], list[bytes]]:
    """``n`` batch lines with valid TACs; the bare loop's (card, TAC input, TAC); each card's TAC key."""
    issuer = default_issuer()
    serials = [bytes.fromhex("3303000086") + i.to_bytes(5, "big") for i in range(cards)]
    keys = [tac_key(derive_dtk(issuer, s, Algorithm.TDES)) for s in serials]
    macers = [macs.tac_function(derive_dtk(issuer, s, Algorithm.TDES), Algorithm.TDES) for s in serials]
    hexes = [s.hex().upper() for s in serials]
    terminal_hex = TERMINAL.hex().upper()
    lines: list[dict[str, Any]] = []
    bare: list[tuple[int, bytes, bytes]] = []
    stamps: dict[int, tuple[str, bytes]] = {}
    for i in range(n):
        card = i % cards
        tx_type = 0x09 if i % 3 else 0x06
        amount = 100 + i % 900
        second = i // 20
        stamp = stamps.get(second)
        if stamp is None:
            stamps.clear()
            when = START + timedelta(seconds=second)
            date, clock = macs.bcd_datetime(when)
            stamp = stamps[second] = (when.isoformat(), date + clock)
        # TacFields.tac_input() of a purchase, written out (the check below goes through TacFields)
        data = amount.to_bytes(4, "big") + bytes((tx_type,)) + TERMINAL + i.to_bytes(4, "big") + stamp[1]
        tac = macers[card](data)
        bare.append((card, data, tac))
        lines.append({
            "id": i + 1, "state": "completed", "kind": "composite" if tx_type == 9 else "purchase",
            "type": f"{tx_type:02X}", "app_serial": hexes[card], "card_seq": i // cards, "amount": amount,
            "balance_before": 100_000, "balance_after": 100_000 - amount, "terminal_id": terminal_hex,
            "terminal_seq": i, "time": stamp[0], "tac": tac.hex().upper(), "mac2": "9ABCDEF0",
            "mac2_verified": True, "algorithm": "3des", "key_version": 1, "key_index": 1, "test": True,
            "station": "", "line": "", "extra": {},
        })
    # an independent check of a few, through the public one-TAC API
    for i in range(0, n, max(1, n // 50)):
        card, data, tac = bare[i]
        date, clock = macs.bcd_datetime(datetime.fromisoformat(lines[i]["time"]))
        f = macs.TacFields(int(lines[i]["type"], 16), lines[i]["amount"], TERMINAL, date, clock, terminal_seq=i)
        assert f.tac_input() == data and verify_tac(issuer, serials[card], f, tac), i
    return lines, bare, keys


def bare_verify(items: list[tuple[int, bytes, bytes]], keys: list[bytes], contexts: dict[int, Any]) -> int:
    """DES ECB, chained by hand: the MAC of each input, compared with its TAC; the count that verify."""
    ok = 0
    for card, data, tac in items:
        ecb = contexts.get(card)
        if ecb is None:
            ecb = contexts[card] = Cipher(TripleDES(keys[card] * 3), modes.ECB()).encryptor()
        padded = data + b"\x80"
        padded += bytes(-len(padded) % 8)
        chain = bytes(8)
        for i in range(0, len(padded), 8):
            x = int.from_bytes(padded[i : i + 8], "big") ^ int.from_bytes(chain, "big")
            chain = ecb.update(x.to_bytes(8, "big"))
        if chain[:4] == tac:
            ok += 1
    return ok


# What the bare loop's forked workers check (set before the pool forks, as verify_records does).
_BARE: tuple[list[tuple[int, bytes, bytes]], list[bytes]] | None = None
_CONTEXTS: dict[int, Any] = {}


def _bare_range(bounds: tuple[int, int]) -> int:
    assert _BARE is not None
    items, keys = _BARE
    return bare_verify(items[bounds[0] : bounds[1]], keys, _CONTEXTS)


def bare_parallel(items: list[tuple[int, bytes, bytes]], keys: list[bytes], workers: int, chunk: int) -> int:
    """``bare_verify`` on ``workers`` forked processes over chunks, as ``verify_records`` splits the work."""
    global _BARE
    bounds = [(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]
    _BARE = (items, keys)
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(bounds))) as pool:
            return sum(pool.imap(_bare_range, bounds))
    finally:
        _BARE = None


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    n = knob("YKT_BENCH_SETTLE_N", 1_000_000, 400, quick)
    cards = min(CARDS, max(1, n // 50))
    t0 = time.perf_counter()
    lines, bare, keys = records(n, cards)
    say(f"  {n:,} records of {cards:,} cards generated in {time.perf_counter() - t0:.1f} s")
    issuer = default_issuer()
    chunk = 20_000 if not quick else 50
    width = cores()

    # every core, ours and bare in ABBA order (each pass forks a fresh pool from a parent whose
    # per-card caches are still cold): a neighbour taking a core slows both alike
    all_walls: dict[str, float] = {"ours": 0.0, "bare": 0.0}
    for side in ("ours", "bare", "bare", "ours"):
        t0 = time.perf_counter()
        if side == "ours":
            report = verify_records(lines, issuer, workers=None, chunk=chunk)
            assert report.ok and report.checked == n, report.failed[:5]
        else:
            assert bare_parallel(bare, keys, width, chunk) == n
        all_walls[side] += (time.perf_counter() - t0) / 2

    step = SLICE if not quick else max(1, n // 4)
    one_wall = bare_wall = 0.0
    one_cpu = bare_cpu = 0.0
    contexts: dict[int, Any] = {}
    for k, start in enumerate(range(0, n, step)):
        part, part_bare = lines[start : start + step], bare[start : start + step]
        order = ("ours", "bare") if k % 2 == 0 else ("bare", "ours")
        for side in order:
            w0, c0 = time.perf_counter(), time.process_time()
            if side == "ours":
                r = verify_records(part, issuer, workers=1, chunk=chunk)
                assert r.ok
            else:
                assert bare_verify(part_bare, keys, contexts) == len(part_bare)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            if side == "ours":
                one_wall, one_cpu = one_wall + w, one_cpu + c
            else:
                bare_wall, bare_cpu = bare_wall + w, bare_cpu + c
    one, bare_rate = n / one_wall, n / bare_wall
    every, bare_every = n / all_walls["ours"], n / all_walls["bare"]
    ratio = one / bare_rate
    scaling, bare_scaling = every / one, bare_every / bare_rate
    result.figure("one_core_tacs_per_s", round(one), f"ours, one core: {one:,.0f} TACs/s "
                  f"({one_wall:.2f} s wall, {one_cpu:.2f} s CPU)")
    result.figure("bare_tacs_per_s", round(bare_rate), f"bare DES-ECB MAC loop, one core: {bare_rate:,.0f} TACs/s "
                  f"({bare_wall:.2f} s wall, {bare_cpu:.2f} s CPU)")
    result.figure("per_core_ratio", round(ratio, 3), f"ratio ours/bare per core: {ratio:.3f}")
    result.figure("all_cores_tacs_per_s", round(every), f"ours, every core ({width}): {every:,.0f} TACs/s "
                  f"({all_walls['ours']:.2f} s wall per pass) = {scaling:.2f}× one core")
    result.figure("bare_all_cores_tacs_per_s", round(bare_every),
                  f"bare loop, every core ({width} forked workers, same chunks): {bare_every:,.0f} TACs/s = "
                  f"{bare_scaling:.2f}× its one core")
    result.figure("load_average", [round(x, 2) for x in os.getloadavg()],
                  f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on {width} cores)")
    result.target(f"one core ≥ {TARGET_PER_CORE}× the bare DES-MAC loop", ratio >= TARGET_PER_CORE,
                  f"{one:,.0f} vs {bare_rate:,.0f} TACs/s = {ratio:.3f}")
    result.target(f"every core used: speed-up over one core ≥ {TARGET_SCALING}× the bare loop's",
                  scaling >= TARGET_SCALING * bare_scaling,
                  f"ours {scaling:.2f}× vs bare {bare_scaling:.2f}× on {width} cores "
                  f"(= {scaling / bare_scaling:.2f}; {every:,.0f} vs {one:,.0f} TACs/s)")
    result.figures["records"] = n
    result.figures["cards"] = cards
    return result
