"""Purse and PSAM files (cardlib/pboc/files.py): byte positions, round trips, malformed input; the
declarations' vectors are walked by test_declarations.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc import files as F

H = bytes.fromhex


def test_public_data_byte_positions() -> None:
    pub = F.PublicData(H("01011000FFFFFFFF"), H("00005170010170907984"), date(2024, 3, 1), date(2034, 2, 28))
    raw = pub.encode()
    assert raw == H("01011000FFFFFFFF 02 01 00005170010170907984 20240301 20340228 0000")
    assert len(raw) == 30 and F.PublicData.decode(raw) == pub


def test_transaction_record_byte_positions() -> None:
    rec = F.TransactionRecord(0x0007, 250, 0x06, H("001122334455"), datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING),
                               overdraft=100)
    raw = rec.encode()
    assert raw == H("0007 000064 000000FA 06 001122334455 20261128 081500")
    assert F.TransactionRecord.decode(raw) == rec


def test_trip_record_byte_positions() -> None:
    trip = F.TripRecord(0x03, H("0000001122334455"), 0x01, H("00010203"), 0, 4750,
                        datetime(2026, 11, 28, 8, 15, 30, tzinfo=BEIJING), city=H("3303"), operator=H("AABBCC"),
                        acquirer=H("0102030405060708"))
    raw = trip.encode()
    assert raw == H("03 0000001122334455 01 00010203 AABBCC 00000000 0000128E 20261128 081530 3303"
                    " 0102030405060708 000000000000")
    assert F.TripRecord.decode(raw) == trip


def test_holder_management_and_psam_files() -> None:
    holder = F.HolderData(0x01, "张三", "330302199001011234", id_type=0x00)
    raw = holder.encode()
    assert len(raw) == 55 and raw[2:6] == "张三".encode("gbk") and raw[22:40] == b"330302199001011234"
    assert F.HolderData.decode(raw) == holder
    _fast_path_is_the_interpreter(holder)
    mgmt = F.ManagementData(H("3300"), H("3303"))
    raw = mgmt.encode()
    assert raw[:11] == H("01560000 3300 3303 0001 01") and len(raw) == 60
    assert F.ManagementData.decode(raw) == mgmt
    app = F.PsamAppData(1, H("01011000FFFFFFFF"), H("0000000000000001"), date(2024, 1, 1), date(2034, 12, 31))
    assert app.encode() == H("01 01011000FFFFFFFF 0000000000000001 20240101 20341231")
    assert F.PsamAppData.decode(app.encode()) == app


def test_capp_record() -> None:
    rec = F.capp_record(0x2702, b"BUS")
    assert len(rec) == 128 and rec[:5] == H("2702") + b"BUS" and rec[5:] == bytes(123)
    with pytest.raises(FormatError, match="outside"):
        F.capp_record(0x2713, b"")
    with pytest.raises(FormatError, match="exceeds"):
        F.capp_record(0x2701, bytes(127))


def test_record_sizes_are_the_declarations() -> None:
    for cls, size in [(F.PublicData, 30), (F.HolderData, 55), (F.ManagementData, 60), (F.TransactionRecord, 23),
                      (F.TripRecord, 48), (F.PsamAppData, 25)]:
        assert cls.SIZE == cls.DECLARATION.size == size


def test_log_record_from_wire_date_and_time() -> None:
    raw = F.log_record(7, 250, 0x06, H("001122334455"), H("20261128"), H("081500"), 100)
    assert raw == H("0007 000064 000000FA 06 001122334455 20261128 081500")
    assert F.LOG.parse(raw) == {"seq": 7, "overdraft": 100, "amount": 250, "tx_type": 6,
                                "terminal_id": H("001122334455"),
                                "time": datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING)}


_LOG_OK = {"seq": 1, "overdraft": 0, "amount": 1, "tx_type": 6, "terminal_id": bytes(6),
           "time": datetime(2026, 1, 1, tzinfo=BEIJING)}


@pytest.mark.parametrize(("change", "match"), [
    ({"seq": 0x10000}, "seq 65536 does not fit in 2 byte"),
    ({"overdraft": 0x1000000}, "overdraft"),
    ({"overdraft": -1}, "overdraft"),
    ({"amount": -1}, "amount -1 does not fit"),
    ({"tx_type": 256}, "tx_type 256 does not fit"),
    ({"terminal_id": bytes(5)}, "terminal_id must be 6 bytes, got 5"),
    ({"terminal_id": bytes(7)}, "terminal_id must be 6 bytes, got 7"),
    ({"terminal_id": None}, "terminal_id is not bytes"),
    ({"amount": "1"}, "amount is not an integer"),
    ({"time": "2026-01-01"}, "0x18 record: cannot encode"),
])
def test_a_record_refuses_values_that_do_not_fit(change: dict[str, Any], match: str) -> None:
    with pytest.raises(FormatError, match=match):
        F.LOG.build({**_LOG_OK, **change})


@pytest.mark.parametrize(("cls", "raw", "match"), [
    (F.PublicData, bytes(29), "30 bytes"),
    (F.PublicData, H("01011000FFFFFFFF 02 01 00005170010170907984 20241301 20340228 0000"), "impossible date"),
    (F.PublicData, H("01011000FFFFFFFF 02 01 00005170010170907984 2024AB01 20340228 0000"), "BCD"),
    (F.TransactionRecord, bytes(24), "23 bytes"),
    (F.TransactionRecord, H("0007 000064 000000FA 06 001122334455 20261128 251500"), "hour"),
    (F.TripRecord, bytes(47), "48 bytes"),
    (F.HolderData, bytes(56), "55 bytes"),
    (F.ManagementData, bytes(59), "60 bytes"),
    (F.PsamAppData, bytes(24), "25 bytes"),
])
def test_malformed_files_are_format_errors(cls: Any, raw: bytes, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        cls.decode(raw)


def test_unencodable_values_are_format_errors() -> None:
    with pytest.raises(FormatError, match="GBK"):
        F.HolderData(1, "名" * 11, "1").encode()
    with pytest.raises(FormatError, match="0x18"):
        F.TransactionRecord(0x10000, 1, 6, bytes(6), datetime(2026, 1, 1, tzinfo=BEIJING)).encode()
    with pytest.raises(FormatError, match="0x15"):
        F.PublicData(bytes(7), bytes(10), date(2024, 1, 1), date(2025, 1, 1)).encode()


times = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0, tzinfo=BEIJING))
dates = st.dates(date(2000, 1, 1), date(2099, 12, 31))


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=10, max_size=10), dates, dates,
       st.integers(0, 255), st.integers(0, 255), st.binary(min_size=2, max_size=2))
def test_public_data_round_trip(issuer: bytes, serial: bytes, start: date, end: date, t: int, v: int, fci: bytes) -> None:
    pub = F.PublicData(issuer, serial, start, end, app_type=t, app_version=v, issuer_fci=fci)
    assert F.PublicData.decode(pub.encode()) == pub
    _fast_path_is_the_interpreter(pub)


def _fast_path_is_the_interpreter(record: Any) -> None:
    """cardlib/wire.py's struct fast path and construct's interpreter agree both ways."""
    declaration, raw = record.DECLARATION, record.encode()
    assert declaration.build_interpreted(vars(record)) == raw
    assert declaration.parse_interpreted(raw) == declaration.parse(raw)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 255), st.binary(min_size=6, max_size=6),
       times, st.integers(0, 0xFFFFFF))
def test_transaction_record_round_trip(seq: int, amount: int, t: int, tid: bytes, when: datetime, od: int) -> None:
    rec = F.TransactionRecord(seq, amount, t, tid, when, overdraft=od)
    assert F.TransactionRecord.decode(rec.encode()) == rec
    _fast_path_is_the_interpreter(rec)


@given(st.integers(0, 255), st.binary(min_size=8, max_size=8), st.integers(0, 255), st.binary(min_size=4, max_size=4),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), times, st.binary(min_size=2, max_size=2))
def test_trip_record_round_trip(rt: int, term: bytes, ind: int, station: bytes, amount: int, bal: int,
                                when: datetime, city: bytes) -> None:
    trip = F.TripRecord(rt, term, ind, station, amount, bal, when, city=city)
    assert F.TripRecord.decode(trip.encode()) == trip
    _fast_path_is_the_interpreter(trip)


@given(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=10),
       st.from_regex(r"[0-9X]{0,32}", fullmatch=True), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_holder_round_trip(name: str, ident: str, card_type: int, id_type: int, staff: int) -> None:
    try:
        holder = F.HolderData(card_type, name, ident, id_type=id_type, staff=staff)
        raw = holder.encode()
    except FormatError:
        return  # a character outside GBK
    assert F.HolderData.decode(raw) == holder
    _fast_path_is_the_interpreter(holder)
