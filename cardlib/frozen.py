"""Frozen dataclasses whose ``__init__`` fills ``__dict__`` directly.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` (its own ``__setattr__`` refuses): that costs about as
much again as the rest of building a small value, and the wire formats and
results of a purchase are built on every transaction, by the terminal and
the simulated cards. :func:`direct_init` swaps in an ``__init__`` with the
same parameters and defaults that stores into ``__dict__`` and then calls
``__post_init__`` if there is one. Everything else stays the dataclass's.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# the generated __init__ each class had, for the tests that hold the two to each other
GENERATED: dict[type, Callable[..., None]] = {}


def direct_init(cls: type[T]) -> type[T]:
    """Give a frozen dataclass of plain fields (no InitVar, init=False, keyword-only
    or default_factory) an ``__init__`` that stores into ``__dict__``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: direct_init is for frozen dataclasses without slots")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    generated: Callable[..., None] = cls.__init__
    names = list(inspect.signature(generated).parameters)[1:]
    if names != [f.name for f in fields] or any(
        f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields
    ):
        raise TypeError(f"{cls.__name__}: direct_init takes plain positional fields only")
    env: dict[str, Any] = {}
    args = []
    for f in fields:
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
    lines = [f"def __init__(self, {', '.join(args)}):", "    fields = self.__dict__"]
    lines += [f"    fields[{f.name!r}] = {f.name}" for f in fields]
    if hasattr(cls, "__post_init__"):
        lines.append("    self.__post_init__()")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the field names only
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = generated.__doc__
    GENERATED[cls] = generated
    setattr(cls, "__init__", init)  # noqa: B010 - mypy refuses assigning to a method
    return cls
