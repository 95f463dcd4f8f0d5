"""Readers by URI: ``scheme:target?key=value&...`` (like python-can's interfaces).

Backends are found in the entry-point group ``yikatong.readers``; each entry
point names a factory ``factory(target: str, options: dict[str, str]) -> Reader``.
:func:`register` adds one at run time (tests, integrators).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module, metadata
from urllib.parse import parse_qsl

from cardlib.errors import FormatError, ReaderUnavailableError
from cardlib.readers.base import Reader

ReaderFactory = Callable[[str, dict[str, str]], Reader]

ENTRY_POINT_GROUP = "yikatong.readers"

# cardlib's own backends, used when the distribution's entry points are not installed
# (running from a source tree). Other packages' backends (the simulated card's ``sim``)
# come only through the entry points: cardlib names nothing above it.
_BUILTIN: dict[str, str] = {
    "py": "cardlib.readers.pyhost:open_py_reader",
    "trace": "cardlib.readers.replay:open_trace_reader",
    "pcsc": "cardlib.readers.pcsc:open_pcsc_reader",
    "pn532": "cardlib.readers.pn532:open_pn532_reader",
}

_registered: dict[str, ReaderFactory] = {}


@dataclass(frozen=True)
class ReaderURI:
    scheme: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = self.scheme + (f":{self.target}" if self.target else "")
        if self.options:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.options.items())
        return text


def parse_uri(uri: str) -> ReaderURI:
    """Split a reader URI into scheme, target and options."""
    text = uri.strip()
    if not text:
        raise FormatError("empty reader URI")
    text, _, query = text.partition("?")
    scheme, _, target = text.partition(":")
    scheme = scheme.lower()
    if not scheme or not scheme.replace("-", "").replace("_", "").isalnum():
        raise FormatError(f"bad reader URI {uri!r}: expected scheme[:target][?key=value&...]")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise FormatError(f"bad options in reader URI {uri!r}: {exc}") from None
    return ReaderURI(scheme, target, options)


def register(scheme: str, factory: ReaderFactory) -> None:
    """Register a backend for ``scheme`` (overrides entry points)."""
    _registered[scheme.lower()] = factory


register_reader = register  #: the name the package root offers (``cardlib.register_reader``)


def _load(spec: str) -> ReaderFactory:
    module_name, _, attr = spec.partition(":")
    module = import_module(module_name)
    factory: ReaderFactory = getattr(module, attr)
    return factory


def available_schemes() -> list[str]:
    """Every scheme that :func:`open_reader` knows."""
    names = set(_BUILTIN) | set(_registered)
    names.update(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def find_backend(scheme: str) -> ReaderFactory:
    scheme = scheme.lower()
    if scheme in _registered:
        return _registered[scheme]
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            factory: ReaderFactory = ep.load()
            return factory
    if scheme in _BUILTIN:
        return _load(_BUILTIN[scheme])
    known = ", ".join(available_schemes())
    raise ReaderUnavailableError(f"unknown reader scheme {scheme!r} (known: {known})")


def open_reader(uri: str | ReaderURI) -> Reader:
    """Open the reader a URI names, e.g. ``pcsc:0``, ``sim:card.json``, ``py:pkg.mod:make``."""
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    factory = find_backend(parsed.scheme)
    return factory(parsed.target, dict(parsed.options))


def option_float(options: dict[str, str], key: str, default: float) -> float:
    """A float option from a URI, with a clear error."""
    if key not in options:
        return default
    try:
        return float(options[key])
    except ValueError:
        raise FormatError(f"reader option {key}={options[key]!r} is not a number") from None


def option_int(options: dict[str, str], key: str, default: int) -> int:
    """An integer option from a URI, with a clear error."""
    if key not in options:
        return default
    try:
        return int(options[key], 0)
    except ValueError:
        raise FormatError(f"reader option {key}={options[key]!r} is not an integer") from None
