"""yikatong cli: the `ykt` command (cli.main); its commands load when run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardlib.exports import lazy_exports

if TYPE_CHECKING:
    __version__: str

__all__ = ["__version__"]
__getattr__, __dir__ = lazy_exports(__name__, {})
