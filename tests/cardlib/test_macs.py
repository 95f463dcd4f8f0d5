"""The purse's MAC and TAC inputs, byte-exact against reference §3 (3DES) and §8 (SM4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm, mac_alg1, sm4_cbc_mac, tac_key
from cardlib.errors import FormatError
from cardlib.pboc import macs

H = bytes.fromhex
TDES, SM4 = Algorithm.TDES, Algorithm.SM4
KEY = H("11223344556677888877665544332211")  # the DPK/DLK of the worked examples
DTK = H("479E71BEFF107A76138D34F84B2031FF")
RANDOM = H("11223344")
TERM = H("001122334455")


def test_transaction_types() -> None:
    assert (macs.TX_ED_LOAD, macs.TX_EP_LOAD) == (0x01, 0x02)
    assert (macs.TX_ED_PURCHASE, macs.TX_EP_PURCHASE, macs.TX_CAPP_PURCHASE) == (0x05, 0x06, 0x09)


def test_3des_purchase_example() -> None:
    sespk = macs.purchase_session_key(KEY, RANDOM, 0, 1, TDES)
    assert sespk == H("003238ABC57659DD")
    mac1 = macs.purchase_mac1(sespk, 0x1000, 0x06, TERM, H("20120229"), H("135100"), TDES)
    assert mac1 == H("F15CAB75")
    assert mac1 == mac_alg1(sespk, H("00001000 06 001122334455 20120229 135100"))[:4]
    assert macs.purchase_mac2(sespk, 0x1000, TDES) == H("56988A13")


def test_3des_load_example() -> None:
    seslk = macs.load_session_key(KEY, RANDOM, 0, TDES)
    assert seslk == H("9B1D924E05595603")
    assert macs.load_mac1(seslk, 0, 0x1000, 0x01, TERM, TDES) == H("2988AE5A")
    mac2 = macs.load_mac2(seslk, 0x1000, 0x01, TERM, H("20111221"), H("214822"), TDES)
    assert mac2 == H("3A845BF0")


def test_3des_tacs() -> None:
    date, time = H("20111221"), H("214822")
    tac = macs.purchase_tac(DTK, 0x1000, 0x06, TERM, 1, date, time, TDES)
    assert tac == H("926FF1B6")
    assert tac == mac_alg1(H("54134546B4304B89"), H("00001000 06 001122334455 00000001 20111221 214822"))[:4]
    assert macs.load_tac(DTK, 0x2000, 0, 0x1000, 0x02, TERM, date, time, TDES) == H("78644D7B")


def test_sm4_profile() -> None:
    sespk = macs.purchase_session_key(KEY, RANDOM, 0, 1, SM4)
    assert sespk == H("9D9CE1CC45B1F817FA2CBF52C3FC18D5")
    date, time = H("20120229"), H("135100")
    assert macs.purchase_mac1(sespk, 0x1000, 0x06, TERM, date, time, SM4) == H("9454C578")
    assert macs.purchase_mac2(sespk, 0x1000, SM4) == H("1553DDE1")
    tac = macs.purchase_tac(DTK, 0x1000, 0x06, TERM, 1, date, time, SM4)
    assert tac == H("B0EE23A1")
    assert tac == sm4_cbc_mac(tac_key(DTK, SM4), H("00001000 06 001122334455 00000001 20120229 135100"))[:4]


def test_tac_input_layouts() -> None:
    date, time = H("20111221"), H("214822")
    purchase = macs.TacFields(0x06, 0x1000, TERM, date, time, terminal_seq=1)
    assert purchase.tac_input() == H("00001000 06 001122334455 00000001 20111221 214822")
    capp = macs.TacFields(0x09, 0, TERM, date, time, terminal_seq=0x01020304)
    assert capp.tac_input() == H("00000000 09 001122334455 01020304 20111221 214822")
    load = macs.TacFields(0x02, 0x1000, TERM, date, time, new_balance=0x2000, online_seq=0)
    assert load.tac_input() == H("00002000 0000 00001000 02 001122334455 20111221 214822")
    ed_load = macs.TacFields(0x01, 5, TERM, date, time, new_balance=7, online_seq=0x0102)
    assert ed_load.tac_input() == H("00000007 0102 00000005 01 001122334455 20111221 214822")
    assert macs.compute_tac(DTK, load, TDES) == H("78644D7B")


def test_purchase_session_key_uses_the_low_half_of_the_terminal_seq() -> None:
    low = macs.purchase_session_key(KEY, RANDOM, 0, 0x0001, TDES)
    assert macs.purchase_session_key(KEY, RANDOM, 0, 0xABCD0001, TDES) == low
    assert macs.purchase_session_key(KEY, RANDOM, 0, 0x0002, TDES) != low
    assert macs.purchase_session_key(KEY, RANDOM, 1, 0x0001, TDES) != low


def test_load_session_key_input() -> None:
    from cardlib.crypto import session_key

    assert macs.load_session_key(KEY, RANDOM, 0x0102, SM4) == session_key(KEY, H("11223344 0102 8000"), SM4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: macs.purchase_mac2(KEY[:8], -1, TDES), "amount -1 does not fit in 4 byte"),
        (lambda: macs.purchase_mac2(KEY[:8], 1 << 32, TDES), "amount 4294967296 does not fit"),
        (lambda: macs.load_mac1(KEY[:8], -5, 1, 2, TERM, TDES), "balance -5"),
        (lambda: macs.load_mac1(KEY[:8], 0, 1, 2, TERM[:5], TDES), "terminal_id must be 6 bytes, got 5"),
        (lambda: macs.load_mac1(KEY[:8], 0, 1, 256, TERM, TDES), "tx_type 256"),
        (lambda: macs.purchase_mac1(KEY[:8], 1, 6, TERM, H("201201"), H("135100"), TDES), "date must be 4 bytes"),
        (lambda: macs.load_mac2(KEY[:8], 1, 2, TERM, H("20120101"), H("1351"), TDES), "time must be 3 bytes"),
        (lambda: macs.purchase_session_key(KEY, RANDOM, 0x10000, 1, TDES), "offline_seq 65536"),
        (lambda: macs.purchase_session_key(KEY, RANDOM, 0, -1, TDES), "terminal seq -1"),
        (lambda: macs.purchase_session_key(KEY, RANDOM[:3], 0, 1, TDES), "random must be 4 bytes"),
        (lambda: macs.load_session_key(KEY, RANDOM, -1, TDES), "online_seq -1"),
        (lambda: macs.purchase_tac(DTK, 1, 0x02, TERM, 1, H("20120101"), H("000000"), TDES), "load_tac"),
        (lambda: macs.load_tac(DTK, 1, 0, 1, 0x06, TERM, H("20120101"), H("000000"), TDES), "purchase_tac"),
        (lambda: macs.TacFields(6, 1, TERM, H("20120101"), H("000000"), 1 << 32).tac_input(), "terminal_seq"),
    ],
)
def test_bad_fields_are_format_errors(call: object, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        call()  # type: ignore[operator]


def test_bcd_datetime_example() -> None:
    when = datetime(2026, 11, 28, 8, 15, 7, tzinfo=BEIJING)
    assert macs.bcd_datetime(when) == (H("20261128"), H("081507"))
    assert macs.parse_bcd_datetime(H("20261128"), H("081507")) == when
    # the datetime's own zone: the caller converts to Beijing first
    utc = when.astimezone(UTC)
    assert macs.bcd_datetime(utc) == (H("20261128"), H("001507"))
    assert macs.bcd_datetime(utc.astimezone(BEIJING)) == (H("20261128"), H("081507"))
    other = macs.parse_bcd_datetime(H("20261128"), H("081507"), timezone(timedelta(hours=1)))
    assert other.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    ("date4", "time3"),
    [("2026AB01", "000000"), ("20261301", "000000"), ("20260230", "000000"),
     ("20260101", "240000"), ("20260101", "00006A"), ("202601", "000000"), ("20260101", "0000")],
)
def test_bad_bcd(date4: str, time3: str) -> None:
    with pytest.raises(FormatError):
        macs.parse_bcd_datetime(H(date4), H(time3))


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_bcd_datetime_round_trip(dt: datetime) -> None:
    dt = dt.replace(microsecond=0, tzinfo=BEIJING)
    date4, time3 = macs.bcd_datetime(dt)
    assert len(date4) == 4 and len(time3) == 3
    assert macs.parse_bcd_datetime(date4, time3) == dt


@given(
    st.lists(st.integers(0, 9), min_size=14, max_size=14),
    st.integers(0, 13),
    st.integers(10, 15),
    st.booleans(),
)
def test_parse_bcd_rejects_every_non_decimal_nibble(
    digits: list[int], pos: int, bad: int, corrupt: bool
) -> None:
    if corrupt:
        digits[pos] = bad
    raw = bytes(digits[i] << 4 | digits[i + 1] for i in range(0, 14, 2))
    if corrupt:
        with pytest.raises(FormatError):
            macs.parse_bcd_datetime(raw[:4], raw[4:])
        return
    try:
        parsed = macs.parse_bcd_datetime(raw[:4], raw[4:])
    except FormatError:  # decimal but impossible (month 13, 25 o'clock, year 0...)
        return
    assert macs.bcd_datetime(parsed) == (raw[:4], raw[4:])


@given(
    st.sampled_from([0x01, 0x02, 0x05, 0x06, 0x09]),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
)
def test_tac_input_lengths(tx_type: int, amount: int, balance: int, online: int, term_seq: int) -> None:
    fields = macs.TacFields(tx_type, amount, TERM, H("20260101"), H("120000"), term_seq, balance, online)
    data = fields.tac_input()
    if tx_type in macs.LOAD_TYPES:
        assert len(data) == 24 and data[:4] == balance.to_bytes(4, "big") and data[6:10] == amount.to_bytes(4, "big")
    else:
        assert len(data) == 22 and data[:4] == amount.to_bytes(4, "big") and data[11:15] == term_seq.to_bytes(4, "big")


def _bcd_datetime_by_text(dt: datetime) -> tuple[bytes, bytes]:
    """bcd_datetime as decimal text read as hex (what the table must agree with)."""
    return (bytes.fromhex(f"{dt.year:04d}{dt.month:02d}{dt.day:02d}"),
            bytes.fromhex(f"{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"))


def _parse_by_text(date4: bytes, time3: bytes) -> datetime | str:
    text = date4.hex() + time3.hex()
    if len(date4) != 4 or len(time3) != 3 or not text.isdigit():
        return "not BCD"
    try:
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]),
                        int(text[8:10]), int(text[10:12]), int(text[12:14]), tzinfo=BEIJING)
    except ValueError:
        return "impossible"


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_bcd_datetime_by_table_is_the_decimal_text(dt: datetime) -> None:
    assert macs.bcd_datetime(dt) == _bcd_datetime_by_text(dt)


@given(st.one_of(
    st.binary(min_size=7, max_size=7),
    st.datetimes(min_value=datetime(1, 1, 1)).map(lambda d: b"".join(_bcd_datetime_by_text(d))),
    st.lists(st.sampled_from([0x00, 0x01, 0x12, 0x20, 0x23, 0x28, 0x29, 0x30, 0x31, 0x59, 0x60, 0x99, 0x9A, 0xA0]),
             min_size=7, max_size=7).map(bytes),
), st.integers(0, 2))
def test_parse_bcd_datetime_by_table_agrees_with_the_text(raw: bytes, cut: int) -> None:
    date4, time3 = raw[: 4 - (cut == 1)], raw[4 : 7 - (cut == 2)]  # some of the wrong length too
    want = _parse_by_text(date4, time3)
    if isinstance(want, datetime):
        assert macs.parse_bcd_datetime(date4, time3) == want
        assert macs.parse_bcd_datetime(bytearray(date4), memoryview(time3)) == want
    else:
        with pytest.raises(FormatError, match="not a BCD date" if want == "not BCD" else "impossible date"):
            macs.parse_bcd_datetime(date4, time3)
