"""A station: several lanes and a pool of PSAMs in one process (docs/station.md).

Each lane runs in its own thread with its own reader and role; the PSAMs are
shared through the pool (terminal.sam_pool). The station keeps ONE journal
for every lane: a card torn at one lane is resolved at whichever lane it taps
next, and a metro exit gate's fare needs nothing of the entry gate's but the
card — one journal is what lets the first work, and it costs a lock that B9
measures (docs/performance.md). Every lane's decisions go to one output, the
lane named. ``stop`` (Ctrl-C in ``ykt station run``) ends every lane after
its current tap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cardlib.clock import Clock
from cardlib.errors import ConfigError
from cardlib.keystore import PsamKind, builtin_store
from cardlib.readers.base import Reader
from cardlib.readers.registry import open_reader
from terminal.current_denylist import CurrentDenyList
from terminal.journal import Journal
from terminal.roles import make_app
from terminal.sam_pool import SamPool
from terminal.station_config import StationConfig
from terminal.station_lane import Lane, LaneEvent
from terminal.station_psam import LanePsam


def test_only_issuer(issuer_id: bytes) -> bool:
    """Whether ``issuer_id`` is one of the TEST ONLY issuers the package ships: a PSAM of such an
    issuer marks its records as test."""
    return any(i.issuer_id == issuer_id and i.test_only for i in builtin_store().issuers)


test_only_issuer.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


class Station:
    """The lanes and the pool of one station."""

    def __init__(self, config: StationConfig, journal: Journal, clock: Clock,
                 opener: Callable[[str], Reader] = open_reader, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.journal = journal
        self.clock = clock
        self._opener = opener
        self._log = log or (lambda line: None)
        self.pool = SamPool(list(config.psams), opener, strategy=config.strategy, timeout=config.timeout,
                            retry=config.retry, log=self._log, tunion_key_index=config.tunion_key_index)
        self.lanes: list[Lane] = []
        self._denylists: list[CurrentDenyList] = []

    def start(self) -> Station:
        """Open the PSAM slots and build the lanes (their readers open when they run)."""
        self.pool.start()
        local = [s.client for s in self.pool.present(PsamKind.LOCAL) if s.client is not None]
        issuers = {c.app.issuer_id for c in local}
        if self.config.local_issuer is not None:
            issuer = self.config.local_issuer
            if issuers - {issuer}:
                raise ConfigError(f"station.local_issuer is {issuer.hex().upper()} but a local PSAM is of issuer"
                                  f" {sorted(issuers - {issuer})[0].hex().upper()}")
        elif len(issuers) == 1:
            issuer = issuers.pop()
        elif not issuers:
            raise ConfigError("no local PSAM answered at start: name the local issuer in station.local_issuer")
        else:
            raise ConfigError("the local PSAMs are of different issuers: a station has one local issuer")
        test = any(test_only_issuer(s.client.app.issuer_id) for s in self.pool.present() if s.client is not None)
        for lane in self.config.lanes:
            deny = None
            if lane.terminal.denylist:
                deny = CurrentDenyList(lane.terminal.denylist, self._log, lane.terminal.denylist_start_without)
                self._denylists.append(deny)
            psam = LanePsam(self.pool, lane.name, test=test)
            app = make_app(lane.terminal, psam, self.journal, self.clock, deny, name=lane.name)
            self.lanes.append(Lane(lane.name, lane.reader, self._opener, app, psam, self.pool, issuer,
                                   self.config.tunion_key_index))
        return self

    def run(self, show: Callable[[LaneEvent], None], stop: threading.Event, max_taps: int = 0,
            poll: float = 0.2) -> dict[str, int]:
        """Every lane in its own thread until ``stop`` (or each lane's ``max_taps``); taps per lane."""
        out_lock = threading.Lock()

        def shown(event: LaneEvent) -> None:
            with out_lock:  # one line at a time on the one output
                show(event)

        errors: list[BaseException] = []

        def serve(lane: Lane) -> None:
            try:
                lane.run(shown, stop, max_taps, poll)
            except BaseException as exc:  # a fault of ours in one lane: said, and the station stops cleanly
                errors.append(exc)
                stop.set()

        threads = [threading.Thread(target=serve, args=(lane,), name=f"lane:{lane.name}", daemon=True)
                   for lane in self.lanes]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join(10)
            raise
        if errors:
            raise errors[0]
        return {lane.name: lane.taps for lane in self.lanes}

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()
        self.pool.close()
        for deny in self._denylists:
            deny.close()
