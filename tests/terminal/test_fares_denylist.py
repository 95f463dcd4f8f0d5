"""Fares (property tests on money invariants) and the deny list file."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from terminal.denylist import DenyList, build_denylist, parse_serial_lines
from terminal.fares import Concession, FarePolicy, Rider, admission_fee, bus_fare, metro_fare

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=BEIJING)
POLICY = FarePolicy(
    flat=200, bands=((6, 300), (12, 400), (22, 500)), max_fare=800,
    stations={"A": 0, "B": 5, "C": 11.5, "D": 40}, overtime_minutes=240, overtime_surcharge=300,
    transfer_discount=100, concessions=(Concession("elder", 0, min_age=65), Concession("student", 50, card_type="student")),
    local_region="3303", admission=4000, admission_visitor=6000)

riders = st.builds(Rider, st.sampled_from(["adult", "student", "elder", "child"]), st.integers(0, 110),
                   st.sampled_from(["330300", "310000", "110000"]))


def test_examples() -> None:
    adult = Rider("adult", 30, "330300")
    assert bus_fare(POLICY, adult, NOW).amount == 200
    assert bus_fare(POLICY, adult, NOW, NOW - timedelta(minutes=30)).amount == 100
    assert bus_fare(POLICY, Rider("student", 15, "330300"), NOW).amount == 100
    assert bus_fare(POLICY, Rider("adult", 70, "330300"), NOW).amount == 0
    assert metro_fare(POLICY, adult, "C", NOW, "A", NOW - timedelta(minutes=20)).amount == 400
    assert metro_fare(POLICY, adult, "D", NOW, "A", NOW - timedelta(minutes=20)).amount == 800
    assert metro_fare(POLICY, adult, "C", NOW, None, None).amount == 800
    assert metro_fare(POLICY, adult, "B", NOW, "A", NOW - timedelta(hours=5)).amount == 300 + 300
    assert admission_fee(POLICY, Rider("adult", 30, "310000")).amount == 4000  # same-city treatment
    strict = FarePolicy(admission=4000, admission_visitor=6000, local_region="3303", same_city_treatment=False)
    assert admission_fee(strict, Rider("adult", 30, "310000")).amount == 6000


@given(riders, st.one_of(st.none(), st.integers(0, 300)))
def test_bus_fares_never_negative_and_concession_never_raises(rider: Rider, minutes_ago: int | None) -> None:
    prev = None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago)
    fare = bus_fare(POLICY, rider, NOW, prev)
    assert 0 <= fare.amount <= fare.base
    assert fare.concession >= 0 and fare.discount >= 0
    assert fare.amount == fare.base - fare.concession - fare.discount


@given(riders, st.sampled_from(["A", "B", "C", "D", "X"]), st.sampled_from(["A", "B", "C", "D", None]),
       st.integers(0, 600))
def test_metro_fares_bounded_by_max(rider: Rider, exit_: str, entry: str | None, minutes: int) -> None:
    fare = metro_fare(POLICY, rider, exit_, NOW, entry, NOW - timedelta(minutes=minutes))
    assert 0 <= fare.amount <= POLICY.max_fare + POLICY.overtime_surcharge
    assert fare.amount <= fare.base


def test_denylist_build_open_lookup(tmp_path: Path) -> None:
    serials = [bytes.fromhex("3303000000") + i.to_bytes(5, "big") for i in range(0, 5000, 7)]
    n = build_denylist(serials + serials[:10], tmp_path / "d.bin", 42)
    assert n == len(serials)
    deny = DenyList.open(tmp_path / "d.bin", verify=True)
    assert deny.version == 42 and len(deny) == n
    assert all(s in deny for s in serials)
    assert bytes.fromhex("3303000000") + (1).to_bytes(5, "big") not in deny
    assert b"short" not in deny and "text" not in deny
    assert sorted(deny) == sorted(serials)
    size = os.path.getsize(tmp_path / "d.bin")
    assert size == 64 + 4 * 65537 + 10 * n


def test_denylist_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"x" * 300000)
    with pytest.raises(FormatError, match="bad magic"):
        DenyList(bad)
    build_denylist([bytes(10)], tmp_path / "ok.bin", 1)
    data = bytearray((tmp_path / "ok.bin").read_bytes())
    data[-1] ^= 1
    (tmp_path / "tampered.bin").write_bytes(bytes(data))
    with pytest.raises(FormatError, match="SHA-256"):
        DenyList(tmp_path / "tampered.bin", verify=True)
    (tmp_path / "cut.bin").write_bytes(bytes(data[:-3]))
    with pytest.raises(FormatError, match="does not match"):
        DenyList(tmp_path / "cut.bin")
    with pytest.raises(FormatError, match="cannot open"):
        DenyList(tmp_path / "none.bin")


def test_serial_lines() -> None:
    lines = ["app_serial,name", "33030000000000000001,x  # a comment", "", "# only a comment", "33030000000000000002"]
    assert len(list(parse_serial_lines(lines))) == 2
    with pytest.raises(FormatError, match="line 2"):
        list(parse_serial_lines(["33030000000000000001", "zz"]))
    with pytest.raises(FormatError, match="20 hex digits"):
        list(parse_serial_lines(["3303"]))
