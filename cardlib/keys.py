"""Issuer master keys, a card's keys, their derivation and TAC verification.

One place for the key file format (docs/keys.md), the order of the
diversification levels (the project's profile: issuer level first, docs/protocol.md)
and TAC checks (JR/T 0025 e-purse TAC),
so the terminal, the simulators and settlement all use the same code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cardlib.crypto import Algorithm, constant_time_equal, diversify, diversify_levels
from cardlib.errors import ConfigError, FormatError
from cardlib.jsontext import json_object
from cardlib.pboc.macs import TacFields, compute_tac
from cardlib.safefiles import LIMIT_SMALL, read_text

KEY_FILE_FORMAT = "yikatong-issuer-keys"
MASTER_NAMES = ("mlk", "mpk", "mtk", "mamk", "ssse_iak", "ssse_eak")
CARD_KEY_NAMES = ("dlk", "dpk", "dtk", "damk", "cak", "eak")


@dataclass(frozen=True)
class KeyEntry:
    """A 16-byte key with its index, version and algorithm. Its repr masks the key."""

    key: bytes
    index: int = 1
    version: int = 1
    algorithm: Algorithm = Algorithm.TDES

    def __post_init__(self) -> None:
        if len(self.key) != 16:
            raise FormatError(f"a key must be 16 bytes, got {len(self.key)}")
        for name in ("index", "version"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise FormatError(f"key {name} must be a byte, got {value}")

    def __repr__(self) -> str:
        return (
            f"KeyEntry(key=<{len(self.key)} bytes masked>, index={self.index}, "
            f"version={self.version}, algorithm={self.algorithm.value})"
        )

    __str__ = __repr__

    def to_json(self) -> dict[str, Any]:
        """The key file's entry; it carries the key in clear (mask it before showing)."""
        return {
            "key": self.key.hex().upper(),
            "index": self.index,
            "version": self.version,
            "algorithm": self.algorithm.value,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str = "key") -> KeyEntry:
        """Read an entry; ConfigError names ``where`` and the problem, never the key."""
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected an object with key, index, version, algorithm")
        key = _hex_field(obj, "key", 16, f"{where}.key")
        numbers: dict[str, int] = {}
        # "key_index" is the spelling of early card images; "index" is the format's
        index_name = "index" if "index" in obj or "key_index" not in obj else "key_index"
        for name, value in ((index_name, obj.get(index_name, 1)), ("version", obj.get("version", 1))):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
                raise ConfigError(f"{where}.{name}: must be an integer 0..255")
            numbers[name] = value
        algo = obj.get("algorithm", "3des")
        try:
            algorithm = Algorithm.parse(str(algo))
        except FormatError as exc:
            raise ConfigError(f"{where}.algorithm: {exc}") from None
        return cls(key, numbers[index_name], numbers["version"], algorithm)


def _entries(obj: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, KeyEntry]:
    """The named key entries of ``obj``, each required."""
    entries = {}
    for name in names:
        if name not in obj:
            raise ConfigError(f"{where}.{name}: missing")
        entries[name] = KeyEntry.from_json(obj[name], f"{where}.{name}")
    return entries


def _hex_field(obj: dict[str, Any], name: str, size: int, label: str) -> bytes:
    """``obj[name]`` as ``size`` bytes of hex; the message names ``label``, never the value."""
    if name not in obj:
        raise ConfigError(f"{label}: missing")
    value = obj[name]
    if not isinstance(value, str):
        raise ConfigError(f"{label}: expected hex text")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f"{label}: not hex") from None
    if len(raw) != size:
        raise ConfigError(f"{label}: must be {size} bytes ({2 * size} hex digits), got {len(raw)}")
    return raw


@dataclass(frozen=True)
class IssuerKeys:
    """An issuer's master keys (held by its PSAMs and its load host)."""

    name: str
    issuer_id: bytes
    test_only: bool
    mlk: KeyEntry
    mpk: KeyEntry
    mtk: KeyEntry
    mamk: KeyEntry
    ssse_iak: KeyEntry
    ssse_eak: KeyEntry

    def __hash__(self) -> int:
        # settlement's per-issuer tables hash the issuer per look-up: a few fields suffice,
        # equality still compares every key
        return hash((self.issuer_id, self.mtk.key, self.mpk.key))

    def to_json(self) -> dict[str, Any]:
        """The key file's object (docs/keys.md); keys in clear."""
        return {
            "format": KEY_FILE_FORMAT,
            "version": 1,
            "name": self.name,
            "test_only": self.test_only,
            "issuer_id": self.issuer_id.hex().upper(),
            "keys": {n: getattr(self, n).to_json() for n in MASTER_NAMES},
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "key file") -> IssuerKeys:
        """Read a key file's object; ConfigError names ``source`` and the problem."""
        if not isinstance(obj, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        if obj.get("format") != KEY_FILE_FORMAT:
            raise ConfigError(f"{source}: format must be {KEY_FILE_FORMAT!r}")
        if obj.get("version") != 1:
            raise ConfigError(f"{source}: unsupported version {obj.get('version')!r} (known: 1)")
        keys = obj.get("keys")
        if not isinstance(keys, dict):
            raise ConfigError(f"{source}: keys: missing")
        name = obj.get("name", "")
        if not isinstance(name, str):
            raise ConfigError(f"{source}: name: expected text")
        test_only = obj.get("test_only", False)
        if not isinstance(test_only, bool):
            raise ConfigError(f"{source}: test_only: expected true or false")
        entries = _entries(keys, MASTER_NAMES, f"{source}: keys")
        return cls(
            name=name,
            issuer_id=_hex_field(obj, "issuer_id", 8, f"{source}: issuer_id"),
            test_only=test_only,
            **entries,
        )


@dataclass(frozen=True)
class CardKeys:
    """A card's keys: purse load/purchase/TAC/maintenance and SSSE auth.

    ``dpk`` is the purchase key of the card's own issuer; ``extra_dpk`` holds purchase keys under
    other key indexes, as a card of the interoperable (T-Union) network carries the network's one
    beside its own (cardlib.keystore). INITIALIZE FOR PURCHASE names the index it wants."""

    dlk: KeyEntry
    dpk: KeyEntry
    dtk: KeyEntry
    damk: KeyEntry
    cak: KeyEntry
    eak: KeyEntry
    extra_dpk: tuple[KeyEntry, ...] = ()

    def __post_init__(self) -> None:
        indexes = [k.index for k in (self.dpk, *self.extra_dpk)]
        if len(set(indexes)) != len(indexes):
            raise FormatError(f"a card holds one purchase key per key index, got indexes {indexes}")

    @property
    def algorithm(self) -> Algorithm:
        """The purse's algorithm (all keys of a card share it)."""
        return self.dpk.algorithm

    def purchase_key(self, index: int) -> KeyEntry | None:
        """The purchase key under ``index`` (None: the card holds none, it answers 9403)."""
        for key in (self.dpk, *self.extra_dpk):
            if key.index == index:
                return key
        return None

    def to_json(self) -> dict[str, Any]:
        """Keys "dlk" … "eak", each a key file entry, and "extra_dpk" (a list) when the card has
        more purchase keys; keys in clear."""
        out = {name: getattr(self, name).to_json() for name in CARD_KEY_NAMES}
        if self.extra_dpk:
            out["extra_dpk"] = [k.to_json() for k in self.extra_dpk]
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = "keys") -> CardKeys:
        """Read a card's keys (card images); ConfigError names ``where`` and the problem."""
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected an object")
        extra = obj.get("extra_dpk", [])
        if not isinstance(extra, list):
            raise ConfigError(f"{where}.extra_dpk: expected a list of key entries")
        more = tuple(KeyEntry.from_json(e, f"{where}.extra_dpk[{n}]") for n, e in enumerate(extra))
        try:
            return cls(**_entries(obj, CARD_KEY_NAMES, where), extra_dpk=more)
        except FormatError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def load_issuer_keys(path: str | os.PathLike[str] | None = None) -> IssuerKeys:
    """Read a key file; None gives the default, the built-in TEST ONLY issuer."""
    if path is None:
        return default_issuer()
    source = os.fspath(path)
    try:
        text = read_text(source, "key file", LIMIT_SMALL, ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such key file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    return IssuerKeys.from_json(json_object(text, source, ConfigError, at_line=True), source)


@lru_cache(maxsize=1)
def _builtin_issuer() -> IssuerKeys:
    from importlib import resources  # only when the built-in issuer is needed

    text = resources.files("cardlib").joinpath("data/test_issuer.json").read_text("utf-8")
    return IssuerKeys.from_json(json.loads(text), "built-in test issuer")


def test_issuer() -> IssuerKeys:
    """The documented TEST ONLY issuer shipped with the package (read once)."""
    return _builtin_issuer()


def default_issuer() -> IssuerKeys:
    """The issuer used where none is given (no key file, ``ykt sim``, the default PSAM, the
    demo): the TEST ONLY issuer, so nothing made by default is ever real money."""
    return _builtin_issuer()


def purse_factors(issuer_id: bytes, app_serial: bytes) -> tuple[bytes, bytes]:
    """THE order of the purse keys' levels: (issuer level, card level), issuer first.

    Derivation applies them in this order; the PSAM's 8070 lists them card first.
    """
    if len(issuer_id) != 8:
        raise FormatError(f"issuer id must be 8 bytes, got {len(issuer_id)}")
    return issuer_id, card_factor(app_serial)


def card_factor(app_serial: bytes) -> bytes:
    """The card-level factor: the last 8 bytes of the 10-byte application serial."""
    if len(app_serial) != 10:
        raise FormatError(f"application serial must be 10 bytes, got {len(app_serial)}")
    return app_serial[2:10]


def ssse_factor(card_identifier: bytes) -> bytes:
    """The SSSE key factor: the last 8 bytes of EF05's card identifier (the project's profile)."""
    if len(card_identifier) != 16:
        raise FormatError(f"card identifier must be 16 bytes, got {len(card_identifier)}")
    return card_identifier[8:16]


def derive_key(master: KeyEntry, factors: tuple[bytes, ...], algorithm: Algorithm) -> KeyEntry:
    """A card's key: ``master`` diversified by ``factors`` in order, under the master's index and version."""
    return KeyEntry(diversify_levels(master.key, factors, algorithm), master.index, master.version, algorithm)


def derive_card_keys(
    issuer: IssuerKeys,
    app_serial: bytes,
    card_identifier: bytes,
    algorithm: Algorithm = Algorithm.TDES,
) -> CardKeys:
    """A card's keys from the issuer's masters (personalisation, PSAM, host, settlement)."""
    two = purse_factors(issuer.issuer_id, app_serial)
    one = (card_factor(app_serial),)
    ssse = (ssse_factor(card_identifier),)
    return CardKeys(
        dlk=derive_key(issuer.mlk, two, algorithm),
        dpk=derive_key(issuer.mpk, two, algorithm),
        dtk=derive_key(issuer.mtk, two, algorithm),
        damk=derive_key(issuer.mamk, one, algorithm),
        cak=derive_key(issuer.ssse_iak, ssse, algorithm),
        eak=derive_key(issuer.ssse_eak, ssse, algorithm),
    )


def derive_dtk(issuer: IssuerKeys, app_serial: bytes, algorithm: Algorithm = Algorithm.TDES) -> bytes:
    """A card's DTK. Not cached here: settlement holds each card's TAC function for the part
    of a day it checks (cardlib/settlement.py), so no card key outlives the work it is for."""
    return derive_key(issuer.mtk, purse_factors(issuer.issuer_id, app_serial), algorithm).key


def verify_tac(
    issuer: IssuerKeys,
    app_serial: bytes,
    fields: TacFields,
    tac: bytes,
    algorithm: Algorithm = Algorithm.TDES,
) -> bool:
    """Whether ``tac`` is the card's TAC over ``fields`` (constant-time compare)."""
    expected = compute_tac(derive_dtk(issuer, app_serial, algorithm), fields, algorithm)
    return constant_time_equal(expected, bytes(tac))


__all__ = [
    "CardKeys",
    "IssuerKeys",
    "KeyEntry",
    "card_factor",
    "derive_card_keys",
    "derive_key",
    "diversify",
    "load_issuer_keys",
    "purse_factors",
    "ssse_factor",
    "default_issuer",
    "derive_dtk",
    "test_issuer",
    "verify_tac",
]
