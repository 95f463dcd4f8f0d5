"""The field conventions of the transit purse, checked against bytes and offsets
published by others (each source named here and in docs/protocol.md). Where no
public bytes exist the test says the format is the project's profile."""

from __future__ import annotations

import zlib
from datetime import date, datetime

from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from cardlib.pboc import capp
from cardlib.pboc import purse as P
from cardlib.pboc.files import PublicData, TripRecord

H = bytes.fromhex
WHEN = datetime(2026, 11, 28, 8, 15, 30, tzinfo=BEIJING)
TID = H("000000000001")

# domosekai/cardemulator, app/src/main/java/com/domosekai/cardemulator/HCEService.kt: the answer
# of a Beijing T-Union card to SELECT A000000632010105 (status word 9000 removed)
PUBLIC_FCI = H("6F318408A000000632010105A5259F0801029F0C1E01011000FFFFFFFF0201031051700101"
               "70907984201908062040123100 00".replace(" ", ""))


def test_the_purse_fci_is_built_as_a_real_card_sends_it() -> None:
    public = PUBLIC_FCI[-30:]
    assert P.purse_fci(P.PURSE_AID, public) == PUBLIC_FCI
    data = PublicData.decode(public)
    assert (data.issuer_id, data.app_serial[2:]) == (H("01011000FFFFFFFF"), H("5170010170907984"))
    assert (data.valid_from, data.valid_until) == (date(2019, 8, 6), date(2040, 12, 31))


def test_get_transaction_prove_sends_the_counter_after_the_transaction() -> None:
    # AndroidZM233/Pos80_SDK_GongJiao, ZJBCardManager.java: 80 5A 00 <06|09> 02 <offline counter + 1> 08
    assert P.GetTransactionProve(0x06, P.prove_seq(0x0005)).to_apdu().encode() == H("805A000602000608")
    assert P.GetTransactionProve(0x09, P.prove_seq(0x00FF)).to_apdu().encode() == H("805A000902010008")
    assert P.prove_seq(0xFFFF) == 0


def test_get_balance_p1() -> None:
    # fengyuruhui98/File, shapi/sh_transport_operation.c: "80 5C 03 02 04", P1 00 with the overdraft, 03 without
    assert P.GetBalance(0x03).to_apdu().encode() == H("805C030204")
    assert P.GetBalance().to_apdu().encode() == H("805C000204")


def test_update_capp_data_cache_for_0x1a_and_0x1e() -> None:
    # quange-style/SmartCard, CSReader/CSReader/link/ticket.cpp: "80 DC 01 D0 80" + 128 bytes, then
    # "80 DC 00 F0 30" + 48 bytes, before "80 54 01 00 0F"; fengyuruhui98/File: P1 = the record's byte 1
    record = capp.blank_record(capp.METRO_RECORD)
    assert P.UpdateCappDataCache(0x2701, record).to_apdu().encode()[:5] == H("80DC01D080")
    trip = TripRecord(0x03, bytes(8), 0x01, bytes(4), 0, 1000, WHEN).encode()
    apdu = P.UpdateCappDataCache(0, trip, 0x1E).to_apdu()
    assert apdu.encode() == H("80DC00F030") + trip
    assert P.UpdateCappDataCache.from_apdu(apdu) == P.UpdateCappDataCache(0, trip, 0x1E)


def _gate_crc32(data: bytes) -> int:
    """CRC-32 as the public gate's crc.c computes it: a table of the reflected polynomial
    04C11DB7, initial value FFFFFFFF, final xor FFFFFFFF (written out bit by bit here)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_0x1a_metro_record_offsets_and_crc_as_the_public_gate() -> None:
    """fengyuruhui98/File, shapi/sh_transport_operation.c (Shanghai gate): header 0..5, status at 14
    (01 entry, 02 exit), entry station 35..42, entry device 51..58, entry time 67..73, actual
    amount 95..98, last time 99..105, flags 120 (41), 121 (81), in/out 122 (55 entry, 66 exit),
    CRC-32 of 6..123 at 124..127, most significant byte first (LongToByte, misc/km_api.c)."""
    blank = capp.CappRecord.blank(capp.METRO_RECORD)
    entry = capp.metro_entry(blank, "S01", WHEN, TID, 1000).encode()
    assert entry[:2] == H("2701") and entry[14] == 0x01 and entry[35:38] == b"S01"
    assert entry[51:59] == bytes(2) + TID and entry[67:74] == H("20261128081530")
    assert (entry[120], entry[122]) == (0x41, 0x55)
    assert entry[124:128] == _gate_crc32(entry[6:124]).to_bytes(4, "big") == zlib.crc32(entry[6:124]).to_bytes(4, "big")
    out = capp.metro_exit(capp.CappRecord.decode(entry), "S05", WHEN, TID, 400).encode()
    assert (out[14], out[121], out[122]) == (0x02, 0x81, 0x66) and out[95:99] == (400).to_bytes(4, "big")
    assert out[43:46] == b"S05" and out[35:38] == b"S01"  # the entry kept: read, modify, write back
    assert capp.crc_holds(out)


def test_a_failed_crc_is_no_trip_and_reset_keeps_the_header() -> None:
    entry = capp.metro_entry(capp.CappRecord.blank(capp.METRO_RECORD), "S01", WHEN, TID, 1000).encode()
    broken = entry[:40] + b"\xff" + entry[41:]
    assert capp.metro_trip(capp.CappRecord.decode(entry)) is not None
    assert capp.metro_trip(capp.CappRecord.decode(broken)) is None
    reset = capp.read_for_update(broken, capp.METRO_RECORD, "reset").encode()
    assert reset[:6] == entry[:6] and reset[6:124] == bytes(118) and capp.crc_holds(reset)  # as the public gate
    kept = capp.read_for_update(broken, capp.METRO_RECORD, "keep").encode()
    assert kept[6:124] == broken[6:124] and capp.crc_holds(kept)


def test_a_terminal_finds_no_trip_where_the_card_has_no_such_record() -> None:
    """Gates and validators read 2701/2702 through capp: a missing, short or other record is no trip
    (the gate once decoded any 128 bytes itself, and a record 2703 made it raise)."""
    entry = capp.metro_entry(capp.CappRecord.blank(capp.METRO_RECORD), "S01", WHEN, TID, 1000).encode()
    assert capp.trip_as_read(entry) == capp.metro_trip(capp.CappRecord.decode(entry)) is not None
    assert capp.trip_as_read(None) is None and capp.trip_as_read(entry[:100]) is None
    assert capp.trip_as_read(H("2703") + entry[2:]) is None
    assert capp.trip_as_read(capp.blank_record(capp.BUS_RECORD)) is None
    ride = capp.with_bus_ride(capp.CappRecord.blank(capp.BUS_RECORD), capp.BusRide("K101", WHEN, TID, 200)).encode()
    assert capp.ride_as_read(ride) == capp.BusRide("K101", WHEN, TID, 200)
    assert capp.ride_as_read(entry) is None and capp.ride_as_read(None) is None


def test_0x1e_offsets_as_the_public_gate() -> None:
    """fengyuruhui98/File: type 0 (03 entry, 04 exit), device 1..8, industry 9 (01 metro),
    line/station 10..13, amount 17..20, balance after 21..24, time 25..31, city 32..33."""
    raw = TripRecord(0x04, bytes(2) + TID, 0x01, b"S05\x00", 400, 1600, WHEN, city=H("2900")).encode()
    assert raw[0] == 0x04 and raw[1:9] == bytes(2) + TID and raw[9] == 0x01 and raw[10:14] == b"S05\x00"
    assert raw[17:21] == (400).to_bytes(4, "big") and raw[21:25] == (1600).to_bytes(4, "big")
    assert raw[25:32] == H("20261128081530") and raw[32:34] == H("2900") and len(raw) == 48


def test_2702_is_the_projects_profile() -> None:
    """No public layout of the bus record was found: this is THE PROJECT'S PROFILE (header and
    CRC as 2701, line 6..13, status 14, time 15..21, terminal 22..27, amount 28..31)."""
    ride = capp.BusRide("K101", WHEN, TID, 200)
    raw = capp.with_bus_ride(capp.CappRecord.blank(capp.BUS_RECORD), ride).encode()
    assert raw[:6] == H("270200800100") and raw[6:10] == b"K101" and raw[14] == 0x01
    assert raw[15:22] == H("20261128081530") and raw[22:28] == TID and raw[28:32] == (200).to_bytes(4, "big")
    assert capp.bus_ride(capp.CappRecord.decode(raw)) == ride and capp.crc_holds(raw)


@given(st.binary(min_size=118, max_size=118), st.sampled_from([capp.METRO_RECORD, capp.BUS_RECORD]))
def test_any_body_round_trips_with_a_fresh_crc(body: bytes, rid: int) -> None:
    raw = capp.blank_record(rid)[:6] + body + bytes(4)
    record = capp.CappRecord.decode(raw)
    assert not record.crc_ok or capp.crc_holds(raw)
    again = record.encode()
    assert again[:124] == raw[:124] and capp.crc_holds(again)
    assert capp.CappRecord.decode(again).fields == record.fields
    declaration = capp.DECLARATIONS[rid]  # the struct fast path and construct's interpreter agree
    assert declaration.parse(again) == declaration.parse_interpreted(again)
    assert declaration.build_interpreted(declaration.parse(again)) == again
