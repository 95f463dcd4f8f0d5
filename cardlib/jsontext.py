"""JSON text that must hold one object (card images, key files, trace and tap lines).

Every reader of such text refuses the same three ways, with the same words: not JSON
(and where), nested too deeply for the parser, not an object.
"""

from __future__ import annotations

import json
from typing import Any

from cardlib.errors import FormatError


def json_object(text: str, what: str, error: type[Exception] = FormatError, *, at_line: bool = False) -> dict[str, Any]:
    """``text`` as a JSON object, else ``error`` naming ``what`` (``at_line``: and the line of a
    syntax error, for multi-line files)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what}: not JSON ({f'line {exc.lineno}: ' if at_line else ''}{exc.msg})") from None
    except RecursionError:
        raise error(f"{what}: not JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise error(f"{what}: expected a JSON object")
    return obj
