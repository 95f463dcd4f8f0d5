"""The batch format of cardlib/batch.py (docs/settlement.md): the TAC input cut from a
batch line's text, as the dataclasses build it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.batch import tac_fields, tac_message
from cardlib.clock import BEIJING
from cardlib.errors import FormatError

SERIAL = bytes.fromhex("33030000000000000009")


@given(amount=st.integers(0, 0xFFFFFFFF), seq=st.integers(0, 0xFFFF), tseq=st.integers(0, 0xFFFFFFFF),
       balance=st.integers(0, 0xFFFFFFFF), tx_type=st.sampled_from([2, 6, 9, 1, 5]),
       when=st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.sampled_from(
           [BEIJING, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=8))])),
       micro=st.booleans())
def test_settlement_cuts_the_tac_input_from_text_as_the_dataclasses_build_it(
        amount: int, seq: int, tseq: int, balance: int, tx_type: int, when: datetime, micro: bool) -> None:
    when = when if micro else when.replace(microsecond=0)
    obj = {"type": f"{tx_type:02X}", "time": when.isoformat(), "terminal_id": "0102030405AB", "amount": amount,
           "balance_after": balance, "card_seq": seq, "terminal_seq": tseq, "app_serial": SERIAL.hex(),
           "tac": "00000000", "algorithm": "3des"}
    data = tac_fields(obj)[1].tac_input()
    assert tac_message(obj) == (int.from_bytes(data, "big"), len(data))


_LENIENT = ["_", " ", "0x", "+", "-", "\u0663", "\uff11", "\t", "\u00b2", "x"]  # what int() or fromhex might let by


@given(field=st.sampled_from(["time", "type", "terminal_id"]), at=st.integers(0, 25), what=st.sampled_from(_LENIENT),
       replace=st.booleans(), load=st.booleans())
def test_settlement_reads_no_text_the_dataclasses_would_refuse(field: str, at: int, what: str, replace: bool,
                                                               load: bool) -> None:
    """The fast path builds numbers from text; a character int() or fromhex() tolerates
    (underscore, sign, 0x, non-ASCII digits, blanks) must not turn a record the
    dataclasses refuse into a TAC input: both refuse it, or both give the same bytes."""
    obj = {"type": "02" if load else "06", "time": "2026-11-28T08:15:09+08:00", "terminal_id": "0102030405AB",
           "amount": 200, "balance_after": 800, "card_seq": 3, "terminal_seq": 7, "app_serial": SERIAL.hex(),
           "tac": "00000000", "algorithm": "3des"}
    text = obj[field]
    assert isinstance(text, str)
    obj[field] = text[:at] + what + text[at + (len(what) if replace else 0):]
    errors = (ValueError, TypeError, OverflowError, FormatError)
    try:
        data = tac_fields(obj)[1].tac_input()
    except errors:
        with pytest.raises(errors):
            tac_message(obj)
    else:
        assert tac_message(obj) == (int.from_bytes(data, "big"), len(data))
