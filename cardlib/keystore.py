"""A store of issuers' keys, chosen by issuer id and key version (docs/keys.md).

A clearing centre checks the TACs of cards from several issuers: each batch
line names its card's issuer (0x15's first 8 bytes) and the purse key version
the card reported, and the store hands back that issuer's masters. The
built-in store holds the TEST ONLY issuers shipped in ``cardlib/data/*.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from cardlib.errors import ConfigError
from cardlib.keys import KEY_FILE_FORMAT, IssuerKeys, load_issuer_keys


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
