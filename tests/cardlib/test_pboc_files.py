"""Purse and PSAM file layouts (reference §1, §2): byte positions, round trips, malformed input."""

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
    rec = F.TransactionRecord(0x0007, 250, 0x06, H("001122334455"), datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING), 100)
    raw = rec.encode()
    assert raw == H("0007 000064 000000FA 06 001122334455 20261128 081500")
    assert F.TransactionRecord.decode(raw) == rec


def test_trip_record_byte_positions() -> None:
    trip = F.TripRecord(0x03, H("0000001122334455"), 0x01, H("00010203"), 0, 4750,
                        datetime(2026, 11, 28, 8, 15, 30, tzinfo=BEIJING), H("3303"), H("AABBCC"), H("0102030405060708"))
    raw = trip.encode()
    assert raw == H("03 0000001122334455 01 00010203 AABBCC 00000000 0000128E 20261128 081530 3303"
                    " 0102030405060708 000000000000")
    assert F.TripRecord.decode(raw) == trip


def test_holder_management_and_psam_files() -> None:
    holder = F.HolderData(0x01, "张三", "330302199001011234", 0x00)
    raw = holder.encode()
    assert len(raw) == 55 and raw[2:6] == "张三".encode("gbk") and raw[22:40] == b"330302199001011234"
    assert F.HolderData.decode(raw) == holder
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


def test_layout_sizes_match_the_files() -> None:
    for layout, cls in [(F.PUBLIC, F.PublicData), (F.HOLDER, F.HolderData), (F.MANAGEMENT, F.ManagementData),
                        (F.LOG, F.TransactionRecord), (F.TRIP, F.TripRecord), (F.PSAM_APP, F.PsamAppData)]:
        assert layout.size == cls.SIZE


def test_log_record_from_wire_date_and_time() -> None:
    raw = F.log_record(7, 250, 0x06, H("001122334455"), H("20261128"), H("081500"), 100)
    assert raw == H("0007 000064 000000FA 06 001122334455 20261128 081500")
    assert F.LOG.unpack(raw) == (7, 100, 250, 6, H("001122334455"), H("20261128"), H("081500"))


@pytest.mark.parametrize(("values", "match"), [
    ((0x10000, 0, 1, 6, bytes(6), bytes(4), bytes(3)), "0x18 record: cannot encode"),
    ((1, 0x1000000, 1, 6, bytes(6), bytes(4), bytes(3)), "overdraft"),
    ((1, -1, 1, 6, bytes(6), bytes(4), bytes(3)), "overdraft"),
    ((1, 0, -1, 6, bytes(6), bytes(4), bytes(3)), "cannot encode"),
    ((1, 0, 1, 256, bytes(6), bytes(4), bytes(3)), "cannot encode"),
    ((1, 0, 1, 6, bytes(5), bytes(4), bytes(3)), "terminal_id: 5 bytes"),
    ((1, 0, 1, 6, bytes(7), bytes(3), bytes(3)), "wrong size"),  # one too long, one too short: still refused
    ((1, 0, 1, 6, None, bytes(4), bytes(3)), "not bytes"),
    ((1, 0, "1", 6, bytes(6), bytes(4), bytes(3)), "cannot encode"),
])
def test_layout_refuses_values_that_do_not_fit(values: tuple[Any, ...], match: str) -> None:
    with pytest.raises(FormatError, match=match):
        F.LOG.pack(*values)


# The layouts as construct declared them before the struct codec: an independent
# reading of the same field lists, to check the codec byte for byte.
construct = pytest.importorskip("construct")
C = construct
_REFERENCE = {
    "PUBLIC": C.Struct("a" / C.Bytes(8), "b" / C.Int8ub, "c" / C.Int8ub, "d" / C.Bytes(10), "e" / C.Bytes(4),
                       "f" / C.Bytes(4), "g" / C.Bytes(2)),
    "HOLDER": C.Struct("a" / C.Int8ub, "b" / C.Int8ub, "c" / C.Bytes(20), "d" / C.Bytes(32), "e" / C.Int8ub),
    "MANAGEMENT": C.Struct("a" / C.Bytes(4), "b" / C.Bytes(2), "c" / C.Bytes(2), "d" / C.Bytes(2), "e" / C.Int8ub,
                           "f" / C.Bytes(49)),
    "LOG": C.Struct("a" / C.Int16ub, "b" / C.Int24ub, "c" / C.Int32ub, "d" / C.Int8ub, "e" / C.Bytes(6),
                    "f" / C.Bytes(4), "g" / C.Bytes(3)),
    "TRIP": C.Struct("a" / C.Int8ub, "b" / C.Bytes(8), "c" / C.Int8ub, "d" / C.Bytes(4), "e" / C.Bytes(3),
                     "f" / C.Int32ub, "g" / C.Int32ub, "h" / C.Bytes(4), "i" / C.Bytes(3), "j" / C.Bytes(2),
                     "k" / C.Bytes(8), "l" / C.Bytes(6)),
    "PSAM_APP": C.Struct("a" / C.Int8ub, "b" / C.Bytes(8), "c" / C.Bytes(8), "d" / C.Bytes(4), "e" / C.Bytes(4)),
}


def _field_values(draw: Any, reference: Any) -> tuple[Any, ...]:
    out = []
    for sub in reference.subcons:
        inner = sub.subcon
        if isinstance(inner, C.BytesInteger) or inner.__class__.__name__ == "FormatField":
            out.append(draw(st.integers(0, (1 << (8 * inner.sizeof())) - 1)))
        else:
            out.append(draw(st.binary(min_size=inner.sizeof(), max_size=inner.sizeof())))
    return tuple(out)


@pytest.mark.parametrize("name", sorted(_REFERENCE))
@given(data=st.data())
def test_layouts_match_the_construct_reference(name: str, data: Any) -> None:
    reference, layout = _REFERENCE[name], getattr(F, name)
    values = _field_values(data.draw, reference)
    raw = layout.pack(*values)
    assert raw == reference.build(dict(zip("abcdefghijkl", values, strict=False)))
    assert layout.unpack(raw) == values


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
    pub = F.PublicData(issuer, serial, start, end, t, v, fci)
    assert F.PublicData.decode(pub.encode()) == pub


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 255), st.binary(min_size=6, max_size=6),
       times, st.integers(0, 0xFFFFFF))
def test_transaction_record_round_trip(seq: int, amount: int, t: int, tid: bytes, when: datetime, od: int) -> None:
    rec = F.TransactionRecord(seq, amount, t, tid, when, od)
    assert F.TransactionRecord.decode(rec.encode()) == rec


@given(st.integers(0, 255), st.binary(min_size=8, max_size=8), st.integers(0, 255), st.binary(min_size=4, max_size=4),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), times, st.binary(min_size=2, max_size=2))
def test_trip_record_round_trip(rt: int, term: bytes, ind: int, station: bytes, amount: int, bal: int,
                                when: datetime, city: bytes) -> None:
    trip = F.TripRecord(rt, term, ind, station, amount, bal, when, city)
    assert F.TripRecord.decode(trip.encode()) == trip


@given(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=10),
       st.from_regex(r"[0-9X]{0,32}", fullmatch=True), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_holder_round_trip(name: str, ident: str, card_type: int, id_type: int, staff: int) -> None:
    try:
        holder = F.HolderData(card_type, name, ident, id_type, staff)
        raw = holder.encode()
    except FormatError:
        return  # a character outside GBK
    assert F.HolderData.decode(raw) == holder
