"""Fares, in integer fen: flat and line-segment bus fares, metro distance fares
from a station table, transfer discounts, concessions, admission prices.

Order of application (documented in docs/configuration.md): base fare →
concession (the first that applies, as a percentage paid) → transfer
discount → never below 0. Pure functions; no I/O, no clock of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Rider:
    """What fares may depend on: from EF05/EF06 and the clock."""

    card_type: str
    age: int
    region: str  # 6-digit region code of the issuing city

    def is_local(self, local_prefix: str) -> bool:
        return not local_prefix or self.region.startswith(local_prefix)


@dataclass(frozen=True)
class Concession:
    name: str
    pay_percent: int  # 0 = free, 50 = half
    card_type: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    local_only: bool = False

    def applies(self, rider: Rider, local_prefix: str) -> bool:
        if self.card_type is not None and rider.card_type != self.card_type:
            return False
        if self.min_age is not None and rider.age < self.min_age:
            return False
        if self.max_age is not None and rider.age > self.max_age:
            return False
        return not (self.local_only and not rider.is_local(local_prefix))


@dataclass(frozen=True)
class FarePolicy:
    flat: int = 200
    segments: tuple[tuple[int, int], ...] = ()  # (last stop index, fare), ascending
    stations: dict[str, float] = field(default_factory=dict)  # station id -> km along the network
    bands: tuple[tuple[float, int], ...] = ()  # (up to km, fare), ascending
    max_fare: int = 0
    overtime_minutes: int = 0
    overtime_surcharge: int = 0
    transfer_window: timedelta = timedelta(minutes=90)
    transfer_discount: int = 0
    concessions: tuple[Concession, ...] = ()
    local_region: str = ""  # prefix of local region codes
    same_city_treatment: bool = True  # visitors pay local prices
    visitor_surcharge_percent: int = 0
    admission: int = 0
    admission_visitor: int | None = None


@dataclass(frozen=True)
class FareResult:
    amount: int
    base: int
    concession: int = 0
    discount: int = 0
    reasons: tuple[str, ...] = ()


def _concession(policy: FarePolicy, base: int, rider: Rider) -> tuple[int, tuple[str, ...]]:
    for c in policy.concessions:
        if c.applies(rider, policy.local_region):
            paid = base * c.pay_percent // 100
            return base - paid, (c.name,)
    return 0, ()


def _visitor(policy: FarePolicy, base: int, rider: Rider) -> tuple[int, tuple[str, ...]]:
    if rider.is_local(policy.local_region) or policy.same_city_treatment or not policy.visitor_surcharge_percent:
        return base, ("same-city price",) if not rider.is_local(policy.local_region) else ()
    return base + base * policy.visitor_surcharge_percent // 100, ("visitor surcharge",)


def _finish(policy: FarePolicy, base: int, rider: Rider, reasons: tuple[str, ...],
            transfer: bool = False) -> FareResult:
    base, vreasons = _visitor(policy, base, rider)
    off, creasons = _concession(policy, base, rider)
    after = base - off
    discount = min(policy.transfer_discount, after) if transfer else 0
    tr = ("transfer discount",) if discount else ()
    return FareResult(after - discount, base, off, discount, reasons + vreasons + creasons + tr)


def is_transfer(policy: FarePolicy, previous: datetime | None, now: datetime) -> bool:
    return previous is not None and timedelta(0) <= now - previous <= policy.transfer_window


def bus_fare(policy: FarePolicy, rider: Rider, now: datetime, previous_ride: datetime | None = None,
             stops: int | None = None) -> FareResult:
    """Flat fare, or by number of stops travelled when the line has segments."""
    base = policy.flat
    reasons: tuple[str, ...] = ("flat fare",)
    if stops is not None and policy.segments:
        base = next((fare for last, fare in policy.segments if stops <= last), policy.segments[-1][1])
        reasons = (f"{stops} stops",)
    return _finish(policy, base, rider, reasons, is_transfer(policy, previous_ride, now))


def distance_fare(policy: FarePolicy, km: float) -> int:
    for up_to, fare in policy.bands:
        if km <= up_to:
            return fare
    return policy.max_fare or (policy.bands[-1][1] if policy.bands else policy.flat)


def metro_fare(policy: FarePolicy, rider: Rider, exit_station: str, now: datetime,
               entry_station: str | None, entry_time: datetime | None,
               previous_ride: datetime | None = None) -> FareResult:
    """Fare at the exit gate; the maximum fare when no matching entry is on the card."""
    if entry_station is None or entry_station not in policy.stations or exit_station not in policy.stations:
        return _finish(policy, policy.max_fare or policy.flat, rider, ("no matching entry: maximum fare",))
    km = abs(policy.stations[exit_station] - policy.stations[entry_station])
    base = distance_fare(policy, km)
    reasons: tuple[str, ...] = (f"{km:g} km",)
    if policy.max_fare:
        base = min(base, policy.max_fare)
    if (policy.overtime_minutes and entry_time is not None
            and now - entry_time > timedelta(minutes=policy.overtime_minutes)):
        base += policy.overtime_surcharge
        reasons += ("overtime surcharge",)
    return _finish(policy, base, rider, reasons, is_transfer(policy, previous_ride, entry_time or now))


def admission_fee(policy: FarePolicy, rider: Rider) -> FareResult:
    """Museum / park admission with concessions and same-city treatment."""
    base = policy.admission
    reasons: tuple[str, ...] = ("admission",)
    if not rider.is_local(policy.local_region) and policy.admission_visitor is not None:
        if policy.same_city_treatment:
            reasons += ("same-city price",)
        else:
            base = policy.admission_visitor
            reasons += ("visitor price",)
    off, creasons = _concession(policy, base, rider)
    return FareResult(base - off, base, off, 0, reasons + creasons)
