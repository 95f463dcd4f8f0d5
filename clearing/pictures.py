"""Pictures of a cleared day, where people would rather look than read: transactions per
hour, the clearing matrix as a heat map, exceptions by kind; PNG, linked from summary.html.

Labels are Chinese where the register's operator names are: they need a CJK font
(Noto Sans CJK, Debian's ``fonts-noto-cjk``); without one matplotlib draws empty boxes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from clearing.report import EXCEPTION_KINDS

PICTURES = ("per_hour.png", "clearing.png", "exceptions.png")
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC")


def cjk_font() -> str | None:
    """The first CJK font matplotlib knows, or None."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in CJK_FONTS if n in names), None)


def draw(out: str, report: dict[str, Any]) -> list[Path]:
    """Write the three pictures and summary.html into ``out``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    plt.rcParams["font.family"] = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    names = report["operators"]

    fig, ax = plt.subplots(figsize=(8, 3.5))
    hours = report.get("per_hour", {})
    ax.bar([int(h) for h in hours], list(hours.values()), color="#3b7dd8")
    ax.set_xlabel("小时 hour (Beijing)")
    ax.set_ylabel("交易 transactions")
    ax.set_title("每小时交易 Transactions per hour")
    ax.set_xticks(range(0, 24, 2))
    fig.tight_layout()
    fig.savefig(folder / PICTURES[0], dpi=100)
    plt.close(fig)

    issuers = sorted({c["issuer"] for c in report["clearing"]})
    operators = sorted({c["operator"] for c in report["clearing"]})
    grid = [[0.0] * len(operators) for _ in issuers]
    for c in report["clearing"]:
        grid[issuers.index(c["issuer"])][operators.index(c["operator"])] += c["issuer_pays"] / 100
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.9 * max(1, len(issuers))))
    if issuers:
        image = ax.imshow(grid, cmap="RdYlGn", aspect="auto")
        fig.colorbar(image, ax=ax, label="元 yuan")
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:,.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(operators)), [f"{names.get(o, o)}\n{o}" for o in operators])
    ax.set_yticks(range(len(issuers)), issuers)
    ax.set_title("清算 Clearing: issuer pays operator (purchases − loads)")
    fig.tight_layout()
    fig.savefig(folder / PICTURES[1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    counts = report["exceptions"]
    ax.barh(list(EXCEPTION_KINDS), [counts[k] for k in EXCEPTION_KINDS], color="#d8553b")
    ax.set_xlabel("件 count")
    ax.set_title("异常 Exceptions by kind")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(folder / PICTURES[2], dpi=100)
    plt.close(fig)

    (folder / "summary.html").write_text(summary_html(report), "utf-8")
    return [folder / p for p in PICTURES] + [folder / "summary.html"]


def summary_html(report: dict[str, Any]) -> str:
    e = html.escape
    b, r = report["batches"], report["records"]
    rows = "".join(
        f"<tr><td>{e(c['day'])}</td><td>{e(c['issuer'])}</td><td>{e(report['operators'].get(c['operator'], ''))}"
        f" {e(c['operator'])}</td><td>{c['purchases'] / 100:,.2f}</td><td>{c['loads'] / 100:,.2f}</td>"
        f"<td>{c['issuer_pays'] / 100:,.2f}</td></tr>" for c in report["clearing"])
    kinds = "".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in report["exceptions"].items())
    pictures = "".join(f'<p><a href="{p}"><img src="{p}" alt="{p}"></a></p>' for p in PICTURES)
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>清算 Clearing</title></head>"
        f"<body><h1>清算 Clearing</h1><p>{b['files']} batch file(s), {b['cleared']} cleared, {b['set_aside']} set"
        f" aside; {r['lines']} line(s), {r['accepted']} accepted, {r['rejected']} rejected.</p>{pictures}"
        "<h2>Clearing (元)</h2><table border=\"1\"><tr><th>day</th><th>issuer</th><th>operator</th>"
        f"<th>purchases</th><th>loads</th><th>issuer pays</th></tr>{rows}</table>"
        f"<h2>Exceptions</h2><table border=\"1\">{kinds}</table>"
        "<p>Records and exceptions: <code>records/</code>, <code>exceptions/</code> (Parquet, by day).</p>"
        "</body></html>\n")
