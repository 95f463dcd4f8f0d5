from __future__ import annotations

from pathlib import Path

import pytest

from cardlib.errors import ConfigError
from terminal.config import load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["bus-validator.toml", "metro-gate.toml", "museum-gate.toml"])
def test_examples_load(name: str) -> None:
    cfg = load_config(EXAMPLES / name)
    assert cfg.role in ("bus_validator", "metro_gate", "identity_gate")


@pytest.mark.parametrize(("data", "message"), [
    ({}, "terminal.role: missing"),
    ({"terminal": {"role": "tram"}}, "terminal.role: 'tram' is not one of"),
    ({"terminal": {"role": "bus_validator"}, "fares": {"flat": -1}}, "fares.flat: must be a non-negative integer"),
    ({"terminal": {"role": "bus_validator"}, "fares": {"flat": "2"}}, "fares.flat: expected int"),
    ({"terminal": {"role": "bus_validator", "colour": 1}}, "terminal.colour: unknown key"),
    ({"terminal": {"role": "bus_validator"}, "fares": {"bands": [[6, 300], [3, 200]]}}, "ascending"),
    ({"terminal": {"role": "bus_validator"}, "concessions": [{"pay_percent": 150}]}, "concessions[0].pay_percent"),
    ({"terminal": {"role": "bus_validator"}, "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"terminal": {"role": "metro_gate"}, "gate": {"direction": "up"}}, "gate.direction"),
    ({"terminal": {"role": "metro_gate"}, "windows": {"recovery_seconds": -5}}, "windows.recovery_seconds"),
    ({"terminal": {"role": "metro_gate"}, "fares": {"stations": {"A": "far"}}}, "fares.stations.A"),
])
def test_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data)


def test_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[terminal\nrole=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
