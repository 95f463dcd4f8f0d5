"""Fares in integer fen: flat and line-segment bus fares, metro distance or
zone fares from a station table, overtime, transfer discounts, concessions
by card type, age and region, museum and park admission.

Pure functions over frozen values: no I/O and no clock of their own (the
caller passes the time of the tap). One order everywhere (docs/configuration.md):

1. base: flat, segment, distance/zone band (+ overtime surcharge), admission;
2. region: a per-region rule, else the visitor surcharge, unless same-city
   treatment gives visitors the local price;
3. metro only: the maximum fare caps the result of 1–2;
4. concession: the first that applies, as a percentage paid (rounded down);
5. transfer discount, never more than what is left: the fare never goes
   below 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


def age_on(birth: date, today: date) -> int:
    """Completed years on ``today`` (a birthday counts from its day)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Rider:
    """What fares may depend on: the card type and region (EF05, or the purse's 0x15 on a
    plain T-Union card), the age (EF06 and the clock; None on a card that does not tell it)."""

    card_type: str
    age: int | None
    region: str  # 6-digit region code of the issuing city

    @classmethod
    def born(cls, card_type: str, birth: date, region: str, today: date) -> Rider:
        return cls(card_type, age_on(birth, today), region)

    def is_local(self, local_prefix: str) -> bool:
        return not local_prefix or self.region.startswith(local_prefix)


@dataclass(frozen=True)
class Concession:
    """A reduction for riders who match every condition given; ``pay_percent`` of the fare is paid."""

    name: str
    pay_percent: int  # 0 = free, 50 = half
    card_type: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    local_only: bool = False

    def applies(self, rider: Rider, local_prefix: str) -> bool:
        if self.card_type is not None and rider.card_type != self.card_type:
            return False
        if (self.min_age is not None or self.max_age is not None) and rider.age is None:
            return False  # an age rule needs an age: a card that does not tell it gets none
        if self.min_age is not None and rider.age is not None and rider.age < self.min_age:
            return False
        if self.max_age is not None and rider.age is not None and rider.age > self.max_age:
            return False
        return not (self.local_only and not rider.is_local(local_prefix))


@dataclass(frozen=True)
class RegionRule:
    """Cards of regions starting with ``prefix`` pay ``percent`` of the fare (120 = +20 %, 80 = −20 %)."""

    prefix: str
    percent: int


@dataclass(frozen=True)
class FarePolicy:
    flat: int = 200
    segments: tuple[tuple[int, int], ...] = ()  # (last boarding stop index, fare), ascending
    stations: dict[str, float] = field(default_factory=dict)  # station id -> km along the network
    bands: tuple[tuple[float, int], ...] = ()  # (up to km, fare), ascending
    zones: dict[str, int] = field(default_factory=dict)  # station id -> zone number
    zone_bands: tuple[tuple[int, int], ...] = ()  # (up to zones travelled, fare), ascending
    max_fare: int = 0
    overtime_minutes: int = 0
    overtime_surcharge: int = 0
    transfer_window: timedelta = timedelta(minutes=90)
    transfer_discount: int = 0
    concessions: tuple[Concession, ...] = ()
    local_region: str = ""  # prefix of local region codes
    same_city_treatment: bool = True  # visitors pay local prices
    visitor_surcharge_percent: int = 0
    region_rules: tuple[RegionRule, ...] = ()
    admission: int = 0
    admission_visitor: int | None = None


@dataclass(frozen=True)
class FareResult:
    """amount = base − concession − discount; ``base`` includes surcharges and region rules."""

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


def _region(policy: FarePolicy, base: int, rider: Rider) -> tuple[int, tuple[str, ...]]:
    if rider.is_local(policy.local_region):
        return base, ()
    if policy.same_city_treatment:
        return base, ("same-city price",)
    for rule in policy.region_rules:
        if rider.region.startswith(rule.prefix):
            return base * rule.percent // 100, (f"region {rule.prefix}: {rule.percent}%",)
    if policy.visitor_surcharge_percent:
        return base + base * policy.visitor_surcharge_percent // 100, ("visitor surcharge",)
    return base, ()


def _finish(policy: FarePolicy, base: int, rider: Rider, reasons: tuple[str, ...],
            transfer: bool = False, cap: int = 0) -> FareResult:
    base, rreasons = _region(policy, base, rider)
    if cap and base > cap:
        base, rreasons = cap, (*rreasons, "maximum fare")
    off, creasons = _concession(policy, base, rider)
    after = base - off
    discount = min(policy.transfer_discount, after) if transfer else 0
    tr = ("transfer discount",) if discount else ()
    return FareResult(after - discount, base, off, discount, reasons + rreasons + creasons + tr)


def is_transfer(policy: FarePolicy, previous: datetime | None, now: datetime) -> bool:
    """A ride that starts within the transfer window after the previous one."""
    return previous is not None and timedelta(0) <= now - previous <= policy.transfer_window


def segment_fare(policy: FarePolicy, boarding_stop: int) -> int:
    """The fare from a boarding stop (tap on only): its segment's; the last segment's beyond."""
    return next((fare for last, fare in policy.segments if boarding_stop <= last), policy.segments[-1][1])


def bus_fare(policy: FarePolicy, rider: Rider, now: datetime, previous_ride: datetime | None = None,
             boarding_stop: int | None = None) -> FareResult:
    """Flat fare, or by boarding stop when the line has segments."""
    base = policy.flat
    reasons: tuple[str, ...] = ("flat fare",)
    if boarding_stop is not None and policy.segments:
        base = segment_fare(policy, boarding_stop)
        reasons = (f"boarding at stop {boarding_stop}",)
    return _finish(policy, base, rider, reasons, is_transfer(policy, previous_ride, now))


def distance_fare(policy: FarePolicy, km: float) -> int:
    """The band of ``km``; beyond the last band the maximum fare (or the last band's)."""
    for up_to, fare in policy.bands:
        if km <= up_to:
            return fare
    return policy.max_fare or (policy.bands[-1][1] if policy.bands else policy.flat)


def zone_fare(policy: FarePolicy, zones: int) -> int:
    """The band of ``zones`` travelled (1 = within one zone)."""
    for up_to, fare in policy.zone_bands:
        if zones <= up_to:
            return fare
    return policy.max_fare or (policy.zone_bands[-1][1] if policy.zone_bands else policy.flat)


def _known(policy: FarePolicy, station: str | None) -> bool:
    return station is not None and (station in policy.zones if policy.zones else station in policy.stations)


def metro_fare(policy: FarePolicy, rider: Rider, exit_station: str, now: datetime,
               entry_station: str | None, entry_time: datetime | None,
               previous_ride: datetime | None = None) -> FareResult:
    """Fare at the exit gate; the maximum fare when no matching entry is on the card.

    Zone fares when the policy has a zone table, distance fares otherwise.
    The maximum fare (when set) bounds every metro fare, overtime included.
    """
    cap = policy.max_fare
    transfer = is_transfer(policy, previous_ride, entry_time or now)
    if not _known(policy, entry_station) or not _known(policy, exit_station):
        return _finish(policy, policy.max_fare or policy.flat, rider, ("no matching entry: maximum fare",),
                       cap=cap)  # a penalty: no transfer discount
    assert entry_station is not None
    if policy.zones:
        zones = abs(policy.zones[exit_station] - policy.zones[entry_station]) + 1
        base = zone_fare(policy, zones)
        reasons: tuple[str, ...] = (f"{zones} zone(s)",)
    else:
        km = abs(policy.stations[exit_station] - policy.stations[entry_station])
        base = distance_fare(policy, km)
        reasons = (f"{km:g} km",)
    if (policy.overtime_minutes and entry_time is not None
            and now - entry_time > timedelta(minutes=policy.overtime_minutes)):
        base += policy.overtime_surcharge
        reasons += ("overtime surcharge",)
    return _finish(policy, base, rider, reasons, transfer, cap)


def admission_fee(policy: FarePolicy, rider: Rider) -> FareResult:
    """Museum / park admission: the visitor price unless same-city treatment, then concessions."""
    base = policy.admission
    reasons: tuple[str, ...] = ("admission",)
    if not rider.is_local(policy.local_region) and policy.admission_visitor is not None:
        if policy.same_city_treatment:
            reasons += ("same-city price",)
        else:
            base = policy.admission_visitor
            reasons += ("visitor price",)
    else:
        base, more = _region(policy, base, rider)
        reasons += more
    off, creasons = _concession(policy, base, rider)
    return FareResult(base - off, base, off, 0, reasons + creasons)
