"""B9: four lanes of one station against a single-lane terminal, at 2 taps per second each.

The station runs in this process: four bus lanes (PC/SC readers of pcscd's
station slots, ``tests/pcsc_support.STATION_PORTS``) and two PSAMs (one local,
one T-Union) in the pool; lanes 1 and 3 tap local cards, 2 and 4 visitors'
(interoperable cards of city B, served by the T-Union PSAM), so the local PSAM
is shared by two lanes and so is the T-Union one. The single-lane terminal is
a plain TerminalApp on the first lane's reader with the local PSAM, as
``ykt validator run`` has it. Cards and PSAMs are served through vpcd by a
process of their own (as a card is outside the terminal).

Arrivals: each lane gets ``rate × seconds`` taps at Poisson times (given
their number, the arrival times of a Poisson process are independent uniform
draws over the window); a tap's latency runs from its arrival to its
decision, so a lane kept waiting for a PSAM pays for it. The card stays in
the field (the lane does not wait for it to leave, which at a gate is the
rider's time, not the terminal's); repeat-tap protection is off.

Blocks alternate single, station, single, station … (the same load falls on
both). Targets: every lane's p99 ≤ 1.5 × the single lane's p99; every lane's
taps within ±10 % of the lanes' mean. Reported, not targeted: the station's
throughput at saturation (four lanes tapping back to back).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cardlib.channel import Channel
from cardlib.clock import Clock
from cardlib.readers.base import Disposition
from cardlib.readers.pcsc import PcscReader
from tests.bench.common import Result, banner, knob, say
from tests.bench.pcsc import card_process, start_pcscd, stop_pcscd
from tests.pcsc_support import STATION_PORTS, missing_station_readers, station_reader

NAME = "B9"
TITLE = "a station of four lanes and two PSAMs vs a single-lane terminal, 2 taps/s each (pcscd + vpcd)"
RATE = 2.0
BUS = {"terminal": {"role": "bus_validator", "line": "K1"}, "fares": {"flat": 200},
       "windows": {"repeat_tap_seconds": 0}}

# Six slots from one process: four cards (local, visitor, local, visitor) and the two PSAMs.
_SERVE = (
    "import sys, threading\n"
    "from cardlib.keystore import PsamKind\n"
    "from simulators.station import make_station_psam\n"
    "from simulators.vpcd import VpcdBridge\n"
    "from tests.station.helpers import city_a, local_card, visitor_card\n"
    "ports = [int(p) for p in sys.argv[1:]]\n"
    "cards = [local_card(1, 9_000_000), visitor_card(2, 9_000_000), local_card(3, 9_000_000),\n"
    "         visitor_card(4, 9_000_000),\n"
    "         make_station_psam(PsamKind.LOCAL, city_a(), bytes.fromhex('000000000901')),\n"
    "         make_station_psam(PsamKind.TUNION, city_a(), bytes.fromhex('000000000902'))]\n"
    "for card, port in zip(cards, ports):\n"
    "    VpcdBridge(card, port=port).start()\n"
    "threading.Event().wait()\n"
)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def arrivals(n: int, seconds: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.uniform(0, seconds) for _ in range(n))


def drive(tap: object, times: list[float], start: float, latencies: list[float], deadline: float) -> None:
    """Tap at each arrival time (or as soon as the previous tap is done); latency from arrival."""
    for t in times:
        due = start + t
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        if time.perf_counter() > deadline:
            return
        tap()  # type: ignore[operator]
        latencies.append(time.perf_counter() - due)


def saturate(lanes: list[Any], readers: dict[str, PcscReader], seconds: float) -> tuple[int, int]:
    """Every lane taps back to back for ``seconds``; the taps made and those that opened."""
    done = [0, 0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def flat_out(lane: Any, reader: PcscReader) -> None:
        while time.perf_counter() < stop_at:
            opened = lane.tap(reader).open
            with lock:
                done[0] += 1
                done[1] += opened

    threads = [threading.Thread(target=flat_out, args=(lane, readers[lane.name])) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0], done[1]


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    seconds = knob("YKT_BENCH_B9_SECONDS", 30, 2, quick)
    blocks = 2
    daemon = start_pcscd()
    try:
        missing = missing_station_readers()
        if missing:
            result.error = (f"pcscd lacks the station slots {', '.join(missing)}: run .ci/setup-system.sh as root"
                            " and restart pcscd")
            return result
        root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        with card_process([sys.executable, "-c", _SERVE, *map(str, STATION_PORTS)], STATION_PORTS[0], env,
                          "station cards", station_reader(STATION_PORTS[0])), tempfile.TemporaryDirectory() as tmp:
            _measure(result, seconds, blocks, Path(tmp), quick)
    finally:
        stop_pcscd(daemon)
    return result


def _measure(result: Result, seconds: int, blocks: int, tmp: Path, quick: bool) -> None:
    from simulators.field import wait_for
    from terminal.config import parse_config
    from terminal.journal import Journal
    from terminal.psam import PsamClient
    from terminal.roles import make_app
    from terminal.station import Station
    from terminal.station_config import parse_station
    from tests.pcsc_support import card_seen

    for port in STATION_PORTS:
        if not wait_for(lambda p=port: card_seen(station_reader(p)), 15, 0.05):  # type: ignore[misc]
            result.error = f"pcscd does not see the card in {station_reader(port)}"
            return
    clock = Clock.system()
    lanes = [f"lane-{i + 1}" for i in range(4)]
    table = {"station": {"name": "B9"}, "pool": {"timeout_seconds": 5.0},
             "psam": [{"name": "local", "reader": f"pcsc:{station_reader(STATION_PORTS[4])}", "kind": "local"},
                      {"name": "tunion", "reader": f"pcsc:{station_reader(STATION_PORTS[5])}", "kind": "tunion"}],
             "lane": [{"name": n, "reader": f"pcsc:{station_reader(STATION_PORTS[i])}", "settings": BUS}
                      for i, n in enumerate(lanes)]}
    n = max(2, int(RATE * seconds))
    single_lat: list[float] = []
    lane_lat: dict[str, list[float]] = {name: [] for name in lanes}
    lane_taps: dict[str, int] = {name: 0 for name in lanes}
    refused: dict[str, int] = {}
    for block in range(blocks):
        # --- the single-lane terminal: TerminalApp, its own PSAM, the first lane's card -----------
        journal = Journal(tmp / f"single-{block}.db", clock)
        card_reader, psam_reader = PcscReader(station_reader(STATION_PORTS[0])), PcscReader(station_reader(STATION_PORTS[4]))
        psam_reader.connect()
        psam_reader.disconnect(Disposition.RESET)  # the station's pool left it inside its application
        psam_reader.connect()
        app = make_app(parse_config(BUS), PsamClient(Channel(psam_reader), test=True), journal, clock, name="single")

        def single_tap(app: object = app, reader: PcscReader = card_reader) -> None:
            d = app.tap(reader)  # type: ignore[attr-defined]
            if not d.open:
                refused[d.reason.value] = refused.get(d.reason.value, 0) + 1

        start = time.perf_counter() + 0.2
        drive(single_tap, arrivals(n, seconds, 100 + block), start, single_lat, start + seconds + 5)
        card_reader.close()
        psam_reader.close()
        journal.close()
        # --- the station: four lanes, two PSAMs ---------------------------------------------------
        journal = Journal(tmp / f"station-{block}.db", clock)
        station = Station(parse_station(table), journal, clock, log=lambda line: say(f"  {line}")).start()
        readers = {lane.name: PcscReader(station_reader(STATION_PORTS[i])) for i, lane in enumerate(station.lanes)}
        start = time.perf_counter() + 0.2
        threads = []
        for i, lane in enumerate(station.lanes):
            def lane_tap(lane: object = lane, reader: PcscReader = readers[lane.name]) -> None:
                d = lane.tap(reader)  # type: ignore[attr-defined]
                if not d.open:
                    refused[d.reason.value] = refused.get(d.reason.value, 0) + 1
                lane_taps[lane.name] += 1  # type: ignore[attr-defined]

            threads.append(threading.Thread(target=drive, args=(lane_tap, arrivals(n, seconds, 200 + 10 * block + i),
                                                                start, lane_lat[lane.name], start + seconds + 5)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if block == blocks - 1:
            sat_seconds = 1.0 if quick else 5.0
            done = saturate(station.lanes, readers, sat_seconds)
            result.figure("saturation_taps_per_s", round(done[0] / sat_seconds, 1),
                          f"saturation (4 lanes back to back, {sat_seconds:g} s): {done[0] / sat_seconds:.1f} taps/s"
                          f" for the station, {done[1]} of {done[0]} opened (reported, not targeted)")
        for reader in readers.values():
            reader.close()
        station.close()
        journal.close()
    single_p99 = percentile(single_lat, 0.99)
    result.figure("single_p50_ms", round(percentile(single_lat, 0.5) * 1e3, 2),
                  f"single lane: {len(single_lat)} taps, p50 {percentile(single_lat, 0.5) * 1e3:.1f} ms,"
                  f" p99 {single_p99 * 1e3:.1f} ms")
    result.figure("single_p99_ms", round(single_p99 * 1e3, 2), f"  (single p99 {single_p99 * 1e3:.1f} ms)")
    worst = 0.0
    for name in lanes:
        lat = lane_lat[name]
        p99 = percentile(lat, 0.99)
        worst = max(worst, p99)
        result.figure(f"{name}_p99_ms", round(p99 * 1e3, 2),
                      f"{name}: {len(lat)} taps, p50 {percentile(lat, 0.5) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
                      f" ({p99 / single_p99:.2f}× the single lane)")
    counts = [len(lane_lat[name]) for name in lanes]
    mean = sum(counts) / len(counts)
    spread = max(abs(c - mean) / mean for c in counts) if mean else 1.0
    if refused:
        result.note("refused taps: " + ", ".join(f"{k} {v}" for k, v in sorted(refused.items())))
    result.target("every lane's p99 <= 1.5x the single lane's", worst <= 1.5 * single_p99,
                  f"worst lane p99 {worst * 1e3:.1f} ms vs single {single_p99 * 1e3:.1f} ms"
                  f" ({worst / single_p99:.2f}×)")
    result.target("no lane starved: taps within ±10% of the mean", spread <= 0.10,
                  f"taps {counts}, mean {mean:.1f}, largest gap {spread * 100:.1f} %")
    say(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
