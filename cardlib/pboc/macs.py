"""The inputs of the purse's MACs and TACs (PBOC EP / JT/T 978; reference §3), written once.

Used by the simulated card, the PSAM, the load host, the terminal and
settlement, so no two of them can disagree on a byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from cardlib.clock import BEIJING
from cardlib.crypto import (
    Algorithm,
    purse_mac,
    purse_mac_function,
    purse_mac_number_function,
    session_key,
    tac_key,
)
from cardlib.errors import FormatError

TX_ED_LOAD = 0x01
TX_EP_LOAD = 0x02
TX_ED_PURCHASE = 0x05
TX_EP_PURCHASE = 0x06
TX_CAPP_PURCHASE = 0x09
LOAD_TYPES = frozenset({TX_ED_LOAD, TX_EP_LOAD})
PURCHASE_TYPES = frozenset({TX_ED_PURCHASE, TX_EP_PURCHASE, TX_CAPP_PURCHASE})

MAX_AMOUNT = 0xFFFFFFFF


def amount4(value: int, what: str = "amount") -> bytes:
    """A 4-byte big-endian amount in fen."""
    if not 0 <= value <= MAX_AMOUNT:
        raise FormatError(f"{what} {value} out of range (0..{MAX_AMOUNT} fen)")
    return value.to_bytes(4, "big")


def _u16(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise FormatError(f"{what} {value} out of range (0..65535)")
    return value.to_bytes(2, "big")


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise FormatError(f"{what} {value} out of range (0..4294967295)")
    return value.to_bytes(4, "big")


def _sized(data: bytes, size: int, what: str) -> bytes:
    if len(data) != size:
        raise FormatError(f"{what} must be {size} bytes, got {len(data)}")
    return bytes(data)


def _terminal(terminal_id: bytes) -> bytes:
    return _sized(terminal_id, 6, "terminal number")


def _type(tx_type: int) -> bytes:
    if not 0 <= tx_type <= 0xFF:
        raise FormatError(f"transaction type {tx_type} is not a byte")
    return bytes((tx_type,))


def _checked(amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes) -> tuple[bytes, bytes, bytes]:
    """The fields MAC1, MAC2 of a load and the TAC share, checked; terminal, date and
    time back as bytes. All at once when all is well (every purchase comes here three
    times), else one by one, for the message."""
    if (0 <= amount <= MAX_AMOUNT and 0 <= tx_type <= 0xFF and type(terminal_id) is type(date4)
            is type(time3) is bytes and len(terminal_id) == 6 and len(date4) == 4 and len(time3) == 3):
        return terminal_id, date4, time3
    amount4(amount)
    _type(tx_type)
    return (_terminal(terminal_id), _sized(date4, 4, "date (BCD YYYYMMDD)"),
            _sized(time3, 3, "time (BCD hhmmss)"))


def _movement(amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes) -> bytes:
    """amount ‖ type ‖ terminal ‖ date ‖ time: purchase MAC1 and load MAC2 cover these."""
    terminal_id, date4, time3 = _checked(amount, tx_type, terminal_id, date4, time3)
    return b"".join((amount.to_bytes(4, "big"), bytes((tx_type,)), terminal_id, date4, time3))


_BCD = [(v // 10) << 4 | v % 10 for v in range(100)]  # 0..99 to its BCD byte
# and back; a byte that is not BCD gives a number no date or time field takes
_FROM_BCD = [-10_000] * 256
for _value, _byte in enumerate(_BCD):
    _FROM_BCD[_byte] = _value


def bcd_datetime(dt: datetime) -> tuple[bytes, bytes]:
    """(YYYYMMDD, hhmmss) in BCD, in the datetime's own zone (convert to Beijing first)."""
    bcd, year = _BCD, dt.year  # 1..9999: two bytes of two digits
    return (
        bytes((bcd[year // 100], bcd[year % 100], bcd[dt.month], bcd[dt.day])),
        bytes((bcd[dt.hour], bcd[dt.minute], bcd[dt.second])),
    )


def parse_bcd_datetime(date4: bytes, time3: bytes, tz: tzinfo = BEIJING) -> datetime:
    """The reverse of :func:`bcd_datetime`; FormatError on non-BCD or impossible dates."""
    get = _FROM_BCD.__getitem__
    try:  # the usual case by table; anything else falls to the checks below, which say what is wrong
        century, year, month, day = map(get, date4)
        hour, minute, second = map(get, time3)
        return datetime(century * 100 + year, month, day, hour, minute, second, tzinfo=tz)
    except (TypeError, ValueError):
        pass
    text = date4.hex() + time3.hex()
    if len(date4) != 4 or len(time3) != 3 or not text.isdigit():
        raise FormatError(f"not a BCD date and time: {date4.hex().upper()} {time3.hex().upper()}")
    try:
        return datetime(
            int(text[0:4]), int(text[4:6]), int(text[6:8]),
            int(text[8:10]), int(text[10:12]), int(text[12:14]), tzinfo=tz,
        )
    except ValueError as exc:
        raise FormatError(f"impossible date/time {text}: {exc}") from None


def purchase_session_key(
    dpk: bytes, random4: bytes, offline_seq: int, terminal_seq: int, algorithm: Algorithm
) -> bytes:
    """SESPK = DPK(random ‖ offline seq ‖ low 2 bytes of the terminal seq)."""
    if not (0 <= terminal_seq <= 0xFFFFFFFF and type(random4) is bytes and len(random4) == 4
            and 0 <= offline_seq <= 0xFFFF):  # all at once when all is well (twice per purchase)
        _u32(terminal_seq, "terminal seq")
        random4 = _sized(random4, 4, "card random")
        _u16(offline_seq, "offline seq")
    data = b"".join((random4, offline_seq.to_bytes(2, "big"), (terminal_seq & 0xFFFF).to_bytes(2, "big")))
    return session_key(dpk, data, algorithm)


def load_session_key(dlk: bytes, random4: bytes, online_seq: int, algorithm: Algorithm) -> bytes:
    """SESLK = DLK(random ‖ online seq ‖ 80 00)."""
    data = _sized(random4, 4, "card random") + _u16(online_seq, "online seq") + b"\x80\x00"
    return session_key(dlk, data, algorithm)


def purchase_mac1(
    sespk: bytes, amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes,
    algorithm: Algorithm,
) -> bytes:
    """The PSAM's MAC1 of a purchase."""
    return purse_mac(sespk, _movement(amount, tx_type, terminal_id, date4, time3), algorithm)


def purchase_mac2(sespk: bytes, amount: int, algorithm: Algorithm) -> bytes:
    """The card's MAC2 of a purchase: over the amount alone."""
    return purse_mac(sespk, amount4(amount), algorithm)


def load_mac1(
    seslk: bytes, old_balance: int, amount: int, tx_type: int, terminal_id: bytes,
    algorithm: Algorithm,
) -> bytes:
    """The card's MAC1 of a load: old balance ‖ amount ‖ type ‖ terminal."""
    data = amount4(old_balance, "balance") + amount4(amount) + _type(tx_type) + _terminal(terminal_id)
    return purse_mac(seslk, data, algorithm)


def load_mac2(
    seslk: bytes, amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes,
    algorithm: Algorithm,
) -> bytes:
    """The host's MAC2 of a load (the same layout as a purchase's MAC1)."""
    return purse_mac(seslk, _movement(amount, tx_type, terminal_id, date4, time3), algorithm)


@dataclass(frozen=True)
class TacFields:
    """What a TAC covers; the layout follows the transaction type."""

    tx_type: int
    amount: int
    terminal_id: bytes
    date: bytes
    time: bytes
    terminal_seq: int = 0
    new_balance: int = 0
    online_seq: int = 0

    def tac_input(self) -> bytes:
        """Load: newBalance ‖ onlineSeq ‖ amount ‖ type ‖ terminal ‖ date ‖ time;
        any other type: amount ‖ type ‖ terminal ‖ termSeq ‖ date ‖ time."""
        amount, tx_type = self.amount, self.tx_type
        tid, date, time = _checked(amount, tx_type, self.terminal_id, self.date, self.time)
        if tx_type in LOAD_TYPES:
            return b"".join((amount4(self.new_balance, "balance"), _u16(self.online_seq, "online seq"),
                             amount.to_bytes(4, "big"), bytes((tx_type,)), tid, date, time))
        return b"".join((amount.to_bytes(4, "big"), bytes((tx_type,)), tid, _u32(self.terminal_seq, "terminal seq"),
                         date, time))


def compute_tac(dtk: bytes, fields: TacFields, algorithm: Algorithm) -> bytes:
    """The TAC over ``fields`` with the card's DTK (folded for 3DES)."""
    return purse_mac(tac_key(dtk, algorithm), fields.tac_input(), algorithm)


def tac_function(dtk: bytes, algorithm: Algorithm) -> Callable[[bytes], bytes]:
    """``compute_tac`` for many TACs of one card: over ``TacFields.tac_input()`` bytes,
    the key set up once."""
    return purse_mac_function(tac_key(dtk, algorithm), algorithm)


def tac_number_function(dtk: bytes, algorithm: Algorithm) -> Callable[[int, int], bytes]:
    """``tac_function`` over the TAC input given as (big-endian value, length in bytes)."""
    return purse_mac_number_function(tac_key(dtk, algorithm), algorithm)


def purchase_tac(
    dtk: bytes, amount: int, tx_type: int, terminal_id: bytes, terminal_seq: int,
    date4: bytes, time3: bytes, algorithm: Algorithm,
) -> bytes:
    """The TAC of a purchase or composite purchase (the card's DEBIT answer)."""
    if tx_type in LOAD_TYPES:
        raise FormatError(f"transaction type {tx_type:02X} is a load: use load_tac")
    return compute_tac(dtk, TacFields(tx_type, amount, terminal_id, date4, time3, terminal_seq), algorithm)


def load_tac(
    dtk: bytes, new_balance: int, online_seq: int, amount: int, tx_type: int,
    terminal_id: bytes, date4: bytes, time3: bytes, algorithm: Algorithm,
) -> bytes:
    """The TAC of a load (the card's CREDIT FOR LOAD answer)."""
    if tx_type not in LOAD_TYPES:
        raise FormatError(f"transaction type {tx_type:02X} is not a load: use purchase_tac")
    fields = TacFields(tx_type, amount, terminal_id, date4, time3, 0, new_balance, online_seq)
    return compute_tac(dtk, fields, algorithm)
