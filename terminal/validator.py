"""The bus validator: flat or line-segment fare, transfer discount (from the
previous ride kept in the card's 0x1A record 2702, so it works across
validators and lines), repeated-tap protection, concessions."""

from __future__ import annotations

from cardlib.pboc import capp
from cardlib.pboc.files import TRIP_SINGLE
from terminal.app import Tap, TerminalApp
from terminal.decision import Decision, Reason
from terminal.fares import bus_fare

BUS_RECORD = capp.BUS_RECORD
BusRide = capp.BusRide


class BusValidator(TerminalApp):
    """Reads the card's 2702 record (the project's profile, :mod:`cardlib.pboc.capp`),
    modifies it and writes it back with the fare."""

    def decide(self, tap: Tap) -> Decision:
        raw = tap.capp(BUS_RECORD)
        current = capp.read_for_update(raw, BUS_RECORD, self.config.on_bad_crc)
        previous = capp.ride_as_read(raw)
        tid = self.psam.terminal_id
        if (previous is not None and previous.terminal == tid
                and tap.now - previous.time <= self.config.repeat_tap_window):
            return self.decision(tap, False, Reason.REPEATED_TAP, balance=tap.wallet.balance())
        fare = bus_fare(self.config.fares, tap.rider(), tap.now, previous.time if previous else None)
        record = capp.with_bus_ride(current, BusRide(self.config.line, tap.now, tid, fare.amount)).encode()
        return self.charge(tap, fare.amount, record, BUS_RECORD, detail=", ".join(fare.reasons),
                           trip=self.trip(tap, TRIP_SINGLE, self.config.line))
