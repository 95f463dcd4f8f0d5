"""The bus validator: flat or line-segment fare, transfer discount (from the
previous ride kept in the card's 0x1A record 2702, so it works across
validators and lines), repeated-tap protection, concessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cardlib.clock import BEIJING
from cardlib.errors import FormatError
from cardlib.pboc.files import capp_record
from cardlib.pboc.macs import bcd_datetime, parse_bcd_datetime
from terminal.app import Tap, TerminalApp
from terminal.decision import Decision, Reason
from terminal.fares import bus_fare

BUS_RECORD = 0x2702


@dataclass(frozen=True)
class BusRide:
    line: str
    time: datetime
    terminal: bytes
    amount: int

    def encode(self) -> bytes:
        d, t = bcd_datetime(self.time.astimezone(BEIJING))
        return capp_record(BUS_RECORD, self.line.encode("ascii")[:8].ljust(8, b"\x00") + d + t + self.terminal
                           + self.amount.to_bytes(4, "big"))

    @classmethod
    def decode(cls, raw: bytes) -> BusRide | None:
        body = raw[2:]
        if len(body) < 25:
            return None
        try:
            when = parse_bcd_datetime(body[8:12], body[12:15])
        except FormatError:
            return None
        return cls(body[:8].rstrip(b"\x00").decode("ascii", "replace"), when, body[15:21],
                   int.from_bytes(body[21:25], "big"))


class BusValidator(TerminalApp):
    def decide(self, tap: Tap) -> Decision:
        raw = tap.capp(BUS_RECORD)
        previous = BusRide.decode(raw) if raw else None
        tid = self.psam.terminal_id
        if (previous is not None and previous.terminal == tid
                and tap.now - previous.time <= self.config.repeat_tap_window):
            return self.decision(tap, False, Reason.REPEATED_TAP, balance=tap.wallet.balance())
        fare = bus_fare(self.config.fares, tap.rider(), tap.now, previous.time if previous else None)
        record = BusRide(self.config.line, tap.now, tid, fare.amount).encode()
        return self.charge(tap, fare.amount, record, BUS_RECORD, detail=", ".join(fare.reasons))
