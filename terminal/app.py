"""What every gate and validator does with a tap, before its own rule.

Connect (one card only); read of the social security application only the
records the role decides by (a plain T-Union card has none: transit roles take
it, identity gates refuse it); at identity gates check the card's validity
(EF05) and authenticate the card through the SAM (transit roles do not: the
purchase's MAC2, checked by the PSAM, proves the card); select the purse (0x15
from its FCI), check the deny list (and block a listed purse) and the purse's
validity, resolve a torn transaction of this card, then let the role decide.
Nothing selected is selected again. The APDUs of each role are listed, with
why each is needed, in docs/performance.md ("What a tap sends"). Every
decision is recorded in the journal's events, refusals included.
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
from cardlib.pboc.files import CAPP_SFI, LOCAL_CARD_TYPES, PublicData, TripRecord
from cardlib.readers.base import Reader
from cardlib.ssse.files import CARD_TYPE_NAMES, T_BIRTH_DATE, T_CARD_TYPE
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


@dataclass
class Tap:
    """One card in the field, read and checked; ``identity`` None on a plain T-Union card."""

    channel: Channel
    wallet: Wallet
    identity: auth.Identity | None
    public: PublicData
    now: datetime

    @property
    def serial(self) -> bytes:
        return self.public.app_serial

    def rider(self) -> Rider:
        """Card type and age from the SSSE records read (EF05 02, EF06 0D); a plain card's type
        from 0x15 byte 28 and no age. The region: EF05's card identifier when read, else the
        application serial's city code (its first four digits)."""
        ident = self.identity
        if ident is None:
            kind = LOCAL_CARD_TYPES.get(self.public.local_card_type, "adult")
        else:
            kind = CARD_TYPE_NAMES.get(ident.card_type or 0x01, "adult")
        age = ident.age_on(self.now.date()) if ident is not None else None
        region = (ident.region if ident is not None else None) or self.public.app_serial[:2].hex() + "00"
        return Rider(kind, age, region)

    def capp(self, record_id: int) -> bytes | None:
        """The 0x1A record keyed ``27 xx``: first the record numbered ``xx`` (where cards
        personalised in key order keep it), else a scan by number (two-byte keys cannot
        be read by identifier)."""
        key = record_id.to_bytes(2, "big")
        first = record_id & 0xFF
        r = self.channel.transmit(read_record(first, sfi=CAPP_SFI)) if 1 <= first <= 18 else None
        if r is not None and r.ok and r.data[:2] == key:
            return r.data
        for n in range(1, 19):
            if n == first:
                continue
            r = self.channel.transmit(read_record(n, sfi=CAPP_SFI))
            if not r.ok:
                return None
            if r.data[:2] == key:
                return r.data
        return None


class TerminalApp:
    """Base of MetroGate, IdentityGate and BusValidator."""

    #: the SSSE records (EF05/EF06 tags) the role decides by: transit roles, the card type and
    #: the birth date for concessions (validity is the purse's, from 0x15 in the FCI)
    SSSE_TAGS: frozenset[int] = frozenset({T_CARD_TYPE, T_BIRTH_DATE})
    #: identity gates admit by the social security card alone; transit roles take plain T-Union cards
    NEEDS_SSSE = False
    #: a purse transaction authenticates the card (MAC2 checked by the PSAM): no SSSE authentication
    PURSE_AUTHENTICATES = True

    def more_ssse_tags(self, identity: auth.Identity, today: date) -> frozenset[int]:
        """Records the first read showed are needed too (read before leaving the SSSE)."""
        del identity, today
        return frozenset()

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
                today = now.date()
                wallet = Wallet(channel, self.psam, self.journal, self.clock, key_index=self.config.key_index,
                                station=self.config.station, line=self.config.line,
                                balance_p1=self.config.balance_p1,
                                composite_prove_p2=self.config.composite_prove_p2)
                ssse = auth.SsseReader(channel, self.config.ssse_addressing)
                identity: auth.Identity | None = None
                if ssse.select():
                    identity = ssse.read(self.SSSE_TAGS)
                    more = self.more_ssse_tags(identity, today)
                    if more:
                        identity = ssse.read(more)
                elif self.NEEDS_SSSE:
                    return self.decision(None, False, Reason.NOT_SOCIAL_SECURITY_CARD,
                                         detail="no social security application: a transit card only")
                if identity is not None and not self.PURSE_AUTHENTICATES:
                    try:
                        auth.check_validity(identity.issue_date, identity.expiry_date, today)
                    except auth.CardRefusedError as exc:
                        return self.decision(None, False, Reason(exc.reason), detail=str(exc))
                    if self.config.authenticate_card:
                        try:
                            auth.internal_authenticate(channel, self.psam, identity.card_id, os.urandom(8),
                                                       select=False)
                        except AuthenticationError as exc:
                            return self.decision(None, False, Reason.AUTH_FAILED, detail=str(exc))
                if identity is not None and self.config.require_pin and auth.pin_tries_left(channel, select=False) == 0:
                    return self.decision(None, False, Reason.PIN_BLOCKED)
                try:
                    public = wallet.select()
                except StatusError as exc:
                    if exc.sw in (0x6A81, 0x9303):
                        return self.decision(None, False, Reason.PURSE_BLOCKED)
                    raise
                tap = Tap(channel, wallet, identity, public, now)
                if self.denylist is not None and public.app_serial in self.denylist:
                    block_purse(channel, self.psam, public.app_serial)
                    return self.decision(tap, False, Reason.DENY_LISTED)
                if self.PURSE_AUTHENTICATES:  # transit: the card's validity is the purse's (reference §8)
                    try:
                        auth.check_validity(public.valid_from, public.valid_until, today)
                    except auth.CardRefusedError as exc:
                        return self.decision(tap, False, Reason(exc.reason), detail=str(exc))
                elif not public.valid_from <= today <= public.valid_until:
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
