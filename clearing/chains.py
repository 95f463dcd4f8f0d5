"""Stage two of a clearing run, per card: replays across batches and each card's chains.

A plain function of one partition that holds every line of its cards (the
engine shuffles by card) and their state from the previous run (rows with
``row_kind == "state"``). Per card, in time order:

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

from clearing.checks import LINE_COLUMNS, NO

OUT_COLUMNS: dict[str, str] = {**LINE_COLUMNS, "verdict": "str", "gap": "int64", "break": "bool"}
VERDICTS = ("accepted", "forged", "unknown_issuer", "replay")


def empty_frame() -> Any:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in OUT_COLUMNS.items()})


def line_meta() -> Any:
    return empty_frame()[list(LINE_COLUMNS)]


def state_rows(cards: Any) -> Any:
    """The previous run's card state (``clearing.state``) as rows of the lines' frame."""
    frame = line_meta().reindex(range(len(cards)))
    for c, t in LINE_COLUMNS.items():
        frame[c] = "" if t == "str" else NO
    frame["row_kind"] = "state"
    frame["card"] = cards["card"].to_numpy()
    frame["s_online"] = cards["online_next"].to_numpy()
    frame["s_offline"] = cards["offline_next"].to_numpy()
    frame["s_balance"] = cards["balance"].to_numpy()
    return frame.astype({c: t for c, t in LINE_COLUMNS.items()})


def chain_partition(df: Any) -> Any:
    """Lines and state rows of some cards -> the lines with their verdict, gap and break,
    followed by one state row per card."""
    import numpy as np
    import pandas as pd

    if len(df) == 0:
        return empty_frame()
    df = df.assign(_state=(df["row_kind"] != "state").astype("int64"))
    df = df.sort_values(["card", "_state", "time", "terminal", "batch_seq", "line_no"], kind="stable")
    df = df.drop(columns="_state").reset_index(drop=True)
    n = len(df)
    card = df["card"].to_numpy(dtype=object)
    state = (df["row_kind"] == "state").to_numpy()
    load = (df["kind"] == "load").to_numpy()
    seq = df["card_seq"].to_numpy()
    before = df["balance_before"].to_numpy()
    after = df["balance_after"].to_numpy()
    status = df["status"].to_numpy(dtype=object)
    key = df["key"].to_numpy(dtype=object)
    s_on, s_off, s_bal = (df[c].to_numpy() for c in ("s_online", "s_offline", "s_balance"))

    verdict = np.empty(n, dtype=object)
    gap = np.zeros(n, dtype=np.int64)
    brk = np.zeros(n, dtype=bool)
    ends: list[tuple[str, int, int, int]] = []
    starts = np.flatnonzero(np.concatenate(([True], card[1:] != card[:-1])))
    bounds = np.append(starts, n)
    for b in range(len(starts)):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        nxt = [NO, NO]  # next online, next offline; NO: not known (no previous state)
        balance = NO
        i = lo
        if state[i]:
            nxt = [int(s_on[i]), int(s_off[i])]
            balance = int(s_bal[i])
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
        skip = np.zeros(len(chain) + 1, dtype=np.int64)
        last_pos = [-1, -1]
        for p, j in enumerate(chain):
            which = 0 if load[j] else 1
            expected, value = nxt[which], int(seq[j])
            if expected != NO and value > expected:
                gap[j] = value - expected
                skip[last_pos[which] + 1] += 1
                skip[p + 1] -= 1
            elif expected != NO and value < expected:
                brk[j] = True
            nxt[which] = value + 1
            last_pos[which] = p
        covered = np.cumsum(skip)[: len(chain)] > 0
        known = balance != NO
        for p, j in enumerate(chain):
            if verdict[j] != "accepted":
                known = False
                continue
            if known and not covered[p] and int(before[j]) != balance:
                brk[j] = True
            balance = int(after[j])
            known = balance != NO
        ends.append((card[lo], nxt[0], nxt[1], balance if known else NO))

    lines = df[~state].assign(verdict=verdict[~state], gap=gap[~state], brk=brk[~state])
    lines = lines.rename(columns={"brk": "break"})
    states = pd.DataFrame({"card": [e[0] for e in ends], "s_online": [e[1] for e in ends],
                           "s_offline": [e[2] for e in ends], "s_balance": [e[3] for e in ends]})
    for c, t in OUT_COLUMNS.items():
        if c not in states:
            states[c] = "" if t == "str" else (False if t == "bool" else NO)
    states["row_kind"] = "state"
    states["verdict"] = ""
    out = pd.concat([lines[list(OUT_COLUMNS)], states[list(OUT_COLUMNS)]], ignore_index=True)
    return out.astype({c: t for c, t in OUT_COLUMNS.items()})
