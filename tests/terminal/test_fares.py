"""Fares: worked examples for each rule and money invariants as properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from terminal.fares import (
    Concession,
    FarePolicy,
    RegionRule,
    Rider,
    admission_fee,
    age_on,
    bus_fare,
    metro_fare,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=BEIJING)
ELDER = Concession("elder", 0, min_age=65)
STUDENT = Concession("student", 50, card_type="student")
POLICY = FarePolicy(
    flat=200, bands=((6, 300), (12, 400), (22, 500)), max_fare=800,
    stations={"A": 0, "B": 5, "C": 11.5, "D": 40}, overtime_minutes=240, overtime_surcharge=300,
    transfer_discount=100, concessions=(ELDER, STUDENT), local_region="3303", admission=4000,
    admission_visitor=6000)
ZONES = FarePolicy(zones={"A": 1, "B": 1, "C": 2, "D": 4}, zone_bands=((1, 300), (2, 450), (3, 600)), max_fare=700)
ADULT = Rider("adult", 30, "330300")
VISITOR = Rider("adult", 30, "310000")


def test_age_from_birth_date_and_the_clocks_date() -> None:
    birth = date(1961, 11, 29)
    assert age_on(birth, date(2026, 11, 28)) == 64
    assert age_on(birth, date(2026, 11, 29)) == 65
    assert age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26
    rider = Rider.born("adult", birth, "330300", NOW.date() + timedelta(days=1))
    assert bus_fare(POLICY, rider, NOW).amount == 0  # 65 on the day: free
    assert bus_fare(POLICY, Rider.born("adult", birth, "330300", NOW.date()), NOW).amount == 200


def test_bus_flat_segments_and_transfer() -> None:
    assert bus_fare(POLICY, ADULT, NOW) == bus_fare(POLICY, ADULT, NOW, NOW - timedelta(minutes=91))
    assert bus_fare(POLICY, ADULT, NOW).amount == 200
    assert bus_fare(POLICY, ADULT, NOW, NOW - timedelta(minutes=90)).amount == 100  # window inclusive
    assert bus_fare(POLICY, ADULT, NOW, NOW + timedelta(minutes=1)).amount == 200  # a ride in the future: no
    assert bus_fare(POLICY, Rider("student", 15, "330300"), NOW).amount == 100
    # the discount never takes a fare below 0: a student's transfer pays 100 - 100
    r = bus_fare(POLICY, Rider("student", 15, "330300"), NOW, NOW - timedelta(minutes=5))
    assert (r.amount, r.base, r.concession, r.discount) == (0, 200, 100, 100)
    r = bus_fare(POLICY, Rider("adult", 70, "330300"), NOW, NOW - timedelta(minutes=5))
    assert (r.amount, r.concession, r.discount, r.reasons) == (0, 200, 0, ("flat fare", "elder"))
    line = FarePolicy(segments=((5, 300), (12, 200), (20, 100)))
    assert [bus_fare(line, ADULT, NOW, boarding_stop=s).amount for s in (1, 5, 6, 12, 20, 25)] == [
        300, 300, 200, 200, 100, 100]
    assert bus_fare(line, ADULT, NOW, boarding_stop=7).reasons == ("boarding at stop 7",)


def test_metro_distance_max_and_overtime() -> None:
    assert metro_fare(POLICY, ADULT, "C", NOW, "A", NOW - timedelta(minutes=20)).amount == 400
    assert metro_fare(POLICY, ADULT, "A", NOW, "C", NOW - timedelta(minutes=20)).amount == 400  # symmetric
    assert metro_fare(POLICY, ADULT, "B", NOW, "B", NOW - timedelta(minutes=20)).amount == 300  # same station
    assert metro_fare(POLICY, ADULT, "D", NOW, "A", NOW - timedelta(minutes=20)).amount == 800  # beyond bands
    assert metro_fare(POLICY, ADULT, "C", NOW, None, None).amount == 800  # no entry
    assert metro_fare(POLICY, ADULT, "C", NOW, "X", NOW).reasons == ("no matching entry: maximum fare",)
    assert metro_fare(POLICY, ADULT, "B", NOW, "A", NOW - timedelta(hours=5)).amount == 300 + 300
    assert metro_fare(POLICY, ADULT, "B", NOW, "A", NOW - timedelta(minutes=240)).amount == 300  # not over
    capped = metro_fare(POLICY, ADULT, "C", NOW, "D", NOW - timedelta(hours=5))
    assert (capped.amount, capped.reasons[-1]) == (800, "maximum fare")
    # transfer counted from the entry; never on the no-entry penalty
    assert metro_fare(POLICY, ADULT, "C", NOW, "A", NOW - timedelta(minutes=20), NOW - timedelta(minutes=50)
                      ).amount == 300
    assert metro_fare(POLICY, ADULT, "C", NOW, None, None, NOW - timedelta(minutes=5)).amount == 800


def test_metro_zones() -> None:
    assert metro_fare(ZONES, ADULT, "B", NOW, "A", NOW).amount == 300
    assert metro_fare(ZONES, ADULT, "C", NOW, "A", NOW).amount == 450
    assert metro_fare(ZONES, ADULT, "D", NOW, "A", NOW).amount == 700  # 4 zones: beyond the bands
    assert metro_fare(ZONES, ADULT, "D", NOW, "A", NOW).reasons[0] == "4 zone(s)"
    assert metro_fare(ZONES, ADULT, "Z", NOW, "A", NOW).amount == 700


def test_region_policies() -> None:
    assert bus_fare(POLICY, VISITOR, NOW).reasons == ("flat fare", "same-city price")
    assert bus_fare(POLICY, VISITOR, NOW).amount == 200
    strict = FarePolicy(local_region="3303", same_city_treatment=False, visitor_surcharge_percent=50,
                        region_rules=(RegionRule("31", 80),), max_fare=800, bands=((100, 600),),
                        stations={"A": 0, "B": 1})
    assert bus_fare(strict, VISITOR, NOW).amount == 160  # Shanghai cards: their own rule, 80 %
    assert bus_fare(strict, Rider("adult", 30, "110000"), NOW).amount == 300  # other visitors +50 %
    assert bus_fare(strict, ADULT, NOW).amount == 200  # locals: no rule applies
    assert metro_fare(strict, Rider("adult", 30, "110000"), "B", NOW, "A", NOW).amount == 800  # capped
    local_only = FarePolicy(concessions=(Concession("local elder", 0, min_age=65, local_only=True),),
                            local_region="3303")
    assert bus_fare(local_only, Rider("adult", 70, "330300"), NOW).amount == 0
    assert bus_fare(local_only, Rider("adult", 70, "310000"), NOW).amount == 200


def test_admission() -> None:
    assert admission_fee(POLICY, ADULT).amount == 4000
    assert admission_fee(POLICY, VISITOR).amount == 4000  # same-city treatment
    assert admission_fee(POLICY, Rider("adult", 80, "310000")).amount == 0
    assert admission_fee(POLICY, Rider("student", 20, "330300")).amount == 2000
    strict = FarePolicy(admission=4000, admission_visitor=6000, local_region="3303", same_city_treatment=False,
                        concessions=(STUDENT,))
    assert admission_fee(strict, VISITOR).amount == 6000
    assert admission_fee(strict, Rider("student", 20, "310000")).amount == 3000
    park = FarePolicy(admission=1000, local_region="3303", same_city_treatment=False, visitor_surcharge_percent=20)
    assert admission_fee(park, VISITOR).amount == 1200


def policies() -> st.SearchStrategy[FarePolicy]:
    fen = st.integers(0, 2000)
    bands = st.lists(st.tuples(st.integers(1, 60), fen), max_size=5).map(lambda b: tuple(sorted(b)))
    concessions = st.lists(st.builds(Concession, st.just("c"), st.integers(0, 100),
                                     st.sampled_from([None, "student", "elder"]),
                                     st.one_of(st.none(), st.integers(0, 100)),
                                     st.one_of(st.none(), st.integers(0, 100)), st.booleans()), max_size=3)
    return st.builds(
        FarePolicy, flat=fen, segments=bands, stations=st.just({"A": 0.0, "B": 5.0, "C": 11.5, "D": 40.0}),
        bands=bands.map(lambda b: tuple((float(k), v) for k, v in b)), max_fare=fen,
        overtime_minutes=st.integers(0, 300), overtime_surcharge=fen,
        transfer_window=st.integers(0, 180).map(lambda m: timedelta(minutes=m)), transfer_discount=fen,
        concessions=concessions.map(tuple), local_region=st.sampled_from(["", "3303", "31"]),
        same_city_treatment=st.booleans(), visitor_surcharge_percent=st.integers(0, 100),
        region_rules=st.lists(st.builds(RegionRule, st.sampled_from(["31", "11"]), st.integers(0, 200)),
                              max_size=2).map(tuple),
        admission=fen, admission_visitor=st.one_of(st.none(), fen))


riders = st.builds(Rider, st.sampled_from(["adult", "student", "elder"]), st.integers(0, 110),
                   st.sampled_from(["330300", "310000", "110000"]))
minutes = st.one_of(st.none(), st.integers(-10, 600))


def ago(m: int | None) -> datetime | None:
    return None if m is None else NOW - timedelta(minutes=m)


def no_concession(policy: FarePolicy) -> FarePolicy:
    return FarePolicy(**{**policy.__dict__, "concessions": ()})


@given(policies(), riders, minutes, st.one_of(st.none(), st.integers(0, 30)))
def test_bus_invariants(policy: FarePolicy, rider: Rider, previous: int | None, stop: int | None) -> None:
    fare = bus_fare(policy, rider, NOW, ago(previous), stop)
    assert fare.amount >= 0 and fare.concession >= 0 and fare.discount >= 0
    assert fare.amount == fare.base - fare.concession - fare.discount
    assert fare.discount <= policy.transfer_discount
    assert fare.amount <= bus_fare(no_concession(policy), rider, NOW, ago(previous), stop).amount


@given(policies(), riders, st.sampled_from(["A", "B", "C", "D", "X"]), st.sampled_from(["A", "B", "C", "D", None]),
       st.integers(0, 600), minutes)
def test_metro_invariants(policy: FarePolicy, rider: Rider, exit_: str, entry: str | None, inside: int,
                          previous: int | None) -> None:
    entered = NOW - timedelta(minutes=inside)
    fare = metro_fare(policy, rider, exit_, NOW, entry, entered, ago(previous))
    assert fare.amount >= 0 and fare.concession >= 0 and fare.discount >= 0
    assert fare.amount == fare.base - fare.concession - fare.discount
    if policy.max_fare:
        assert fare.base <= policy.max_fare  # the maximum fare bounds every metro fare
    plain = metro_fare(no_concession(policy), rider, exit_, NOW, entry, entered, ago(previous))
    assert fare.amount <= plain.amount


@given(policies(), riders)
def test_admission_invariants(policy: FarePolicy, rider: Rider) -> None:
    fee = admission_fee(policy, rider)
    assert 0 <= fee.amount <= fee.base and fee.amount == fee.base - fee.concession
    assert fee.amount <= admission_fee(no_concession(policy), rider).amount
