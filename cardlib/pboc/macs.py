"""The inputs of the purse's MACs, TACs and session keys (JR/T 0025.2 PBOC
e-purse, JT/T 978), each declared once (cardlib/wire.py) with its vectors.

Used by the simulated card, the PSAM, the load host, the terminal and
settlement, so no two of them can disagree on a byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from construct import Bytes, Const, Int8ub, Int16ub, Int32ub, Struct

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
from cardlib.wire import Vector, declare

TX_ED_LOAD = 0x01
TX_EP_LOAD = 0x02
TX_ED_PURCHASE = 0x05
TX_EP_PURCHASE = 0x06
TX_CAPP_PURCHASE = 0x09
LOAD_TYPES = frozenset({TX_ED_LOAD, TX_EP_LOAD})
PURCHASE_TYPES = frozenset({TX_ED_PURCHASE, TX_EP_PURCHASE, TX_CAPP_PURCHASE})

MAX_AMOUNT = 0xFFFFFFFF

EP = "JR/T 0025.2 (PBOC e-purse), JT/T 978 (T-Union)"
PURCHASE_EXAMPLE = "public: PBOC EP purchase worked example, https://www.cnblogs.com/ttss/p/4280430.html"
LOAD_EXAMPLE = "public: PBOC EP load worked example, http://www.ncuisine.com/xingyexinwen/379.html"
H = bytes.fromhex
_TERM = H("001122334455")

PURCHASE_SESSION = declare(
    "macs.purchase_session_key.input", Struct("random" / Bytes(4), "offline_seq" / Int16ub, "terminal_seq_low" / Int16ub),
    cite=f"{EP}: the purchase session key SESPK = DPK(card random, offline counter, low half of the terminal counter)",
    vectors=(Vector(H("11223344 0000 0001"), {"random": H("11223344"), "offline_seq": 0, "terminal_seq_low": 1},
                    PURCHASE_EXAMPLE),),
)
LOAD_SESSION = declare(
    "macs.load_session_key.input", Struct("random" / Bytes(4), "online_seq" / Int16ub, Const(b"\x80\x00")),
    cite=f"{EP}: the load session key SESLK = DLK(card random, online counter, 8000)",
    vectors=(Vector(H("11223344 0000 8000"), {"random": H("11223344"), "online_seq": 0},
                    LOAD_EXAMPLE),),
)
MOVEMENT = declare(
    "macs.purchase_mac1.input",
    Struct("amount" / Int32ub, "tx_type" / Int8ub, "terminal_id" / Bytes(6), "date" / Bytes(4), "time" / Bytes(3)),
    cite=f"{EP}: the input of a purchase's MAC1 (PSAM) and of a load's MAC2 (host): the same layout",
    vectors=(
        Vector(H("00001000 06 001122334455 20120229 135100"),
               {"amount": 0x1000, "tx_type": 6, "terminal_id": _TERM, "date": H("20120229"), "time": H("135100")},
               PURCHASE_EXAMPLE),
        Vector(H("00001000 01 001122334455 20111221 214822"),
               {"amount": 0x1000, "tx_type": 1, "terminal_id": _TERM, "date": H("20111221"), "time": H("214822")},
               LOAD_EXAMPLE + " (MAC2)"),
    ),
)
AMOUNT = declare(
    "macs.purchase_mac2.input", Struct("amount" / Int32ub),
    cite=f"{EP}: the input of a purchase's MAC2 (card): the amount alone",
    vectors=(Vector(H("00001000"), {"amount": 0x1000}, PURCHASE_EXAMPLE),),
)
LOAD_MAC1 = declare(
    "macs.load_mac1.input",
    Struct("balance" / Int32ub, "amount" / Int32ub, "tx_type" / Int8ub, "terminal_id" / Bytes(6)),
    cite=f"{EP}: the input of a load's MAC1 (card): old balance, amount, type, terminal",
    vectors=(Vector(H("00000000 00001000 01 001122334455"),
                    {"balance": 0, "amount": 0x1000, "tx_type": 1, "terminal_id": _TERM}, LOAD_EXAMPLE),),
)
PURCHASE_TAC = declare(
    "macs.purchase_tac.input",
    Struct("amount" / Int32ub, "tx_type" / Int8ub, "terminal_id" / Bytes(6), "terminal_seq" / Int32ub,
           "date" / Bytes(4), "time" / Bytes(3)),
    cite=f"{EP}: the TAC of a purchase or composite purchase (DEBIT's answer)",
    vectors=(Vector(H("00001000 06 001122334455 00000001 20111221 214822"),
                    {"amount": 0x1000, "tx_type": 6, "terminal_id": _TERM, "terminal_seq": 1, "date": H("20111221"),
                     "time": H("214822")}, "own: hand-packed from the layout, the purchase example's fields"),),
)
LOAD_TAC = declare(
    "macs.load_tac.input",
    Struct("new_balance" / Int32ub, "online_seq" / Int16ub, "amount" / Int32ub, "tx_type" / Int8ub,
           "terminal_id" / Bytes(6), "date" / Bytes(4), "time" / Bytes(3)),
    cite=f"{EP}: the TAC of a load (CREDIT FOR LOAD's answer); a layout with a single source, the project's reading",
    vectors=(Vector(H("00002000 0000 00001000 02 001122334455 20111221 214822"),
                    {"new_balance": 0x2000, "online_seq": 0, "amount": 0x1000, "tx_type": 2, "terminal_id": _TERM,
                     "date": H("20111221"), "time": H("214822")},
                    "own: hand-packed from the layout, the load example's fields"),),
)


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
    if not 0 <= terminal_seq <= 0xFFFFFFFF:  # a 4-byte counter, of which the input takes the low half
        raise FormatError(f"terminal seq {terminal_seq} does not fit in 4 byte(s)")
    return session_key(dpk, PURCHASE_SESSION.pack(random4, offline_seq, terminal_seq & 0xFFFF), algorithm)


def load_session_key(dlk: bytes, random4: bytes, online_seq: int, algorithm: Algorithm) -> bytes:
    """SESLK = DLK(random ‖ online seq ‖ 80 00)."""
    return session_key(dlk, LOAD_SESSION.pack(random4, online_seq), algorithm)


def purchase_mac1(
    sespk: bytes, amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes,
    algorithm: Algorithm,
) -> bytes:
    """The PSAM's MAC1 of a purchase."""
    return purse_mac(sespk, MOVEMENT.pack(amount, tx_type, terminal_id, date4, time3), algorithm)


def purchase_mac2(sespk: bytes, amount: int, algorithm: Algorithm) -> bytes:
    """The card's MAC2 of a purchase: over the amount alone."""
    return purse_mac(sespk, AMOUNT.pack(amount), algorithm)


def load_mac1(
    seslk: bytes, old_balance: int, amount: int, tx_type: int, terminal_id: bytes,
    algorithm: Algorithm,
) -> bytes:
    """The card's MAC1 of a load: old balance ‖ amount ‖ type ‖ terminal."""
    return purse_mac(seslk, LOAD_MAC1.pack(old_balance, amount, tx_type, terminal_id), algorithm)


def load_mac2(
    seslk: bytes, amount: int, tx_type: int, terminal_id: bytes, date4: bytes, time3: bytes,
    algorithm: Algorithm,
) -> bytes:
    """The host's MAC2 of a load (the same layout as a purchase's MAC1)."""
    return purse_mac(seslk, MOVEMENT.pack(amount, tx_type, terminal_id, date4, time3), algorithm)


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
        """Load: :data:`LOAD_TAC`; any other type: :data:`PURCHASE_TAC`."""
        if self.tx_type in LOAD_TYPES:
            return LOAD_TAC.pack(self.new_balance, self.online_seq, self.amount, self.tx_type, self.terminal_id,
                                 self.date, self.time)
        return PURCHASE_TAC.pack(self.amount, self.tx_type, self.terminal_id, self.terminal_seq, self.date, self.time)


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
