"""What one clearing run leaves for the next (``--state-out``) and reads back (``--previous``).

A folder: ``cards.parquet`` (per card: ``card``, the next expected online and
offline counters ``online_next`` and ``offline_next`` and the last
``balance``, -1 where unknown) and ``terminals.json`` (per terminal: the last
``batch_seq`` received). docs/settlement.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cardlib.errors import FormatError

CARD_COLUMNS = ("card", "online_next", "offline_next", "balance")


def read_terminals(folder: str | os.PathLike[str]) -> dict[str, int]:
    path = Path(folder) / "terminals.json"
    try:
        obj = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise FormatError(f"state {os.fspath(folder)!r}: no terminals.json (not a clearing state folder)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"state {path}: cannot read: {exc}") from None
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in obj.items()):
        raise FormatError(f"state {path}: expected an object of terminal id to last batch_seq")
    return {k.upper(): v for k, v in obj.items()}


def cards_path(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder) / "cards.parquet"
    if not path.exists():
        raise FormatError(f"state {os.fspath(folder)!r}: no cards.parquet (not a clearing state folder)")
    return path


def write_terminals(folder: str | os.PathLike[str], terminals: dict[str, int]) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    text = json.dumps(dict(sorted(terminals.items())), indent=1) + "\n"
    (Path(folder) / "terminals.json").write_text(text, "utf-8")


def write_cards(folder: str | os.PathLike[str], columns: dict[str, Any]) -> None:
    """A small state in one file (the generator's start of day)."""
    import pandas as pd

    Path(folder).mkdir(parents=True, exist_ok=True)
    pd.DataFrame({c: columns[c] for c in CARD_COLUMNS}).to_parquet(Path(folder) / "cards.parquet", index=False)
