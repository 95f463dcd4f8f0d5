"""Terminal configuration: TOML, validated; errors name the key and the problem.

Every key is documented in docs/configuration.md. Unknown keys are errors: a
typo must not pass silently.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cardlib.errors import ConfigError
from cardlib.safefiles import LIMIT_SMALL, read_text
from cardlib.ssse.files import CARD_TYPES
from terminal.fares import Concession, FarePolicy, RegionRule

ROLES = ("bus_validator", "metro_gate", "identity_gate")
MAX_FEN = 0x7FFFFFFF  # the largest balance a purse holds; a fare above it would overflow DEBIT's 4-byte amount
_TZ_KEY = re.compile(r"[A-Za-z0-9_+-]{1,40}(?:/[A-Za-z0-9_+-]{1,40}){0,3}")


@dataclass(frozen=True)
class TerminalConfig:
    role: str
    name: str = ""
    terminal_id: bytes | None = None  # 6 bytes; None: the PSAM's terminal number
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
    denylist_start_without: bool = False  # start (checking no serial) when no good deny list opens
    journal: str | None = None
    journal_sync: str = "write_ahead"  # terminal.journal.SYNC_MODES
    psam: str = "sim?kind=psam"
    key_index: int = 1
    timezone: str = "Asia/Shanghai"
    balance_p1: int = 0x00  # GET BALANCE: 00 including the overdraft, 03 excluding it
    composite_prove_p2: int = 0x09  # GET TRANSACTION PROVE's P2 for a torn composite purchase (09 or 06)
    on_bad_crc: str = "reset"  # a 0x1A record whose CRC fails: reset (zeroed, header kept) or keep
    ssse_addressing: str = "fid"  # EF05/EF06: SELECT by file identifier then records by number, or by SFI


def _duration(key: str, value: float, unit: str) -> timedelta:
    """A window as a timedelta; NaN, infinity and spans beyond timedelta's range are refused."""
    try:
        if math.isnan(value):
            raise ValueError(value)
        return timedelta(**{unit: value})
    except (ValueError, OverflowError):
        raise ConfigError(f"{key}: {value!r} is not a usable number of {unit}") from None


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
        if value > MAX_FEN:
            raise ConfigError(f"{self._key(key)}: at most {MAX_FEN} fen (a purse's largest balance), got {value}")
        return int(value)

    def count(self, key: str, default: int | None, what: str = "integer") -> Any:
        value = self.get(key, int, default)
        if value is not None and value < 0:
            raise ConfigError(f"{self._key(key)}: must be a non-negative {what}, got {value}")
        return value

    def percent(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if not 0 <= value <= 100:
            raise ConfigError(f"{self._key(key)}: must be a percentage 0..100, got {value}")
        return int(value)

    def seconds(self, key: str, default: float, unit: str = "seconds") -> timedelta:
        value = self.get(key, (int, float), default)
        if value < 0:
            raise ConfigError(f"{self._key(key)}: must not be negative, got {value}")
        return _duration(self._key(key), value, unit)

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
        if (not isinstance(item, list) or len(item) != 2 or any(isinstance(x, bool) for x in item)
                or not isinstance(item[0], number) or (isinstance(item[0], float) and not math.isfinite(item[0]))
                or not isinstance(item[1], int) or not 0 <= item[1] <= MAX_FEN):
            raise ConfigError(f"{reader._key(key)}[{i}]: expected [limit, fare in fen], got {item!r}")
        out.append((item[0], item[1]))
    limits: list[float] = [float(p[0]) for p in out]
    if limits != sorted(limits):
        raise ConfigError(f"{reader._key(key)}: limits must be ascending")
    return tuple(out)


def _table_of_numbers(reader: _Reader, key: str, integers: bool, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    raw: dict[str, Any] = reader.get(key, dict, {})
    for name, value in raw.items():
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf
                or (integers and not isinstance(value, int))):
            raise ConfigError(f"{reader._key(key)}.{name}: expected {what}, got {value!r}")
        out[str(name)] = value
    return out


def _card_type(c: _Reader) -> str | None:
    name: str | None = c.get("card_type", str, None)
    if name is not None and name not in CARD_TYPES:
        raise ConfigError(f"{c._key('card_type')}: {name!r} is not one of {', '.join(CARD_TYPES)}")
    return name


def _concessions(root: _Reader) -> tuple[Concession, ...]:
    concessions = []
    for i, item in enumerate(root.get("concessions", list, [])):
        if not isinstance(item, dict):
            raise ConfigError(f"concessions[{i}]: expected a table")
        c = _Reader(item, f"concessions[{i}]")
        concession = Concession(
            name=c.get("name", str, f"concession {i + 1}"), pay_percent=c.percent("pay_percent", 100),
            card_type=_card_type(c), min_age=c.count("min_age", None, "age"),
            max_age=c.count("max_age", None, "age"), local_only=c.get("local_only", bool, False))
        if concession.min_age is not None and concession.max_age is not None and concession.min_age > concession.max_age:
            raise ConfigError(f"concessions[{i}]: min_age {concession.min_age} is above max_age {concession.max_age}")
        c.done()
        concessions.append(concession)
    return tuple(concessions)


def _region_rules(r: _Reader) -> tuple[RegionRule, ...]:
    rules = []
    for prefix, percent in r.get("rules", dict, {}).items():
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 1000:
            raise ConfigError(f"region.rules.{prefix}: expected a percentage paid 0..1000, got {percent!r}")
        if not str(prefix).isdigit():
            raise ConfigError(f"region.rules.{prefix}: a region code prefix is digits")
        rules.append(RegionRule(str(prefix), percent))
    return tuple(rules)


def _minutes(reader: _Reader, key: str) -> int:
    value: int = reader.count(key, 0, "number of minutes")
    _duration(reader._key(key), value, "minutes")  # the fare rules add it to a time
    return value


def _fares(root: _Reader) -> FarePolicy:
    f = root.table_of("fares")
    stations = {k: float(v) for k, v in _table_of_numbers(f, "stations", False, "a distance in km").items()}
    zones = _table_of_numbers(f, "zones", True, "a zone number")
    t = root.table_of("transfer")
    r = root.table_of("region")
    window = t.seconds("window_minutes", 90, "minutes")
    policy = FarePolicy(
        flat=f.fen("flat", 200), segments=_pairs(f, "segments", int), stations=stations,
        bands=tuple((float(a), b) for a, b in _pairs(f, "bands", (int, float))), zones=zones,
        zone_bands=_pairs(f, "zone_bands", int), max_fare=f.fen("max_fare", 0),
        overtime_minutes=_minutes(f, "overtime_minutes"),
        overtime_surcharge=f.fen("overtime_surcharge", 0),
        transfer_window=window, transfer_discount=t.fen("discount", 0),
        concessions=_concessions(root), local_region=r.get("local", str, ""),
        same_city_treatment=r.get("same_city_treatment", bool, True),
        visitor_surcharge_percent=r.percent("visitor_surcharge_percent", 0), region_rules=_region_rules(r),
        admission=f.fen("admission", 0),
        admission_visitor=f.fen("admission_visitor", -1) if "admission_visitor" in f.table else None,
    )
    if policy.local_region and not policy.local_region.isdigit():
        raise ConfigError(f"region.local: a region code prefix is digits, got {policy.local_region!r}")
    for reader in (f, t, r):
        reader.done()
    return policy


def _terminal_id(term: _Reader) -> bytes | None:
    text = term.get("id", str, None)
    if text is None:
        return None
    try:
        tid = bytes.fromhex(text)
    except ValueError:
        tid = b""
    if len(tid) != 6 or len(text) != 12:
        raise ConfigError(f"terminal.id: 12 hex digits (the 6-byte terminal number), got {text!r}")
    return tid


def parse_config(data: dict[str, Any]) -> TerminalConfig:
    """The configuration of a parsed TOML document; ConfigError names the key at fault."""
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
    journal = root.table_of("journal")
    deny = root.table_of("denylist")
    purse = root.table_of("purse")
    ssse = root.table_of("ssse")
    tz = _timezone(root)
    free_age = gate.count("free_entry_age", None, "age")
    cfg = TerminalConfig(
        role=role, name=term.get("name", str, ""), terminal_id=_terminal_id(term),
        station=term.get("station", str, ""),
        line=term.get("line", str, ""), industry=term.get("industry", int, 0x01 if role == "metro_gate" else 0x02),
        fares=_fares(root),
        recovery_window=windows.seconds("recovery_seconds", 120),
        repeat_tap_window=windows.seconds("repeat_tap_seconds", 60),
        anti_passback_window=windows.seconds("anti_passback_seconds", 300),
        daily_entry_limit=gate.count("daily_limit", 0, "number of entries"), free_entry_age=free_age,
        require_pin=gate.get("require_pin", bool, False), direction=gate.get("direction", str, "auto"),
        authenticate_card=gate.get("authenticate_card", bool, True),
        denylist=paths.get("denylist", str, None), journal=paths.get("journal", str, None),
        denylist_start_without=deny.get("start_without", bool, False),
        journal_sync=journal.get("sync", str, "write_ahead"),
        psam=psam.get("reader", str, "sim?kind=psam"), key_index=psam.get("key_index", int, 1), timezone=tz,
        balance_p1=purse.get("balance_p1", int, 0x00), composite_prove_p2=purse.get("composite_prove_p2", int, 0x09),
        on_bad_crc=purse.get("on_bad_crc", str, "reset"),
        ssse_addressing=ssse.get("addressing", str, "fid"),
    )
    _check_choices(cfg)
    _check_values(cfg)
    for reader in (term, windows, gate, paths, psam, journal, deny, purse, root):
        reader.done()
    return cfg


def _timezone(root: _Reader) -> str:
    """The ``timezone`` key: an IANA time zone this system knows."""
    tz: str = root.get("timezone", str, "Asia/Shanghai")
    try:
        # an IANA key is one to three names ("UTC", "Asia/Shanghai", "America/Indiana/Knox"); a key of
        # hundreds of parts would make zoneinfo import a package that deep, and recurse out
        if not _TZ_KEY.fullmatch(tz):
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"timezone: unknown time zone {tz if len(tz) <= 64 else tz[:60] + '…'!r}") from None
    return tz


def _check_choices(cfg: TerminalConfig) -> None:
    """The keys that name one of a few choices."""
    if cfg.ssse_addressing not in ("fid", "sfi"):
        raise ConfigError(f"ssse.addressing: {cfg.ssse_addressing!r} is not fid or sfi")
    if cfg.balance_p1 not in (0x00, 0x03):
        raise ConfigError(f"purse.balance_p1: 0 (including the overdraft) or 3 (excluding it), got {cfg.balance_p1}")
    if cfg.composite_prove_p2 not in (0x06, 0x09):
        raise ConfigError(f"purse.composite_prove_p2: 9 or 6, got {cfg.composite_prove_p2}")
    if cfg.on_bad_crc not in ("reset", "keep"):
        raise ConfigError(f"purse.on_bad_crc: {cfg.on_bad_crc!r} is not reset or keep")
    if cfg.journal_sync not in ("full", "write_ahead"):
        raise ConfigError(f"journal.sync: {cfg.journal_sync!r} is not full or write_ahead")
    if cfg.direction not in ("entry", "exit", "auto"):
        raise ConfigError(f"gate.direction: {cfg.direction!r} is not entry, exit or auto")


def _check_values(cfg: TerminalConfig) -> None:
    """The codes written on the card, the bytes, the PSAM's reader and the station's fare table."""
    for key, code in (("terminal.station", cfg.station), ("terminal.line", cfg.line)):
        if len(code) > 8 or not code.isascii():  # the 2701/2702 records hold 8 ASCII bytes of it
            raise ConfigError(f"{key}: {code!r} is written on the card: at most 8 ASCII characters")
    if not 0 <= cfg.industry <= 255:
        raise ConfigError(f"terminal.industry: one byte 0..255, got {cfg.industry}")
    if not 0 <= cfg.key_index <= 255:
        raise ConfigError(f"psam.key_index: must be 0..255, got {cfg.key_index}")
    if not cfg.psam.strip():
        raise ConfigError("psam.reader: must be a reader URI, got an empty string")
    table = cfg.fares.zones or cfg.fares.stations
    if cfg.role == "metro_gate" and cfg.station and table and cfg.station not in table:
        where = "fares.zones" if cfg.fares.zones else "fares.stations"
        raise ConfigError(f"terminal.station: {cfg.station!r} is not in {where}")


def read_toml(path: str | os.PathLike[str], what: str = "configuration") -> dict[str, Any]:
    """A small TOML file read and parsed; every failure a ConfigError naming the file."""
    source = os.fspath(path)
    try:
        return tomllib.loads(read_text(source, what, LIMIT_SMALL, ConfigError))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such {what} file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML (nested too deeply)") from None


def load_config(path: str | os.PathLike[str]) -> TerminalConfig:
    source = os.fspath(path)
    data = read_toml(source)
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
