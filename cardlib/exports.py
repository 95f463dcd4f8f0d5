"""Names a package root offers without importing them until used (PEP 562 module
``__getattr__``): ``import cardlib`` stays as cheap as before, so ``ykt --help`` does not pay
for the readers, the journal or the simulators, and a package root never takes part in an
import cycle of its submodules. Type checkers see the names through the root's
``if TYPE_CHECKING:`` imports (``import name as name``: a re-export without ``__all__``,
which a root derives from its table), which must list the same names (a test holds them equal)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module

DISTRIBUTION = "yikatong"


def distribution_version() -> str:
    """The version of the installed distribution: pyproject.toml's ``version`` is the one source.
    (importlib.metadata is imported here, when asked: it costs milliseconds at every start.)"""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps each exported name to
    the module that defines it. ``__version__`` comes from the distribution's metadata."""

    def __getattr__(name: str) -> object:
        if name == "__version__":
            value: object = distribution_version()
        else:
            where = names.get(name)
            if where is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(import_module(where), name)
        setattr(sys.modules[package], name, value)  # looked up once
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names, "__version__"})

    return __getattr__, __dir__
