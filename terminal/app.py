"""What every gate and validator does with a tap, before its own rule.

Connect (one card only), read the social security data, check validity,
authenticate the card through the SAM, select the purse, check the deny
list (and block a listed purse), resolve a torn transaction of this card,
then let the role decide. Every decision is recorded in the journal's
events, refusals included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.errors import (
    AuthenticationError,
    MultipleCardsError,
    StatusError,
    TransportError,
    YktError,
)
from cardlib.iso import read_record
from cardlib.pboc.files import CAPP_SFI, PublicData, TripRecord
from cardlib.readers.base import Reader
from cardlib.trace import TraceRecorder
from terminal import auth
from terminal.blocking import block_purse
from terminal.config import TerminalConfig
from terminal.current_denylist import CurrentDenyList
from terminal.decision import Decision, Reason, mask_serial
from terminal.denylist import DenyList
from terminal.fares import Rider
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.recovery import recover_card
from terminal.wallet import TornTransactionError, TransactionResult, Wallet

CARD_TYPE_NAMES = {0x01: "adult", 0x02: "student", 0x03: "elder", 0x04: "child", 0x05: "disabled", 0x06: "staff"}


@dataclass
class Tap:
    """One card in the field, read and checked."""

    channel: Channel
    wallet: Wallet
    info: auth.CardInfo
    public: PublicData
    now: datetime

    @property
    def serial(self) -> bytes:
        return self.public.app_serial

    def rider(self) -> Rider:
        return Rider(CARD_TYPE_NAMES.get(self.info.issuer.card_type, "adult"),
                     self.info.age_on(self.now.date()), self.info.issuer.region)

    def capp(self, record_id: int) -> bytes | None:
        """The 0x1A record keyed ``27 xx`` (two-byte keys: scanned by number)."""
        for n in range(1, 19):
            r = self.channel.transmit(read_record(n, sfi=CAPP_SFI))
            if not r.ok:
                return None
            if r.data[:2] == record_id.to_bytes(2, "big"):
                return r.data
        return None


class TerminalApp:
    """Base of MetroGate, IdentityGate and BusValidator."""

    def __init__(self, config: TerminalConfig, psam: PsamClient, journal: Journal, clock: Clock,
                 denylist: DenyList | CurrentDenyList | None = None, name: str | None = None) -> None:
        self.config = config
        self.psam = psam
        self.journal = journal
        self.clock = clock
        self.denylist = denylist
        self.name = name or config.name or psam.terminal_id.hex().upper()
        self.trace: TraceRecorder | None = None  # every tap's ATR and exchanges, when set

    def refresh_denylist(self) -> None:
        """Between taps: pick up a replaced deny list file (a bad one is refused, the old list kept)."""
        if isinstance(self.denylist, CurrentDenyList):
            self.denylist.refresh()

    # --- the role's rule ---------------------------------------------------------------

    def decide(self, tap: Tap) -> Decision:
        raise NotImplementedError

    # --- helpers for roles ---------------------------------------------------------------

    def decision(self, tap: Tap | None, opened: bool, reason: Reason, amount: int = 0,
                 balance: int | None = None, result: TransactionResult | None = None, detail: str = "") -> Decision:
        now = tap.now if tap else self.clock.now()
        serial = tap.serial if tap else None
        if result is not None:
            amount, balance = result.amount, result.balance_after
        d = Decision(opened, reason, now, self.name, mask_serial(serial) if serial else "", amount, balance,
                     result.journal_id if result else None, detail)
        self.journal.log_event(now, serial, self.name, opened, reason.value, amount, d.journal_id)
        return d

    def trip(self, tap: Tap, record_type: int, place: str) -> TripRecord:
        """The 0x1E transit record of this tap (amount and balance filled in by the wallet).
        Device: the terminal number right-aligned in 8 bytes; line/station: the first four
        ASCII bytes of the code (the project's profile)."""
        return TripRecord(record_type, bytes(2) + self.psam.terminal_id, self.config.industry,
                          place.encode("ascii", "replace")[:4].ljust(4, b"\x00"), 0, 0, tap.now)

    def charge(self, tap: Tap, amount: int, capp_record: bytes | None, record_id: int, reason: Reason = Reason.OK,
               detail: str = "", trip: TripRecord | None = None) -> Decision:
        try:
            if capp_record is not None:
                result = tap.wallet.composite_purchase(amount, capp_record, record_id, trip=trip)
            else:
                result = tap.wallet.purchase(amount)
        except StatusError as exc:
            if exc.sw == 0x9401:
                return self.decision(tap, False, Reason.INSUFFICIENT_BALANCE, amount, tap.wallet.balance())
            raise
        return self.decision(tap, True, reason, result=result, detail=detail)

    # --- one tap ------------------------------------------------------------------------------

    def tap(self, reader: Reader) -> Decision:
        """Run the whole flow for the card in ``reader``; never raises for card trouble."""
        try:
            atr = reader.connect()
        except MultipleCardsError:
            return self.decision(None, False, Reason.MULTIPLE_CARDS)
        except TransportError:  # gone, or the reader lost its answer (line noise): the rider taps again
            return self.decision(None, False, Reason.CARD_REMOVED)
        channel = Channel(reader)
        if self.trace is not None:
            self.trace.header(atr, reader.name)
            channel.add_observer(self.trace)
        tap: Tap | None = None
        try:
            with reader.transaction():
                now = self.clock.now().astimezone(BEIJING)
                info = auth.read_card(channel)
                wallet = Wallet(channel, self.psam, self.journal, self.clock, key_index=self.config.key_index,
                                station=self.config.station, line=self.config.line,
                                balance_p1=self.config.balance_p1,
                                composite_prove_p2=self.config.composite_prove_p2)
                try:
                    auth.check_validity(info, self.clock)
                except auth.CardRefusedError as exc:
                    return self.decision(None, False, Reason(exc.reason), detail=str(exc))
                if self.config.authenticate_card:
                    try:
                        auth.internal_authenticate(channel, self.psam, info, os.urandom(8))
                    except AuthenticationError as exc:
                        return self.decision(None, False, Reason.AUTH_FAILED, detail=str(exc))
                if self.config.require_pin and auth.pin_tries_left(channel) == 0:
                    return self.decision(None, False, Reason.PIN_BLOCKED)
                try:
                    public = wallet.select()
                except StatusError as exc:
                    if exc.sw in (0x6A81, 0x9303):
                        return self.decision(None, False, Reason.PURSE_BLOCKED)
                    raise
                tap = Tap(channel, wallet, info, public, now)
                if self.denylist is not None and public.app_serial in self.denylist:
                    block_purse(channel, self.psam, public.app_serial)
                    return self.decision(tap, False, Reason.DENY_LISTED)
                today = now.date()
                if not public.valid_from <= today <= public.valid_until:
                    return self.decision(tap, False, Reason.PURSE_EXPIRED)
                for outcome in recover_card(wallet, self.config.recovery_window):
                    if outcome.happened and outcome.within_window and outcome.result is not None:
                        return self.decision(tap, True, Reason.RECOVERED, result=outcome.result)
                return self.decide(tap)
        except TornTransactionError as exc:
            return self.decision(tap, False, Reason.TORN_RETRY, exc.record.amount, detail=str(exc))
        except TransportError:  # a pending record, if any, is settled when the card returns
            return self.decision(tap, False, Reason.CARD_REMOVED)
        except YktError as exc:
            return self.decision(tap, False, Reason.CARD_ERROR, detail=str(exc))
        except Exception as exc:  # noqa: BLE001 - a fault of ours mid-tap: the rider is refused and it is recorded
            return self.decision(tap, False, Reason.CARD_ERROR,
                                 detail=f"internal error: {type(exc).__name__}: {str(exc)[:200]}")

    def entries_today(self, serial: bytes, day: date) -> list[dict[str, object]]:
        start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
        return [e for e in self.journal.events(serial, since=start)
                if e["terminal"] == self.name and e["decision"] == "open"]
