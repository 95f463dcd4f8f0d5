"""Entry gates: metro gates (composite purchase: 0 fen at entry with the entry
recorded in the card's 0x1A record 2701, the fare at exit) and identity gates
of parks, museums and libraries (admission by the social security card)."""

from __future__ import annotations

from datetime import date, datetime

from cardlib.pboc import capp
from cardlib.pboc.files import TRIP_ENTRY, TRIP_EXIT
from cardlib.ssse.files import T_BIRTH_DATE, T_CARD_ID, T_CARD_TYPE, T_EXPIRY, T_ISSUE_DATE
from terminal.app import Tap, TerminalApp
from terminal.auth import Identity
from terminal.decision import Decision, Reason
from terminal.fares import admission_fee, metro_fare

METRO_RECORD = capp.METRO_RECORD
MetroTrip = capp.MetroTrip


class MetroGate(TerminalApp):
    """``gate.direction`` decides: entry, exit, or auto (by the card's trip state).

    The gate reads the card's 2701 record, modifies it and writes it back in the
    layout of public gate code (:mod:`cardlib.pboc.capp`); a record whose CRC fails
    counts as no trip and is handled as ``purse.on_bad_crc`` says."""

    def decide(self, tap: Tap) -> Decision:
        raw = tap.capp(METRO_RECORD)
        current = capp.read_for_update(raw, METRO_RECORD, self.config.on_bad_crc)
        trip = capp.trip_as_read(raw)
        inside = trip is not None and trip.inside
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
            record = capp.metro_entry(current, station, tap.now, tid, balance).encode()
            return self.charge(tap, 0, record, METRO_RECORD, detail=f"entry at {station}",
                               trip=self.trip(tap, TRIP_ENTRY, station))
        entry = trip.station if inside and trip is not None else None
        entry_time: datetime | None = trip.time if inside and trip is not None else None
        fare = metro_fare(self.config.fares, tap.rider(), station, tap.now, entry, entry_time)
        record = capp.metro_exit(current, station, tap.now, tid, fare.amount).encode()
        reason = Reason.OK if entry else Reason.NO_ENTRY
        return self.charge(tap, fare.amount, record, METRO_RECORD, reason,
                           detail=f"{entry or '?'} → {station}: " + ", ".join(fare.reasons),
                           trip=self.trip(tap, TRIP_EXIT, station))


class IdentityGate(TerminalApp):
    """Parks, museums, libraries: identity, validity, age-based free entry, an
    optional admission fee from the purse, a daily limit, anti-passback.

    Reads EF05's card identifier (the key factor of the authentication, the
    region), issue and expiry dates and EF06's birth date; the card type only
    when the age does not already give free entry."""

    SSSE_TAGS = frozenset({T_CARD_ID, T_ISSUE_DATE, T_EXPIRY, T_BIRTH_DATE})
    NEEDS_SSSE = True
    PURSE_AUTHENTICATES = False

    def more_ssse_tags(self, identity: Identity, today: date) -> frozenset[int]:
        age, free = identity.age_on(today), self.config.free_entry_age
        return frozenset() if free is not None and age is not None and age >= free else frozenset({T_CARD_TYPE})

    def decide(self, tap: Tap) -> Decision:
        cfg = self.config
        today = self.entries_today(tap.serial, tap.now.date())
        last: datetime | None = max((e["time"] for e in today), default=None)  # type: ignore[type-var, assignment]
        if last is not None and tap.now - last <= cfg.anti_passback_window:
            return self.decision(tap, False, Reason.ANTI_PASSBACK)
        if cfg.daily_entry_limit and len(today) >= cfg.daily_entry_limit:
            return self.decision(tap, False, Reason.DAILY_LIMIT)
        rider = tap.rider()
        if cfg.free_entry_age is not None and rider.age is not None and rider.age >= cfg.free_entry_age:
            return self.decision(tap, True, Reason.FREE, detail=f"age {rider.age}")
        fee = admission_fee(cfg.fares, rider)
        if fee.amount == 0:
            return self.decision(tap, True, Reason.FREE, detail=", ".join(fee.reasons))
        return self.charge(tap, fee.amount, None, 0, detail=", ".join(fee.reasons))
