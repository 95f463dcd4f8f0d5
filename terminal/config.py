"""Terminal configuration: TOML, validated; errors name the key and the problem.

Every key is documented in docs/configuration.md. Unknown keys are errors: a
typo must not pass silently.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cardlib.errors import ConfigError
from terminal.fares import Concession, FarePolicy

ROLES = ("bus_validator", "metro_gate", "identity_gate")


@dataclass(frozen=True)
class TerminalConfig:
    role: str
    name: str = ""
    station: str = ""
    line: str = ""
    industry: int = 0x02
    fares: FarePolicy = field(default_factory=FarePolicy)
    recovery_window: timedelta = timedelta(seconds=120)
    repeat_tap_window: timedelta = timedelta(seconds=60)
    anti_passback_window: timedelta = timedelta(minutes=5)
    daily_entry_limit: int = 0
    free_entry_age: int | None = None
    require_pin: bool = False
    direction: str = "auto"  # metro gates: entry, exit or auto
    authenticate_card: bool = True
    denylist: str | None = None
    journal: str | None = None
    psam: str = "sim?kind=psam"
    key_index: int = 1
    timezone: str = "Asia/Shanghai"


class _Reader:
    """Typed access to one TOML table with key paths in every error."""

    def __init__(self, table: dict[str, Any], path: str) -> None:
        self.table = table
        self.path = path
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) and kind is not bool:
            raise ConfigError(f"{self._key(key)}: expected {getattr(kind, '__name__', kind)}, got a boolean")
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ConfigError(f"{self._key(key)}: expected {name}, got {type(value).__name__} {value!r}")
        return value

    def fen(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value < 0:
            raise ConfigError(f"{self._key(key)}: must be a non-negative integer (fen), got {value}")
        return int(value)

    def percent(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if not 0 <= value <= 100:
            raise ConfigError(f"{self._key(key)}: must be a percentage 0..100, got {value}")
        return int(value)

    def seconds(self, key: str, default: float) -> timedelta:
        value = self.get(key, (int, float), default)
        if value < 0:
            raise ConfigError(f"{self._key(key)}: must not be negative, got {value}")
        return timedelta(seconds=value)

    def table_of(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict, {}), self._key(key))

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise ConfigError(f"{self._key(unknown[0])}: unknown key")


def _pairs(reader: _Reader, key: str, number: type | tuple[type, ...]) -> tuple[tuple[Any, int], ...]:
    raw = reader.get(key, list, [])
    out: list[tuple[Any, int]] = []
    for i, item in enumerate(raw):
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], number)
                or not isinstance(item[1], int) or item[1] < 0):
            raise ConfigError(f"{reader._key(key)}[{i}]: expected [limit, fare in fen], got {item!r}")
        out.append((item[0], item[1]))
    limits: list[float] = [float(p[0]) for p in out]
    if limits != sorted(limits):
        raise ConfigError(f"{reader._key(key)}: limits must be ascending")
    return tuple(out)


def _fares(root: _Reader) -> FarePolicy:
    f = root.table_of("fares")
    stations_raw = f.get("stations", dict, {})
    stations: dict[str, float] = {}
    for name, km in stations_raw.items():
        if isinstance(km, bool) or not isinstance(km, (int, float)):
            raise ConfigError(f"fares.stations.{name}: expected a distance in km, got {km!r}")
        stations[str(name)] = float(km)
    t = root.table_of("transfer")
    r = root.table_of("region")
    concessions = []
    for i, item in enumerate(root.get("concessions", list, [])):
        if not isinstance(item, dict):
            raise ConfigError(f"concessions[{i}]: expected a table")
        c = _Reader(item, f"concessions[{i}]")
        concessions.append(Concession(
            name=c.get("name", str, f"concession {i + 1}"), pay_percent=c.percent("pay_percent", 100),
            card_type=c.get("card_type", str, None), min_age=c.get("min_age", int, None),
            max_age=c.get("max_age", int, None), local_only=c.get("local_only", bool, False)))
        c.done()
    visitor = f.get("admission_visitor", int, None)
    policy = FarePolicy(
        flat=f.fen("flat", 200), segments=_pairs(f, "segments", int), stations=stations,
        bands=tuple((float(a), b) for a, b in _pairs(f, "bands", (int, float))), max_fare=f.fen("max_fare", 0),
        overtime_minutes=f.get("overtime_minutes", int, 0), overtime_surcharge=f.fen("overtime_surcharge", 0),
        transfer_window=timedelta(minutes=t.get("window_minutes", (int, float), 90)),
        transfer_discount=t.fen("discount", 0), concessions=tuple(concessions),
        local_region=r.get("local", str, ""), same_city_treatment=r.get("same_city_treatment", bool, True),
        visitor_surcharge_percent=r.percent("visitor_surcharge_percent", 0),
        admission=f.fen("admission", 0), admission_visitor=visitor,
    )
    if visitor is not None and visitor < 0:
        raise ConfigError("fares.admission_visitor: must be a non-negative integer (fen)")
    for reader in (f, t, r):
        reader.done()
    return policy


def parse_config(data: dict[str, Any]) -> TerminalConfig:
    root = _Reader(data, "")
    term = root.table_of("terminal")
    role = term.get("role", str, None)
    if role is None:
        raise ConfigError("terminal.role: missing (bus_validator, metro_gate or identity_gate)")
    if role not in ROLES:
        raise ConfigError(f"terminal.role: {role!r} is not one of {', '.join(ROLES)}")
    windows = root.table_of("windows")
    gate = root.table_of("gate")
    paths = root.table_of("paths")
    psam = root.table_of("psam")
    tz = root.get("timezone", str, "Asia/Shanghai")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: unknown time zone {tz!r}") from None
    free_age = gate.get("free_entry_age", int, None)
    cfg = TerminalConfig(
        role=role, name=term.get("name", str, ""), station=term.get("station", str, ""),
        line=term.get("line", str, ""), industry=term.get("industry", int, 0x01 if role == "metro_gate" else 0x02),
        fares=_fares(root),
        recovery_window=windows.seconds("recovery_seconds", 120),
        repeat_tap_window=windows.seconds("repeat_tap_seconds", 60),
        anti_passback_window=windows.seconds("anti_passback_seconds", 300),
        daily_entry_limit=gate.get("daily_limit", int, 0), free_entry_age=free_age,
        require_pin=gate.get("require_pin", bool, False), direction=gate.get("direction", str, "auto"),
        authenticate_card=gate.get("authenticate_card", bool, True),
        denylist=paths.get("denylist", str, None), journal=paths.get("journal", str, None),
        psam=psam.get("reader", str, "sim?kind=psam"), key_index=psam.get("key_index", int, 1), timezone=tz,
    )
    if cfg.direction not in ("entry", "exit", "auto"):
        raise ConfigError(f"gate.direction: {cfg.direction!r} is not entry, exit or auto")
    if not 0 <= cfg.key_index <= 255:
        raise ConfigError(f"psam.key_index: must be 0..255, got {cfg.key_index}")
    for reader in (term, windows, gate, paths, psam, root):
        reader.done()
    return cfg


def load_config(path: str | os.PathLike[str]) -> TerminalConfig:
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
