"""`ykt station run` as a user runs it: a station.toml of card and PSAM images, decisions of every
lane on one output with the lane named, one journal, Ctrl-C stopping every lane; bad configurations
in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardlib.keystore import PsamKind
from simulators.image import save_image
from simulators.station import make_station_psam
from terminal.journal import Journal
from tests.pcsc_support import STATION_PORTS, station_reader, station_slots_problem
from tests.station.helpers import city_a, local_card, stranger_card, visitor_card

ROOT = Path(__file__).resolve().parents[2]


def write_station(tmp_path: Path) -> Path:
    save_image(make_station_psam(PsamKind.LOCAL, city_a(), bytes.fromhex("000000000401")), tmp_path / "local.json")
    save_image(make_station_psam(PsamKind.TUNION, city_a(), bytes.fromhex("000000000402")), tmp_path / "tunion.json")
    for name, card in (("a", local_card(41)), ("b", visitor_card(42)), ("c", stranger_card(43))):
        save_image(card, tmp_path / f"{name}.json")
    return station_files(tmp_path)


def station_files(tmp_path: Path) -> Path:
    """bus.toml and station.toml over the images local.json, tunion.json (PSAMs), a, b, c.json (cards)."""
    (tmp_path / "bus.toml").write_text('[terminal]\nrole = "bus_validator"\nline = "K1"\n[fares]\nflat = 200\n',
                                       encoding="utf-8")
    station = tmp_path / "station.toml"
    station.write_text(f"""
[station]
name = "S01"
journal = "station.db"

[pool]
strategy = "first"
timeout_seconds = 1

[[psam]]
name = "local-1"
reader = "sim:{tmp_path / 'local.json'}?kind=psam"
kind = "local"

[[psam]]
name = "tunion-1"
reader = "sim:{tmp_path / 'tunion.json'}?kind=psam"
kind = "tunion"

[[lane]]
name = "bus-a"
reader = "sim:{tmp_path / 'a.json'}"
config = "bus.toml"

[[lane]]
name = "bus-b"
reader = "sim:{tmp_path / 'b.json'}"
config = "bus.toml"

[[lane]]
name = "entry-c"
reader = "sim:{tmp_path / 'c.json'}"
[lane.settings.terminal]
role = "metro_gate"
station = "S01"
[lane.settings.gate]
direction = "entry"
[lane.settings.fares]
bands = [[6, 300]]
stations = {{ S01 = 0.0 }}
""", encoding="utf-8")
    return station


def ykt(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_every_lane_decides_on_one_output_into_one_journal(tmp_path: Path) -> None:
    station = write_station(tmp_path)
    done = ykt("station", "run", "--config", str(station), "--max-taps", "1", "--json",
               "--now", "2026-11-28T09:00:00+08:00")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    by_lane = {obj["lane"]: obj for obj in lines}
    assert set(by_lane) == {"bus-a", "bus-b", "entry-c"}
    assert by_lane["bus-a"]["decision"] == "open" and by_lane["bus-a"]["amount"] == 200
    assert by_lane["bus-b"]["decision"] == "open" and by_lane["bus-b"]["terminal"] == "bus-b"
    assert by_lane["entry-c"]["reason"] == "no_psam_for_card"
    assert "psam tunion-1: tunion, terminal 000000000402 key index 2" in done.stderr
    journal = Journal(tmp_path / "station.db", readonly=True)
    records = journal.records("completed")
    assert sorted((r.terminal_id.hex(), r.key_index) for r in records) == [("000000000401", 1), ("000000000402", 2)]
    journal.close()


def test_ctrl_c_stops_every_lane(tmp_path: Path) -> None:
    station = write_station(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "station", "run", "--config", str(station)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    seen = [proc.stdout.readline() for _ in range(3)]  # one decision per lane; then each waits for its card to leave
    assert sorted(line.split()[1] for line in seen) == ["bus-a", "bus-b", "entry-c"]
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in err, (proc.returncode, err)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('kind = "tunion"', 'kind = "national"'), "psam[1].kind: 'national' is not local or tunion"),
    (lambda t: t.replace('strategy = "first"', 'strategy = "first"\nspeed = 2'), "pool.speed: unknown key"),
    (lambda t: t.replace('config = "bus.toml"', 'config = "bus.toml"\nsettings = {}', 1),
     "lane[0]: give exactly one of config"),
    (lambda t: t.replace('name = "bus-b"', 'name = "bus-a"'), "lane: two share a name"),
])
def test_a_bad_station_file_is_one_line(tmp_path: Path, edit: object, message: str) -> None:
    station = write_station(tmp_path)
    station.write_text(edit(station.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    done = ykt("station", "run", "--config", str(station))
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr


def test_a_station_whose_local_psams_do_not_answer_stops_in_one_line(tmp_path: Path) -> None:
    """No local PSAM at start and no station.local_issuer: the station cannot know its city. Each slot's
    problem is logged first (stderr), then the error, one line, exit 2 (a configuration error)."""
    station = write_station(tmp_path)
    (tmp_path / "local.json").unlink()
    done = ykt("station", "run", "--config", str(station), "--max-taps", "1")
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout)
    lines = done.stderr.splitlines()
    assert lines[0].startswith("psam local-1: not in the pool (") and "no such card image" in lines[0]
    assert lines[-1].endswith("no local PSAM answered at start: name the local issuer in station.local_issuer")
    assert len(lines) == 3 and lines[1].startswith("psam tunion-1: tunion"), lines


def test_the_station_slots_message_is_one_line_naming_the_slots_and_the_remedy() -> None:
    """What the ``station_slots`` fixture fails with when a pcscd it did not start lacks the slots (the
    fixture restarts only a pcscd of its own session): pytest shows the one line."""
    missing = [station_reader(p) for p in STATION_PORTS[4:]]
    text = station_slots_problem(missing)
    assert "\n" not in text
    assert "pcscd lacks the station's vpcd slots YKT vpcd 29904 00 00, YKT vpcd 29904 00 01 (ports 29900-29905)" in text
    assert "run .ci/setup-system.sh as root (it writes /etc/reader.conf.d/yikatong-station)" in text
    assert text.endswith("and restart pcscd, or stop it and let the tests start their own")


def test_a_station_made_with_the_cli_alone(tmp_path: Path) -> None:
    """What docs/station.md asks of a technician, by ykt alone: a local and a T-Union PSAM
    (`ykt sim psam --kind`), a local card, a visitor of city B (`ykt sim new --interoperable
    --issuer-keys`) and a city-B card that is not interoperable; the visitor pays through the
    T-Union PSAM with key index 2, the other city-B card is not taken."""
    from importlib import resources

    city_b_keys = str(resources.files("cardlib").joinpath("data/test_issuer_city_b.json"))
    made = [("sim", "psam", "--out", str(tmp_path / "local.json"), "--terminal-id", "000000000401"),
            ("sim", "psam", "--out", str(tmp_path / "tunion.json"), "--terminal-id", "000000000402",
             "--kind", "tunion"),
            ("sim", "new", "--out", str(tmp_path / "a.json"), "--seed", "41"),
            ("sim", "new", "--out", str(tmp_path / "b.json"), "--seed", "42", "--region", "330100",
             "--issuer-keys", city_b_keys, "--interoperable"),
            ("sim", "new", "--out", str(tmp_path / "c.json"), "--seed", "43", "--region", "330100",
             "--issuer-keys", city_b_keys)]
    for args in made:
        done = ykt(*args)
        assert done.returncode == 0, done.stderr
    assert "T-Union PSAM (key index 2), terminal 000000000402" in ykt(
        "sim", "psam", "--out", str(tmp_path / "t2.json"), "--terminal-id", "000000000402", "--kind", "tunion").stdout
    done = ykt("station", "run", "--config", str(station_files(tmp_path)), "--max-taps", "1", "--json",
               "--now", "2026-11-28T09:00:00+08:00")
    assert done.returncode == 0, done.stderr
    by_lane = {obj["lane"]: obj for obj in map(json.loads, done.stdout.splitlines())}
    assert (by_lane["bus-a"]["decision"], by_lane["bus-b"]["decision"]) == ("open", "open")
    assert by_lane["entry-c"]["reason"] == "no_psam_for_card"
    journal = Journal(tmp_path / "station.db", readonly=True)
    records = journal.records("completed")
    assert sorted((r.terminal_id.hex(), r.key_index) for r in records) == [("000000000401", 1), ("000000000402", 2)]
    journal.close()
