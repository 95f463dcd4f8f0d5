"""Purse command wire formats: the bytes of reference §1/§8, round trips, and refusals of malformed input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.pboc import purse as P

H = bytes.fromhex
TERM = H("001122334455")

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
b4 = st.binary(min_size=4, max_size=4)
terminals = st.binary(min_size=6, max_size=6)
balances = st.integers(-0x80000000, 0x7FFFFFFF)


def wire(cmd: CommandAPDU) -> str:
    return cmd.encode().hex().upper()


def test_command_bytes_of_the_reference() -> None:
    assert wire(P.GetBalance().to_apdu()) == "805C000204"
    assert wire(P.InitializeForLoad(1, 0x1000, TERM).to_apdu()) == "805000020B010000100000112233445510"
    assert wire(P.CreditForLoad(H("20111221"), H("214822"), H("3A845BF0")).to_apdu()) == "805200000B201112212148223A845BF004"
    assert wire(P.InitializeForPurchase(1, 0x1000, TERM).to_apdu()) == "805001020B01000010000011223344550F"
    assert wire(P.InitializeForPurchase(1, 0, TERM, capp=True).to_apdu()) == "805003020B01000000000011223344550F"
    assert wire(P.DebitForPurchase(1, H("20120229"), H("135100"), H("F15CAB75")).to_apdu()) == (
        "805401000F0000000120120229135100F15CAB7508")
    assert wire(P.GetTransactionProve(6, 0x0102).to_apdu()) == "805A0006020102" + "08"
    assert wire(P.UpdateCappDataCache(0x2702, H("2702AA")).to_apdu()) == "80DC02D0032702AA"
    assert wire(P.ApplicationBlock.of(True, H("01020304")).to_apdu()) == "841E00010401020304"
    assert wire(P.ApplicationUnblock(H("01020304")).to_apdu()) == "841800000401020304"
    # the line MAC covers the header and Lc the command sends
    assert P.ApplicationBlock.of(True).mac_input() == H("841E000104")
    assert P.ApplicationBlock.of(False).mac_input() == H("841E000004")
    assert P.ApplicationUnblock().mac_input() == H("8418000004")


def test_select_and_read_builders() -> None:
    assert wire(P.select_purse()) == "00A4040008A00000063201010500"
    assert wire(P.select_purse_df()) == "00A4000C021001"
    assert wire(P.read_public()) == "00B095001E"
    assert wire(P.read_management()) == "00B097003C"
    assert wire(P.read_log(1)) == "00B201C417"
    assert wire(P.read_trip(3)) == "00B203F430"


def test_response_layouts() -> None:
    init = P.InitializeForLoadResponse.decode(H("00000000 0000 01 00 11223344 2988AE5A"))
    assert init == P.InitializeForLoadResponse(0, 0, 1, 0, H("11223344"), H("2988AE5A"))
    pur = P.InitializeForPurchaseResponse.decode(H("00001388 0007 000064 01 04 AABBCCDD"))
    assert pur == P.InitializeForPurchaseResponse(5000, 7, 100, 1, 4, H("AABBCCDD"))
    assert P.DebitResponse.decode(H("926FF1B6 56988A13")) == P.DebitResponse(H("926FF1B6"), H("56988A13"))
    # GET TRANSACTION PROVE answers in the reverse order of DEBIT: MAC first
    assert P.ProveResponse.decode(H("56988A13 926FF1B6")).mac == H("56988A13")


def test_balance_readings() -> None:
    assert P.decode_balance(H("00002710")) == 10000
    assert P.decode_balance(H("80002710")) == 10000  # baseline: bits 0..30
    assert P.encode_balance(-100) == H("FFFFFF9C")  # two's complement in overdraft
    assert P.decode_balance(H("FFFFFF9C"), signed=True) == -100
    assert P.InitializeForPurchaseResponse.decode(
        P.InitializeForPurchaseResponse(-100, 1, 500, 1, 0, bytes(4)).encode()).balance == -100


@pytest.mark.parametrize("raw", [
    "805C00020100",            # GET BALANCE with data
    "805000020A0100001000001122334410",   # INITIALIZE FOR LOAD, Lc 10
    "805001020B010000100000112233445510",  # P1 01 is a purchase, not a load
    "805200000A2011122121482201020304",    # CREDIT, Lc 10
    "805401000E000000012012022913510001020308",
    "805A000603000100",         # PROVE with 3 bytes
    "80DC02C8032702AA",         # UPDATE CAPP on another SFI
    "841E00020401020304",       # BLOCK P2 02
])
def test_malformed_commands_are_format_errors(raw: str) -> None:
    cmd = CommandAPDU.decode(H(raw))
    parsers = {0x5C: P.GetBalance, 0x52: P.CreditForLoad, 0x54: P.DebitForPurchase,
               0x5A: P.GetTransactionProve, 0xDC: P.UpdateCappDataCache, 0x1E: P.ApplicationBlock}
    parser: Any = P.InitializeForLoad if cmd.ins == 0x50 else parsers[cmd.ins]
    with pytest.raises(FormatError):
        parser.from_apdu(cmd)


def test_out_of_range_values_are_format_errors() -> None:
    with pytest.raises(FormatError, match="terminal"):
        P.InitializeForPurchase(1, 1, b"\x00" * 5).to_apdu()
    with pytest.raises(FormatError, match="amount"):
        P.InitializeForLoad(1, -1, TERM).to_apdu()
    with pytest.raises(FormatError, match="27xx"):
        P.UpdateCappDataCache(0x2602, H("2602")).to_apdu()
    with pytest.raises(FormatError, match="seq 65536"):
        P.GetTransactionProve(6, 0x10000).to_apdu()
    with pytest.raises(FormatError, match="balance"):
        P.encode_balance(1 << 31)
    with pytest.raises(FormatError):
        P.DebitResponse.decode(bytes(7))
    with pytest.raises(FormatError, match="mac2 must be 4 bytes"):
        P.DebitResponse(bytes(4), bytes(3)).encode()
    with pytest.raises(FormatError, match="INITIALIZE: P1"):
        P.InitializeForPurchase.from_apdu(CommandAPDU.decode(H("805002020B010000100000112233445510")))


@given(u8, u32, terminals, st.booleans())
def test_initialize_round_trip(key_index: int, amount: int, tid: bytes, capp: bool) -> None:
    assert P.InitializeForPurchase.from_apdu(
        CommandAPDU.decode(P.InitializeForPurchase(key_index, amount, tid, capp).to_apdu().encode())
    ) == P.InitializeForPurchase(key_index, amount, tid, capp)
    assert P.InitializeForLoad.from_apdu(P.InitializeForLoad(key_index, amount, tid).to_apdu()) == (
        P.InitializeForLoad(key_index, amount, tid))


@given(balances, u16, u8, u8, b4, b4, st.integers(0, 0xFFFFFF))
def test_initialize_responses_round_trip(bal: int, seq: int, ver: int, alg: int, rnd: bytes, mac: bytes,
                                         overdraft: int) -> None:
    load = P.InitializeForLoadResponse(bal, seq, ver, alg, rnd, mac)
    assert P.InitializeForLoadResponse.decode(load.encode()) == load
    pur = P.InitializeForPurchaseResponse(bal, seq, overdraft, ver, alg, rnd)
    assert P.InitializeForPurchaseResponse.decode(pur.encode()) == pur


@given(u32, b4, st.binary(min_size=3, max_size=3), b4)
def test_debit_and_credit_round_trip(seq: int, date: bytes, time: bytes, mac: bytes) -> None:
    debit = P.DebitForPurchase(seq, date, time, mac)
    assert P.DebitForPurchase.from_apdu(CommandAPDU.decode(debit.to_apdu().encode())) == debit
    credit = P.CreditForLoad(date, time, mac)
    assert P.CreditForLoad.from_apdu(CommandAPDU.decode(credit.to_apdu().encode())) == credit
    assert P.DebitResponse.decode(P.DebitResponse(mac, date).encode()) == P.DebitResponse(mac, date)
    assert P.ProveResponse.decode(P.ProveResponse(mac, date).encode()) == P.ProveResponse(mac, date)


@given(st.sampled_from([2, 6, 9]), u16, st.integers(0x01, 0x12), st.binary(min_size=0, max_size=126),
       st.booleans(), b4)
def test_other_commands_round_trip(tx_type: int, seq: int, rid: int, body: bytes, permanent: bool, mac: bytes) -> None:
    prove = P.GetTransactionProve(tx_type, seq)
    assert P.GetTransactionProve.from_apdu(CommandAPDU.decode(prove.to_apdu().encode())) == prove
    upd = P.UpdateCappDataCache(0x2700 | rid, (0x2700 | rid).to_bytes(2, "big") + body)
    assert P.UpdateCappDataCache.from_apdu(CommandAPDU.decode(upd.to_apdu().encode())) == upd
    block = P.ApplicationBlock(permanent, mac)
    assert P.ApplicationBlock.from_apdu(CommandAPDU.decode(block.to_apdu().encode())) == block
    assert block.mac_input() == bytes((0x84, 0x1E, 0x00, 0x01 if permanent else 0x00, 0x04))
    unblock = P.ApplicationUnblock(mac)
    assert P.ApplicationUnblock.from_apdu(CommandAPDU.decode(unblock.to_apdu().encode())) == unblock


@given(balances)
def test_balance_round_trip(value: int) -> None:
    raw = P.encode_balance(value)
    assert P.decode_balance(raw, signed=True) == value
    assert P.decode_balance(raw) == value & 0x7FFFFFFF


def _checked(cmd: CommandAPDU) -> CommandAPDU:
    """The same command through the checking constructor."""
    return CommandAPDU(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le)


@given(u8, u32, terminals, st.booleans(), u32, b4, st.binary(min_size=3, max_size=3), b4, st.booleans())
def test_commands_built_without_the_apdu_checks_are_what_the_checks_build(
        key_index: int, amount: int, tid: bytes, capp: bool, seq: int, date: bytes, time: bytes, mac: bytes,
        as_bytearray: bool) -> None:
    def wrap(b: bytes) -> bytes:
        return bytearray(b) if as_bytearray else b  # type: ignore[return-value]

    for cmd in (P.InitializeForPurchase(key_index, amount, wrap(tid), capp).to_apdu(),
                P.DebitForPurchase(seq, wrap(date), wrap(time), wrap(mac)).to_apdu()):
        again = _checked(cmd)
        assert type(cmd.data) is bytes and cmd == again and repr(cmd) == repr(again)
        assert cmd.encode() == again.encode()
