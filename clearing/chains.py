"""Stage two of a clearing run, per card: replays across batches and each card's chains.

A plain function of one partition that holds every line of its cards (the
engine puts each card in one partition by a hash of its number,
``clearing.parts``) and their state from the previous run (rows with
``row_kind == "state"``). First the TACs stage one left ``unverified`` are
checked, card after card. Then per card, in time order:

* a line whose replay key (``cardlib.batch.replay_key``) came before is a
  ``replay``; the first one (time, terminal, batch_seq, line) stands;
* two counters, online (loads) and offline (purchases): each value follows
  the one before (or the previous run's next value). A jump is a ``gap`` of
  that many missing records; a value that goes back is a ``break``;
* balances in time order: each line's balance before is the balance after
  of the line before, else a ``break`` — except across a gap (the missing
  record explains it) or next to a rejected line (its balances are not the
  card's word);
* lines rejected for their TAC (``forged``, ``unknown_issuer``) hold their
  counter value: they are counted as rejected, not as gaps.

The card's end state (next counters, last balance) comes back as state rows.
"""

from __future__ import annotations

from typing import Any

from cardlib.keys import IssuerKeys
from cardlib.keystore import KeyStore
from cardlib.settlement import forget_cards
from clearing.checks import LINE_COLUMNS, NO, UNVERIFIED, tac_verified

OUT_COLUMNS: dict[str, str] = {**LINE_COLUMNS, "verdict": "str", "gap": "int64", "break": "bool"}
DTYPES = {c: (object if t == "bytes" else t) for c, t in OUT_COLUMNS.items()}  # pandas dtypes
VERDICTS = ("accepted", "forged", "unknown_issuer", "replay")


def empty_frame() -> Any:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in DTYPES.items()})


def line_meta() -> Any:
    return empty_frame()[list(LINE_COLUMNS)]


def state_rows(cards: Any) -> Any:
    """The previous run's card state (``clearing.state``) as rows of the lines' frame."""
    frame = line_meta().reindex(range(len(cards)))
    for c, t in LINE_COLUMNS.items():
        frame[c] = "" if t == "str" else (b"" if t == "bytes" else NO)
    frame["row_kind"] = "state"
    frame["card"] = cards["card"].to_numpy()
    frame["s_online"] = cards["online_next"].to_numpy()
    frame["s_offline"] = cards["offline_next"].to_numpy()
    frame["s_balance"] = cards["balance"].to_numpy()
    return frame.astype({c: DTYPES[c] for c in LINE_COLUMNS})


def chain_partition(df: Any, store: KeyStore | None = None) -> Any:
    """Lines and state rows of some cards -> the lines with their verdict, gap and break,
    followed by one state row per card. ``unverified`` lines have their TAC checked first with
    ``store``'s keys, card after card (each card's key derived once; bounded per partition)."""
    import numpy as np
    import pandas as pd

    if len(df) == 0:
        return empty_frame()
    df = df.assign(_state=(df["row_kind"] != "state").astype("int64"))
    df = df.sort_values(["card", "_state", "time", "terminal", "batch_seq", "line_no"], kind="stable")
    df = df.drop(columns="_state").reset_index(drop=True)
    n = len(df)
    card_array = df["card"].to_numpy(dtype=object)
    card = card_array.tolist()
    state = (df["row_kind"] == "state").to_numpy().tolist()
    load = (df["kind"] == "load").to_numpy().tolist()
    seq, before, after = (df[c].to_numpy().tolist() for c in ("card_seq", "balance_before", "balance_after"))
    status = df["status"].to_numpy(dtype=object).tolist()
    if UNVERIFIED in status:
        status = _verify(df, card, status, store)
        df["status"] = status
    key = df["key"].to_numpy(dtype=object).tolist()
    s_on, s_off, s_bal = (df[c].to_numpy().tolist() for c in ("s_online", "s_offline", "s_balance"))

    verdict: list[str] = [""] * n
    gap = [0] * n
    brk = [False] * n
    ends: list[tuple[str, int, int, int]] = []
    starts = np.flatnonzero(np.concatenate(([True], card_array[1:] != card_array[:-1]))).tolist()
    bounds = [*starts, n]
    for b in range(len(starts)):
        lo, hi = bounds[b], bounds[b + 1]
        nxt = [NO, NO]  # next online, next offline; NO: not known (no previous state)
        balance = NO
        i = lo
        if state[i]:
            nxt = [s_on[i], s_off[i]]
            balance = s_bal[i]
            i += 1
        seen: set[str] = set()
        chain: list[int] = []
        for j in range(i, hi):
            if state[j]:
                continue  # a second state row of one card: the first holds
            k = key[j]
            if k and k in seen:
                verdict[j] = "replay"
                continue
            if k:
                seen.add(k)
            verdict[j] = "accepted" if status[j] == "ok" else status[j]
            chain.append(j)
        # counters: gaps, and the stretch of the chain a gap covers (no balance check there)
        skip = [0] * (len(chain) + 1)
        last_pos = [-1, -1]
        for p, j in enumerate(chain):
            which = 0 if load[j] else 1
            expected, value = nxt[which], seq[j]
            if expected != NO and value > expected:
                gap[j] = value - expected
                skip[last_pos[which] + 1] += 1
                skip[p + 1] -= 1
            elif expected != NO and value < expected:
                brk[j] = True
            nxt[which] = value + 1
            last_pos[which] = p
        known = balance != NO
        covered = 0
        for p, j in enumerate(chain):
            covered += skip[p]
            if verdict[j] != "accepted":
                known = False
                continue
            if known and not covered and before[j] != balance:
                brk[j] = True
            balance = after[j]
            known = balance != NO
        ends.append((card[lo], nxt[0], nxt[1], balance if known else NO))

    keep = [not s for s in state]
    lines = df[keep].assign(verdict=[v for v, k in zip(verdict, keep, strict=True) if k],
                            gap=[g for g, k in zip(gap, keep, strict=True) if k],
                            brk=[x for x, k in zip(brk, keep, strict=True) if k])
    lines = lines.rename(columns={"brk": "break"})
    states = pd.DataFrame({"card": [e[0] for e in ends], "s_online": [e[1] for e in ends],
                           "s_offline": [e[2] for e in ends], "s_balance": [e[3] for e in ends]})
    for c, t in OUT_COLUMNS.items():
        if c not in states:
            states[c] = "" if t == "str" else (False if t == "bool" else (b"" if t == "bytes" else NO))
    states["row_kind"] = "state"
    states["verdict"] = ""
    out = pd.concat([lines[list(OUT_COLUMNS)], states[list(OUT_COLUMNS)]], ignore_index=True)
    return out.astype(DTYPES)


CARDS_BETWEEN_FORGETS = 4096  # the per-card TAC functions held at once (about 2.7 KB each)


def _verify(df: Any, card: list[str], status: list[str], store: KeyStore | None) -> list[str]:
    """The ``unverified`` lines' TACs checked, in card order: a card's TAC function is set up
    once for its lines, and dropped a few thousand cards later (``forget_cards``)."""
    if store is None:
        raise ValueError("unverified lines and no key store to check their TACs with")
    issuer_hex = df["issuer"].to_numpy(dtype=object).tolist()
    version = df["key_version"].to_numpy().tolist()
    algorithm = df["algorithm"].to_numpy(dtype=object).tolist()
    tac = df["tac"].to_numpy(dtype=object).tolist()
    message = df["message"].to_numpy(dtype=object).tolist()
    issuers: dict[tuple[str, int], IssuerKeys | None] = {}
    out = list(status)
    cards, last = 0, None
    try:
        for j, s in enumerate(status):
            if s != UNVERIFIED:
                continue
            if card[j] != last:
                last = card[j]
                cards += 1
                if cards % CARDS_BETWEEN_FORGETS == 0:
                    forget_cards()
            which = (issuer_hex[j], version[j])
            if which not in issuers:
                issuers[which] = store.find(bytes.fromhex(which[0]), which[1])
            issuer = issuers[which]
            ok = issuer is not None and tac_verified(issuer, card[j], algorithm[j], tac[j], message[j])
            out[j] = "ok" if ok else ("forged" if issuer is not None else "unknown_issuer")
    finally:
        forget_cards()
    return out
