"""The one folder where yikatong keeps state between runs (the simulated PSAMs' images, the
shell's history): ``$YKT_STATE_DIR``, else ``$XDG_STATE_HOME/yikatong`` (XDG Base Directory
Specification; ``~/.local/state/yikatong`` when unset)."""

from __future__ import annotations

import os
from pathlib import Path

from cardlib.errors import FormatError

STATE_ENV = "YKT_STATE_DIR"


def state_dir() -> Path:
    """The state folder, made 0700 if missing; FormatError (one line) when it cannot be made."""
    override = os.environ.get(STATE_ENV)
    if override:
        base = Path(override)
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "yikatong"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise FormatError(f"{base}: cannot make the state folder: {exc.strerror or exc}") from None
    return base
