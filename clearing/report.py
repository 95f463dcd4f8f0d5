"""The clearing report: batches, exceptions by kind, who owes whom (docs/settlement.md).

Built from small aggregates (never the day's records), sorted, so the same
batches give the same report byte for byte however many workers ran.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from clearing.checks import NO, BatchSummary

EXCEPTION_KINDS = ("bad_batch", "unknown_terminal", "missing_batch", "forged", "unknown_issuer", "replay", "gap",
                   "break")
REJECTED = ("forged", "unknown_issuer", "replay")


def batch_holes(summaries: Sequence[BatchSummary], previous: dict[str, int]) -> list[dict[str, Any]]:
    """Each batch_seq a terminal skipped: after the previous run's last, and between those received."""
    seqs: dict[str, list[int]] = {}
    for s in summaries:
        if s.status == "ok" and s.batch_seq != NO:
            seqs.setdefault(s.terminal, []).append(s.batch_seq)
    holes: list[dict[str, Any]] = []
    for terminal, got in sorted(seqs.items()):
        got = sorted(set(got))
        expected = previous.get(terminal, got[0] - 1) + 1
        for seq in got:
            holes.extend({"terminal": terminal, "batch_seq": m} for m in range(expected, seq))
            expected = max(expected, seq + 1)
    return holes


def clearing_totals(cells: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per day, issuer and operator: purchases (the issuer pays the operator) and loads (the
    operator, who took the cash, pays the issuer); then each party's net position per day.

    ``cells``: a pandas frame of accepted records grouped by day, issuer, operator, kind with
    ``amount`` (sum) and ``count``."""
    matrix: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in cells.itertuples(index=False):
        cell = matrix.setdefault((row.day, row.issuer, row.operator), {
            "day": row.day, "issuer": row.issuer, "operator": row.operator, "purchases": 0, "purchase_count": 0,
            "loads": 0, "load_count": 0})
        if row.kind == "load":
            cell["loads"] += int(row.amount)
            cell["load_count"] += int(row.count)
        else:
            cell["purchases"] += int(row.amount)
            cell["purchase_count"] += int(row.count)
    totals = [dict(c, issuer_pays=c["purchases"] - c["loads"]) for _, c in sorted(matrix.items())]
    net: dict[tuple[str, str, str], int] = {}
    for c in totals:
        net[(c["day"], "issuer", c["issuer"])] = net.get((c["day"], "issuer", c["issuer"]), 0) - c["issuer_pays"]
        net[(c["day"], "operator", c["operator"])] = net.get((c["day"], "operator", c["operator"]), 0) \
            + c["issuer_pays"]
    positions = [{"day": d, "role": role, "party": party, "net": v} for (d, role, party), v in sorted(net.items())]
    return totals, positions


def build_report(summaries: Sequence[BatchSummary], holes: list[dict[str, Any]], verdicts: dict[str, int],
                 gaps: int, breaks: int, cells: Any, examples: dict[str, list[dict[str, Any]]],
                 operator_names: dict[str, str]) -> dict[str, Any]:
    set_aside = [s for s in summaries if s.status != "ok"]
    counts = {k: 0 for k in EXCEPTION_KINDS}
    for s in set_aside:
        counts[s.status] += 1
    counts["missing_batch"] = len(holes)
    for k in REJECTED:
        counts[k] = verdicts.get(k, 0)
    counts["gap"], counts["break"] = gaps, breaks
    totals, positions = clearing_totals(cells)
    lines = sum(verdicts.values())
    return {
        "batches": {"files": len(summaries), "cleared": len(summaries) - len(set_aside), "set_aside": len(set_aside)},
        "records": {"lines": lines, "accepted": verdicts.get("accepted", 0),
                    "rejected": sum(verdicts.get(k, 0) for k in REJECTED),
                    "accepted_amount": sum(c["purchases"] + c["loads"] for c in totals)},
        "exceptions": counts,
        "set_aside": [{"file": s.file, "kind": s.status, "reason": s.reason}
                      for s in sorted(set_aside, key=lambda s: s.file)],
        "missing_batches": holes,
        "clearing": totals,
        "positions": positions,
        "operators": dict(sorted(operator_names.items())),
        "examples": examples,
    }


def render(report: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    out = []
    b, r, e = report["batches"], report["records"], report["exceptions"]
    out.append(f"batches: {b['files']} file(s), {b['cleared']} cleared, {b['set_aside']} set aside")
    out.append(f"records: {r['lines']} line(s), {r['accepted']} accepted ({_yuan(r['accepted_amount'])}),"
               f" {r['rejected']} rejected")
    out.append("exceptions: " + ", ".join(f"{k} {v}" for k, v in e.items()))
    for s in report["set_aside"]:
        out.append(f"  set aside {s['file']}: {s['kind']}: {s['reason']}")
    for h in report["missing_batches"]:
        out.append(f"  missing batch: terminal {h['terminal']} batch_seq {h['batch_seq']}")
    for kind, items in report["examples"].items():
        for x in items:
            out.append(f"  {kind}: card {x['card']} {x['kind']} counter {x['card_seq']} at {x['terminal']}"
                       f" ({x['file']} line {x['line_no']})" + (f", {x['gap']} missing" if kind == "gap" else ""))
    names = report["operators"]
    out.append("clearing (purchases − loads: what the issuer pays the operator):")
    for c in report["clearing"]:
        out.append(f"  {c['day']} issuer {c['issuer']} → {c['operator']} {names.get(c['operator'], '')}:"
                   f" purchases {_yuan(c['purchases'])} ({c['purchase_count']}), loads {_yuan(c['loads'])}"
                   f" ({c['load_count']}), pays {_yuan(c['issuer_pays'])}")
    out.append("net positions (+ receives, − pays):")
    for p in report["positions"]:
        out.append(f"  {p['day']} {p['role']} {p['party']}: {_yuan(p['net'])}")
    return "\n".join(out) + "\n"


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100}.{abs(fen) % 100:02d}"
