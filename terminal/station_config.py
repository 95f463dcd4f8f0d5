"""A station's configuration (``station.toml``; docs/station.md, "Configuration").

``[station]`` its name, its one journal and (optionally) the local issuer;
``[pool]`` the allocation strategy and timeout; ``[[psam]]`` the PSAM slots
with their kinds; ``[[lane]]`` each lane's reader and role configuration —
a terminal TOML file (``config``, relative to the station file) or the same
tables inline (``[lane.settings.terminal]`` …). Unknown keys are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardlib.errors import ConfigError
from cardlib.keystore import TUNION_KEY_INDEX, PsamKind
from terminal.config import TerminalConfig, load_config, parse_config, read_toml
from terminal.sam_pool import STRATEGIES, SamSlot


@dataclass(frozen=True)
class LaneConfig:
    name: str
    reader: str
    terminal: TerminalConfig


@dataclass(frozen=True)
class StationConfig:
    name: str
    journal: str | None
    local_issuer: bytes | None
    strategy: str
    timeout: float
    retry: float
    psams: tuple[SamSlot, ...]
    lanes: tuple[LaneConfig, ...]
    #: the key index of the interoperable purchase key (the project's profile: 2)
    tunion_key_index: int = TUNION_KEY_INDEX


def _table(obj: Any, where: str, keys: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a table")
    for key, value in obj.items():
        if key not in keys:
            raise ConfigError(f"{where}.{key}: unknown key")
        kind = keys[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise ConfigError(f"{where}.{key}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}")
    return obj


def _name(obj: dict[str, Any], where: str) -> str:
    name = obj.get("name")
    if not name or not isinstance(name, str) or not name.isprintable() or len(name) > 32:
        raise ConfigError(f"{where}.name: missing, or not a printable name of at most 32 characters")
    return name


def _reader(obj: dict[str, Any], where: str) -> str:
    uri = obj.get("reader")
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(f"{where}.reader: missing (a reader URI)")
    return uri


def _lane_terminal(obj: dict[str, Any], where: str, base: Path) -> TerminalConfig:
    if ("config" in obj) == ("settings" in obj):
        raise ConfigError(f"{where}: give exactly one of config (a terminal TOML file) or settings (its tables)")
    try:
        if "config" in obj:
            path = Path(obj["config"])
            cfg = load_config(path if path.is_absolute() else base / path)
        else:
            cfg = parse_config(obj["settings"])
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if cfg.journal is not None:
        raise ConfigError(f"{where}: paths.journal: a station keeps one journal (station.journal)")
    return cfg


def _issuer(st: dict[str, Any]) -> bytes | None:
    if "local_issuer" not in st:
        return None
    try:
        issuer = bytes.fromhex(st["local_issuer"])
    except ValueError:
        issuer = b""
    if len(issuer) != 8:
        raise ConfigError("station.local_issuer: 8 bytes of hex (0x15's issuer id)")
    return issuer


def _pool(pool: dict[str, Any]) -> tuple[str, float, float]:
    strategy = pool.get("strategy", "first")
    if strategy not in STRATEGIES:
        raise ConfigError(f"pool.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    timeout, retry = pool.get("timeout_seconds", 2.0), pool.get("retry_seconds", 0.5)
    for key, value in (("timeout_seconds", timeout), ("retry_seconds", retry)):
        if not 0 <= value <= 3600:
            raise ConfigError(f"pool.{key}: 0..3600 seconds, got {value}")
    return strategy, float(timeout), float(retry)


def _psams(items: list[Any]) -> list[SamSlot]:
    psams = []
    for i, obj in enumerate(items):
        where = f"psam[{i}]"
        _table(obj, where, {"name": str, "reader": str, "kind": str})
        kind = obj.get("kind")
        if kind not in {k.value for k in PsamKind}:
            raise ConfigError(f"{where}.kind: {kind!r} is not local or tunion")
        psams.append(SamSlot(_name(obj, where), _reader(obj, where), PsamKind(kind)))
    if not psams:
        raise ConfigError("psam: a station needs at least one [[psam]] slot")
    return psams


def _lanes(items: list[Any], base: Path) -> list[LaneConfig]:
    lanes = []
    for i, obj in enumerate(items):
        where = f"lane[{i}]"
        _table(obj, where, {"name": str, "reader": str, "config": str, "settings": dict})
        lanes.append(LaneConfig(_name(obj, where), _reader(obj, where), _lane_terminal(obj, where, base)))
    if not lanes:
        raise ConfigError("lane: a station needs at least one [[lane]]")
    return lanes


def parse_station(data: dict[str, Any], base: Path = Path(".")) -> StationConfig:
    """The station from parsed TOML; paths relative to ``base``."""
    _table(data, "station.toml", {"station": dict, "pool": dict, "psam": list, "lane": list})
    st = _table(data.get("station", {}), "station", {"name": str, "journal": str, "local_issuer": str,
                                                     "tunion_key_index": int})
    tunion_key_index = st.get("tunion_key_index", TUNION_KEY_INDEX)
    if not 1 <= tunion_key_index <= 0xFF:
        raise ConfigError(f"station.tunion_key_index: 1..255, got {tunion_key_index}")
    pool = _table(data.get("pool", {}), "pool", {"strategy": str, "timeout_seconds": (int, float),
                                                 "retry_seconds": (int, float)})
    issuer = _issuer(st)
    strategy, timeout, retry = _pool(pool)
    psams = _psams(data.get("psam", []))
    lanes = _lanes(data.get("lane", []), base)
    for what, names in (("psam", [p.name for p in psams]), ("lane", [lane.name for lane in lanes])):
        if len(set(names)) != len(names):
            raise ConfigError(f"{what}: two share a name")
    uris = [p.uri for p in psams] + [lane.reader for lane in lanes]
    if len(set(uris)) != len(uris):
        raise ConfigError("two slots name the same reader")
    journal = st.get("journal")
    if journal is not None and not Path(journal).is_absolute():
        journal = str(base / journal)
    return StationConfig(st.get("name", ""), journal, issuer, strategy, timeout, retry, tuple(psams), tuple(lanes),
                         tunion_key_index)


def load_station(path: str | os.PathLike[str]) -> StationConfig:
    source = os.fspath(path)
    data = read_toml(source, "station configuration")
    try:
        return parse_station(data, Path(source).parent)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
