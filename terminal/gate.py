"""Entry gates: metro gates (composite purchase: 0 fen at entry with the entry
recorded in the card's 0x1A record 2701, the fare at exit) and identity gates
of parks, museums and libraries (admission by the social security card)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.files import capp_record
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime
from terminal.app import Tap, TerminalApp
from terminal.decision import Decision, Reason
from terminal.fares import admission_fee, metro_fare

METRO_RECORD = 0x2701
IN, OUT = 0x01, 0x00


@dataclass(frozen=True)
class MetroTrip:
    """Body of the 2701 record: state, station, time, terminal."""

    state: int
    station: str
    time: datetime
    terminal: bytes

    def encode(self) -> bytes:
        d, t = bcd_datetime(self.time.astimezone(BEIJING))
        return capp_record(METRO_RECORD, bytes((self.state,)) + self.station.encode("ascii")[:8].ljust(8, b"\x00")
                           + d + t + self.terminal)

    @classmethod
    def decode(cls, raw: bytes) -> MetroTrip | None:
        body = raw[2:]
        if len(body) < 24 or body[0] not in (IN, OUT):
            return None
        try:
            when = parse_bcd_datetime(body[9:13], body[13:16])
        except FormatError:
            return None
        return cls(body[0], body[1:9].rstrip(b"\x00").decode("ascii", "replace"), when, body[16:22])


class MetroGate(TerminalApp):
    """``gate.direction`` decides: entry, exit, or auto (by the card's trip state)."""

    def decide(self, tap: Tap) -> Decision:
        raw = tap.capp(METRO_RECORD)
        trip = MetroTrip.decode(raw) if raw else None
        inside = trip is not None and trip.state == IN
        direction = self.config.direction
        station = self.config.station
        if (direction == "auto" and inside and trip is not None and trip.station == station
                and tap.now - trip.time <= self.config.anti_passback_window):
            return self.decision(tap, False, Reason.ANTI_PASSBACK, balance=tap.wallet.balance())
        exiting = direction == "exit" or (direction == "auto" and inside)
        tid = self.psam.terminal_id
        if not exiting:
            if inside and trip is not None and tap.now - trip.time <= self.config.anti_passback_window:
                return self.decision(tap, False, Reason.ANTI_PASSBACK, balance=tap.wallet.balance())
            minimum = self.config.fares.bands[0][1] if self.config.fares.bands else self.config.fares.flat
            balance = tap.wallet.balance()
            if balance < minimum:
                return self.decision(tap, False, Reason.INSUFFICIENT_BALANCE, balance=balance)
            record = MetroTrip(IN, station, tap.now, tid).encode()
            return self.charge(tap, 0, record, METRO_RECORD, detail=f"entry at {station}")
        entry = trip.station if inside and trip is not None else None
        fare = metro_fare(self.config.fares, tap.rider(), station, tap.now, entry, trip.time if inside and trip else None)
        record = MetroTrip(OUT, station, tap.now, tid).encode()
        reason = Reason.OK if entry else Reason.NO_ENTRY
        return self.charge(tap, fare.amount, record, METRO_RECORD, reason,
                           detail=f"{entry or '?'} → {station}: " + ", ".join(fare.reasons))


class IdentityGate(TerminalApp):
    """Parks, museums, libraries: identity, validity, age-based free entry, an
    optional admission fee from the purse, a daily limit, anti-passback."""

    def decide(self, tap: Tap) -> Decision:
        cfg = self.config
        today = self.entries_today(tap.serial, tap.now.date())
        last: datetime | None = max((e["time"] for e in today), default=None)  # type: ignore[type-var, assignment]
        if last is not None and tap.now - last <= cfg.anti_passback_window:
            return self.decision(tap, False, Reason.ANTI_PASSBACK)
        if cfg.daily_entry_limit and len(today) >= cfg.daily_entry_limit:
            return self.decision(tap, False, Reason.DAILY_LIMIT)
        rider = tap.rider()
        if cfg.free_entry_age is not None and rider.age >= cfg.free_entry_age:
            return self.decision(tap, True, Reason.FREE, detail=f"age {rider.age}")
        fee = admission_fee(cfg.fares, rider)
        if fee.amount == 0:
            return self.decision(tap, True, Reason.FREE, detail=", ".join(fee.reasons))
        return self.charge(tap, fee.amount, None, 0, detail=", ".join(fee.reasons))
