"""Terminal configuration: the example files load; every error names its key path."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cardlib.errors import ConfigError
from terminal.config import load_config, parse_config
from terminal.fares import Concession, RegionRule

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUS = {"terminal": {"role": "bus_validator"}}
METRO = {"terminal": {"role": "metro_gate"}}


def test_examples_load() -> None:
    bus = load_config(EXAMPLES / "bus-validator.toml")
    assert (bus.role, bus.fares.flat, bus.fares.transfer_discount, bus.fares.transfer_window) == (
        "bus_validator", 200, 100, timedelta(minutes=90))
    assert bus.fares.concessions[0] == Concession("elder free", 0, min_age=65)
    metro = load_config(EXAMPLES / "metro-gate.toml")
    assert metro.role == "metro_gate" and metro.station in metro.fares.stations and metro.fares.max_fare == 800
    museum = load_config(EXAMPLES / "museum-gate.toml")
    assert (museum.role, museum.fares.admission, museum.daily_entry_limit) == ("identity_gate", 4000, 2)
    assert sorted(p.name for p in EXAMPLES.glob("*.toml")) == ["bus-validator.toml", "metro-gate.toml",
                                                                "museum-gate.toml"]


def test_defaults() -> None:
    cfg = parse_config(BUS)
    assert cfg.recovery_window == timedelta(seconds=120) and cfg.psam == "sim?kind=psam"
    assert (cfg.key_index, cfg.timezone, cfg.terminal_id, cfg.denylist, cfg.journal) == (
        1, "Asia/Shanghai", None, None, None)
    assert cfg.fares.flat == 200 and cfg.fares.same_city_treatment and cfg.journal_sync == "write_ahead"
    assert cfg.denylist_start_without is False  # a configured list that is bad stops the start


def test_every_key_is_read() -> None:
    cfg = parse_config({
        "terminal": {"role": "metro_gate", "name": "S01 gate 3", "id": "0102030405AB", "station": "S01",
                     "line": "1", "industry": 1},
        "fares": {"flat": 300, "segments": [[5, 300], [9, 200]], "stations": {"S01": 0, "S02": 2.5},
                  "bands": [[6, 300], [12.5, 400]], "zones": {"S01": 1, "S02": 2}, "zone_bands": [[1, 300], [2, 500]],
                  "max_fare": 900, "overtime_minutes": 240, "overtime_surcharge": 300, "admission": 0,
                  "admission_visitor": 100},
        "transfer": {"window_minutes": 60, "discount": 50},
        "region": {"local": "3303", "same_city_treatment": False, "visitor_surcharge_percent": 20,
                   "rules": {"31": 80}},
        "concessions": [{"name": "student", "pay_percent": 50, "card_type": "student", "min_age": 6, "max_age": 25,
                         "local_only": True}],
        "windows": {"recovery_seconds": 60, "repeat_tap_seconds": 30.5, "anti_passback_seconds": 0},
        "gate": {"direction": "exit", "free_entry_age": 70, "daily_limit": 3, "require_pin": True,
                 "authenticate_card": False},
        "paths": {"denylist": "/var/lib/ykt/deny.bin", "journal": "/var/lib/ykt/journal.db"},
        "psam": {"reader": "pcsc:1", "key_index": 2},
        "journal": {"sync": "full"},
        "denylist": {"start_without": True},
        "timezone": "Asia/Urumqi",
    })
    assert cfg.terminal_id == bytes.fromhex("0102030405AB") and cfg.industry == 1
    assert cfg.fares.zones == {"S01": 1, "S02": 2} and cfg.fares.zone_bands == ((1, 300), (2, 500))
    assert cfg.fares.bands == ((6.0, 300), (12.5, 400)) and cfg.fares.admission_visitor == 100
    assert cfg.fares.region_rules == (RegionRule("31", 80),) and cfg.fares.transfer_window == timedelta(hours=1)
    assert cfg.fares.concessions == (Concession("student", 50, "student", 6, 25, True),)
    assert (cfg.repeat_tap_window, cfg.anti_passback_window) == (timedelta(seconds=30.5), timedelta(0))
    assert (cfg.direction, cfg.free_entry_age, cfg.daily_entry_limit, cfg.require_pin, cfg.authenticate_card) == (
        "exit", 70, 3, True, False)
    assert (cfg.psam, cfg.key_index, cfg.timezone, cfg.journal) == ("pcsc:1", 2, "Asia/Urumqi", "/var/lib/ykt/journal.db")
    assert cfg.journal_sync == "full" and cfg.denylist_start_without is True


def with_(base: dict[str, Any], **tables: Any) -> dict[str, Any]:
    return {**base, **tables}


@pytest.mark.parametrize(("data", "message"), [
    # missing or unknown values
    ({}, "terminal.role: missing"),
    ({"terminal": {"role": "tram"}}, "terminal.role: 'tram' is not one of bus_validator, metro_gate, identity_gate"),
    (with_(METRO, gate={"direction": "up"}), "gate.direction: 'up' is not entry, exit or auto"),
    (with_(BUS, timezone="Mars/Olympus"), "timezone: unknown time zone 'Mars/Olympus'"),
    # zoneinfo would import a package 400 levels deep and recurse out (found by the fuzz suite)
    (with_(BUS, timezone="a/" * 400 + "b"), "timezone: unknown time zone 'a/a/a/"),
    (with_(BUS, timezone="../etc/localtime"), "timezone: unknown time zone '../etc/localtime'"),
    # unknown keys, at every level
    ({"terminal": {"role": "bus_validator", "colour": 1}}, "terminal.colour: unknown key"),
    (with_(BUS, fare={"flat": 1}), "fare: unknown key"),
    (with_(BUS, fares={"flatt": 1}), "fares.flatt: unknown key"),
    (with_(BUS, concessions=[{"pay_percent": 0, "minage": 65}]), "concessions[0].minage: unknown key"),
    (with_(BUS, denylist={"start_without": "yes"}), "denylist.start_without: expected bool, got str"),
    (with_(BUS, denylist={"required": False}), "denylist.required: unknown key"),
    # wrong types
    (with_(BUS, fares={"flat": "2"}), "fares.flat: expected int, got str '2'"),
    (with_(BUS, fares={"flat": True}), "fares.flat: expected int, got a boolean"),
    (with_(BUS, fares="cheap"), "fares: expected dict"),
    (with_(BUS, concessions=[5]), "concessions[0]: expected a table"),
    (with_(METRO, fares={"stations": {"A": "far"}}), "fares.stations.A: expected a distance in km, got 'far'"),
    (with_(METRO, fares={"zones": {"A": 1.5}}), "fares.zones.A: expected a zone number"),
    (with_(BUS, fares={"segments": [[5]]}), r"fares.segments[0]: expected [limit, fare in fen], got [5]"),
    (with_(BUS, fares={"bands": [[6, True]]}), "fares.bands[0]: expected [limit, fare in fen]"),
    # ranges
    (with_(BUS, fares={"flat": -1}), "fares.flat: must be a non-negative integer (fen), got -1"),
    (with_(BUS, fares={"admission_visitor": -5}), "fares.admission_visitor: must be a non-negative integer (fen)"),
    (with_(BUS, transfer={"discount": -100}), "transfer.discount: must be a non-negative integer (fen)"),
    (with_(BUS, ssse={"addressing": "path"}), "ssse.addressing: 'path' is not fid or sfi"),
    (with_(BUS, transfer={"window_minutes": -1}), "transfer.window_minutes: must not be negative"),
    (with_(BUS, fares={"bands": [[6, 300], [3, 200]]}), "fares.bands: limits must be ascending"),
    (with_(BUS, fares={"overtime_minutes": -3}), "fares.overtime_minutes: must be a non-negative number of minutes"),
    (with_(BUS, concessions=[{"pay_percent": 150}]), "concessions[0].pay_percent: must be a percentage 0..100, got 150"),
    (with_(BUS, concessions=[{"pay_percent": 0, "min_age": 70, "max_age": 60}]), "concessions[0]: min_age 70 is above"),
    (with_(BUS, concessions=[{"pay_percent": 0, "min_age": -1}]), "concessions[0].min_age: must be a non-negative age"),
    (with_(BUS, region={"visitor_surcharge_percent": 101}), "region.visitor_surcharge_percent: must be a percentage"),
    (with_(BUS, region={"rules": {"31": 2000}}), "region.rules.31: expected a percentage paid 0..1000"),
    (with_(BUS, region={"rules": {"sh": 80}}), "region.rules.sh: a region code prefix is digits"),
    (with_(BUS, region={"local": "hz"}), "region.local: a region code prefix is digits"),
    (with_(METRO, windows={"recovery_seconds": -5}), "windows.recovery_seconds: must not be negative, got -5"),
    (with_(METRO, gate={"daily_limit": -1}), "gate.daily_limit: must be a non-negative number of entries"),
    (with_(METRO, gate={"free_entry_age": -65}), "gate.free_entry_age: must be a non-negative age"),
    (with_(BUS, psam={"key_index": 256}), "psam.key_index: must be 0..255, got 256"),
    (with_(BUS, psam={"reader": " "}), "psam.reader: must be a reader URI"),
    (with_(BUS, journal={"sync": "never"}), "journal.sync: 'never' is not full or write_ahead"),
    ({"terminal": {"role": "bus_validator", "id": "0102"}}, "terminal.id: 12 hex digits"),
    ({"terminal": {"role": "bus_validator", "id": "01020304050G"}}, "terminal.id: 12 hex digits"),
    # consistency
    ({"terminal": {"role": "metro_gate", "station": "S99"}, "fares": {"stations": {"S01": 0}}},
     "terminal.station: 'S99' is not in fares.stations"),
])
def test_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        parse_config(data)


def test_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="none.toml: no such configuration file"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[terminal\nrole=1")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[terminal]\nrole = "bus_validator"\n[fares]\nflat = 200\nmax_far = 800\n')
    with pytest.raises(ConfigError, match=r"typo.toml: fares.max_far: unknown key"):
        load_config(typo)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_every_time_zone_python_knows_is_accepted() -> None:
    import zoneinfo

    for key in sorted(zoneinfo.available_timezones()):
        assert parse_config(with_(BUS, timezone=key)).timezone == key
