"""The clearing centre's back office: a city's day of batches checked and cleared (docs/settlement.md).

Imports ``cardlib`` only (the batch format, TAC checking, the key store); the
work runs on Dask (``clearing.engine``), imported when a job starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardlib.exports import lazy_exports

if TYPE_CHECKING:
    __version__: str

__all__ = ["__version__"]
__getattr__, __dir__ = lazy_exports(__name__, {})
