"""A store of issuers' keys, chosen by issuer id and key version (docs/keys.md).

A clearing centre checks the TACs of cards from several issuers: each batch
line names its card's issuer (0x15's first 8 bytes) and the purse key version
the card reported, and the store hands back that issuer's masters. The
built-in store holds the TEST ONLY issuers shipped in ``cardlib/data/*.json``.
A station's PSAMs are of two kinds built on it (local, T-Union; docs/station.md).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cardlib.crypto import Algorithm
from cardlib.errors import ConfigError
from cardlib.keys import (
    KEY_FILE_FORMAT,
    IssuerKeys,
    KeyEntry,
    derive_key,
    load_issuer_keys,
    purse_factors,
)


class KeyStore:
    """Issuers by (issuer id, key version); the version is that of the issuer's purse
    keys (MPK: the ``key_version`` a card's INITIALIZE reports and a batch line keeps)."""

    def __init__(self, issuers: Iterable[IssuerKeys]) -> None:
        self._by: dict[tuple[bytes, int], IssuerKeys] = {}
        for issuer in issuers:
            key = (issuer.issuer_id, issuer.mpk.version)
            if key in self._by and self._by[key] != issuer:
                raise ConfigError(f"key store: two key sets for issuer {issuer.issuer_id.hex().upper()}"
                                  f" version {issuer.mpk.version}")
            self._by[key] = issuer

    @property
    def issuers(self) -> list[IssuerKeys]:
        """Every key set, in issuer id and version order."""
        return [self._by[k] for k in sorted(self._by)]

    def find(self, issuer_id: bytes, key_version: int) -> IssuerKeys | None:
        return self._by.get((bytes(issuer_id), key_version))

    def get(self, issuer_id: bytes, key_version: int) -> IssuerKeys:
        found = self.find(issuer_id, key_version)
        if found is None:
            raise ConfigError(f"key store: no keys for issuer {bytes(issuer_id).hex().upper()}"
                              f" version {key_version}")
        return found

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike[str]]) -> KeyStore:
        """Key files, and folders whose ``*.json`` files are key files."""
        issuers: list[IssuerKeys] = []
        for path in paths:
            p = Path(path)
            if p.is_dir():
                issuers.extend(load_issuer_keys(f) for f in sorted(p.glob("*.json")))
            else:
                issuers.append(load_issuer_keys(p))
        if not issuers:
            raise ConfigError("key store: no key files")
        return cls(issuers)


@lru_cache(maxsize=1)
def builtin_store() -> KeyStore:
    """The TEST ONLY issuers shipped with the package (``cardlib/data/*.json``)."""
    from importlib import resources  # only when the built-in store is needed

    issuers = []
    for entry in sorted(resources.files("cardlib").joinpath("data").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            obj = json.loads(entry.read_text("utf-8"))
            if isinstance(obj, dict) and obj.get("format") == KEY_FILE_FORMAT:
                issuers.append(IssuerKeys.from_json(obj, f"built-in {entry.name}"))
    return KeyStore(issuers)


# --- PSAMs of more than one kind (docs/station.md) ----------------------------------------
#
# A terminal of the interoperable (T-Union) network holds two PSAMs: the local city's, with the
# local issuer's purchase master, and the T-Union one, with the interoperable purchase master under
# its own key index. How the interoperable keys and key indexes are laid out in real PSAMs and cards
# is not public: what follows is THE PROJECT'S PROFILE (docs/station.md, "The project's profile"),
# not a standard.

INTEROP_KEY_FILE_FORMAT = "yikatong-interop-keys"
#: the key index of the interoperable purchase key, in the card and the T-Union PSAM (project's profile)
TUNION_KEY_INDEX = 0x02


class PsamKind(enum.StrEnum):
    """Which purchase master a PSAM holds."""

    LOCAL = "local"  # the local issuer's masters (its cards' own key index)
    TUNION = "tunion"  # the interoperable purchase master under its key index (TUNION_KEY_INDEX)


@dataclass(frozen=True)
class InteropKeys:
    """The interoperable network's purchase master (held by T-Union PSAMs; cards of every
    interoperable issuer carry a purchase key derived from it)."""

    name: str
    test_only: bool
    mpk: KeyEntry

    @classmethod
    def from_json(cls, obj: Any, source: str = "interop key file") -> InteropKeys:
        if not isinstance(obj, dict) or obj.get("format") != INTEROP_KEY_FILE_FORMAT:
            raise ConfigError(f"{source}: format must be {INTEROP_KEY_FILE_FORMAT!r}")
        if obj.get("version") != 1:
            raise ConfigError(f"{source}: unsupported version {obj.get('version')!r} (known: 1)")
        test_only = obj.get("test_only", False)
        if not isinstance(test_only, bool):
            raise ConfigError(f"{source}: test_only: expected true or false")
        mpk = KeyEntry.from_json(obj.get("mpk"), f"{source}: mpk")
        if mpk.index == 0:
            raise ConfigError(f"{source}: mpk.index must be 1..255 (the project's profile: {TUNION_KEY_INDEX})")
        return cls(str(obj.get("name", "")), test_only, mpk)

    def card_purchase_key(self, issuer_id: bytes, app_serial: bytes,
                          algorithm: Algorithm = Algorithm.TDES) -> KeyEntry:
        """A card's interoperable purchase key: the master diversified as the issuer's own purchase
        key is (issuer level, then card level), kept under the master's key index."""
        return derive_key(self.mpk, purse_factors(issuer_id, app_serial), algorithm)


@lru_cache(maxsize=1)
def builtin_interop() -> InteropKeys:
    """The TEST ONLY interoperable master shipped with the package."""
    from importlib import resources  # only when needed

    text = resources.files("cardlib").joinpath("data/test_tunion_interop.json").read_text("utf-8")
    return InteropKeys.from_json(json.loads(text), "built-in test_tunion_interop.json")


def psam_keys(kind: PsamKind, local: IssuerKeys, interop: InteropKeys | None = None) -> IssuerKeys:
    """The masters a PSAM of ``kind`` holds: a T-Union PSAM is issued by the local operator (its
    maintenance and SSSE keys are the local issuer's) with the interoperable purchase master."""
    if kind is PsamKind.LOCAL:
        return local
    return dataclasses.replace(local, mpk=(interop or builtin_interop()).mpk)


@dataclass(frozen=True)
class KeyRoute:
    """Which kind of PSAM and which of the card's key indexes serve a card."""

    kind: PsamKind
    key_index: int


def route_card(card_issuer: bytes, interoperable: bool, local_issuer: bytes, local_key_index: int,
               kinds: Iterable[PsamKind], tunion_key_index: int = TUNION_KEY_INDEX) -> KeyRoute | None:
    """The project's profile: a card of the local issuer is served by a local PSAM with the local key
    index, with its own issuer's key; a card of another issuer by a T-Union PSAM with the interoperable
    key's index (``tunion_key_index``, a station's ``station.tunion_key_index``) when its 0x17 says it
    is interoperable. None: no PSAM of this terminal can serve the card."""
    have = set(kinds)
    if bytes(card_issuer) == bytes(local_issuer):
        return KeyRoute(PsamKind.LOCAL, local_key_index) if PsamKind.LOCAL in have else None
    if interoperable and PsamKind.TUNION in have:
        return KeyRoute(PsamKind.TUNION, tunion_key_index)
    return None
