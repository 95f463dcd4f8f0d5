"""The batch format of cardlib/batch.py (docs/settlement.md): the TAC input cut from a
batch line's text, as the dataclasses build it; replays keyed on what the TAC covers."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.batch import (
    BatchHeader,
    batch_digest,
    batch_lines,
    read_batch,
    tac_fields,
    tac_message,
    write_batch,
)
from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm
from cardlib.errors import FormatError
from cardlib.keys import derive_dtk, test_issuer
from cardlib.pboc import macs
from cardlib.settlement import verify_records

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


T0 = datetime(2026, 11, 28, 8, 15, 9, tzinfo=BEIJING)
TID = bytes.fromhex("0102030405AB")


def purchase_line(seq: int, amount: int = 200, rid: int = 1) -> dict[str, object]:
    """A purchase as the journal exports it, with the TEST ONLY issuer's real TAC."""
    d, t = macs.bcd_datetime(T0)
    tac = macs.purchase_tac(derive_dtk(test_issuer(), SERIAL), amount, macs.TX_EP_PURCHASE, TID, seq + 100, d, t,
                            Algorithm.TDES)
    return {"id": rid, "state": "completed", "kind": "purchase", "type": "06", "app_serial": SERIAL.hex().upper(),
            "card_seq": seq, "amount": amount, "balance_before": 1000, "balance_after": 1000 - amount,
            "terminal_id": TID.hex().upper(), "terminal_seq": seq + 100, "time": T0.isoformat(),
            "tac": tac.hex().upper(), "mac2": None, "mac2_verified": None, "algorithm": "3des", "key_version": 1,
            "key_index": 1, "test": True, "station": "", "line": "", "extra": {}}


def write_lines(path: Path, records: list[dict[str, object]]) -> Path:
    """A batch with a header that agrees with its lines (count, total, SHA-256), as an
    attacker who rewrites the file would make it."""
    lines = batch_lines(records)
    header = BatchHeader("B1", TID.hex().upper(), len(records), sum(a for r in records if isinstance(a := r["amount"], int)),
                         batch_digest(lines), "")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        write_batch(fh, header, lines)
    return path


def test_a_clean_batch_reads_back(tmp_path: Path) -> None:
    records = [purchase_line(1), purchase_line(2, rid=2)]
    header, back = read_batch(write_lines(tmp_path / "b.jsonl", records))
    assert back == records and header.count == 2 and verify_records(back, test_issuer()).ok


def test_a_purchase_copied_with_its_counter_changed_is_a_replay(tmp_path: Path) -> None:
    """A purchase TAC does not cover the card's offline counter: the copy verifies, so
    the replay key must not hold the counter (issue 15 item 4; passed before)."""
    first = purchase_line(1)
    copy = {**first, "id": 2, "card_seq": 2}
    assert verify_records([first, copy], test_issuer()).ok  # both TACs verify: paying both pays twice
    with pytest.raises(FormatError, match="line 3: the transaction of line 2 again"):
        read_batch(write_lines(tmp_path / "b.jsonl", [first, copy]))


def test_a_purchase_copied_with_its_tac_in_lower_case_is_a_replay(tmp_path: Path) -> None:
    first = purchase_line(1)
    copy = {**first, "id": 2, "tac": str(first["tac"]).lower()}
    assert verify_records([first, copy], test_issuer()).ok
    with pytest.raises(FormatError, match="a replay"):
        read_batch(write_lines(tmp_path / "b.jsonl", [first, copy]))


@pytest.mark.parametrize("value", [1.0, "1", True, None, [1]])
def test_a_counter_that_is_not_an_integer_is_refused(tmp_path: Path, value: object) -> None:
    """``1.0`` equals 1 to the TAC but not as text: numbers must be JSON integers."""
    first = purchase_line(1)
    copy = {**first, "id": 2, "card_seq": value}
    with pytest.raises(FormatError, match="line 3: card_seq is not an integer"):
        read_batch(write_lines(tmp_path / "b.jsonl", [first, copy]))


@pytest.mark.parametrize("field", ["amount", "terminal_seq", "balance_after", "id", "key_version"])
def test_every_number_of_a_line_must_be_an_integer(tmp_path: Path, field: str) -> None:
    line = {**purchase_line(1), field: 7.0}
    with pytest.raises(FormatError, match=f"{field} is not an integer"):
        read_batch(write_lines(tmp_path / "b.jsonl", [line]))


def test_a_batch_that_is_a_fifo_or_a_device_is_refused_at_once(tmp_path: Path) -> None:
    """The back office reads batches it was sent: a FIFO would hang the job, /dev/zero fill memory."""
    fifo = tmp_path / "batch.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="FIFO, not a regular file"):
        read_batch(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        read_batch("/dev/zero")
