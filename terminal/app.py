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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from cardlib import sw as SW
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
from terminal.blocking import block_listed
from terminal.config import TerminalConfig
from terminal.current_denylist import CurrentDenyList
from terminal.decision import Decision, Reason, mask_serial
from terminal.denylist import DenyList
from terminal.fares import Rider
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.recovery import recover_card
from terminal.sam_pool import PsamUnavailableError
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
        """The purse's application serial (0x15)."""
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


class _Refused(Exception):
    """A check of the tap refused the card: the decision's reason and detail."""

    def __init__(self, reason: Reason, detail: str = "", blocked: bool | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.detail = detail
        self.blocked = blocked


class TerminalApp:
    """Base of MetroGate, IdentityGate and BusValidator: :meth:`tap` runs the checks every
    role shares, then the role's :meth:`decide`, and records every decision in the journal,
    refusals included; no tap raises for card trouble."""

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
        #: a station's lane: chooses the card's PSAM once the purse is selected; a decision refuses (terminal.station_lane)
        self.on_purse: Callable[[Tap], Decision | None] | None = None

    def refresh_denylist(self) -> None:
        """Between taps: pick up a replaced deny list file (a bad one is refused, the old list kept)."""
        if isinstance(self.denylist, CurrentDenyList):
            self.denylist.refresh()

    # --- the role's rule ---------------------------------------------------------------

    def decide(self, tap: Tap) -> Decision:
        """The role's rule for a card that passed the shared checks: open or refuse, and charge."""
        raise NotImplementedError

    # --- helpers for roles ---------------------------------------------------------------

    def decision(self, tap: Tap | None, opened: bool, reason: Reason, amount: int = 0,
                 balance: int | None = None, result: TransactionResult | None = None, detail: str = "",
                 blocked: bool | None = None) -> Decision:
        """The decision, recorded in the journal's events (the serial masked in the Decision)."""
        now = tap.now if tap else self.clock.now()
        serial = tap.serial if tap else None
        if result is not None:
            amount, balance = result.amount, result.balance_after
        d = Decision(opened, reason, now, self.name, mask_serial(serial) if serial else "", amount, balance,
                     result.journal_id if result else None, detail, blocked)
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
        """Charge ``amount`` (a composite purchase when ``capp_record`` is given) and open; a
        short balance is a refusal, recorded like any other."""
        try:
            if capp_record is not None:
                result = tap.wallet.composite_purchase(amount, capp_record, record_id, trip=trip)
            else:
                result = tap.wallet.purchase(amount)
        except StatusError as exc:
            if exc.sw == SW.SW_INSUFFICIENT_BALANCE:
                return self.decision(tap, False, Reason.INSUFFICIENT_BALANCE, amount, tap.wallet.balance())
            raise
        return self.decision(tap, True, reason, result=result, detail=detail)

    # --- one tap ------------------------------------------------------------------------------

    def tap(self, reader: Reader) -> Decision:
        """Run the whole flow for the card in ``reader`` and record the decision; never raises
        for card trouble (a card gone, a refusal, a fault of ours: each is a refusing Decision)."""
        try:
            atr = reader.connect()
        except MultipleCardsError:
            return self.decision(None, False, Reason.MULTIPLE_CARDS)
        except TransportError:  # gone, or the reader lost its answer (line noise): the rider taps again
            return self.decision(None, False, Reason.CARD_REMOVED)
        channel = self._channel(reader, atr)
        tap: Tap | None = None
        try:
            with reader.transaction():
                now = self.clock.now().astimezone(BEIJING)
                identity = self._read_identity(channel, now.date())
                wallet = self._wallet(channel)
                tap = Tap(channel, wallet, identity, self._select_purse(wallet), now)
                if self.on_purse is not None and (refused := self.on_purse(tap)) is not None:
                    return refused
                self._check_purse(tap)
                return self._recovered(tap) or self.decide(tap)
        except _Refused as refusal:
            return self.decision(tap, False, refusal.reason, detail=refusal.detail, blocked=refusal.blocked)
        except TornTransactionError as exc:
            return self.decision(tap, False, Reason.TORN_RETRY, exc.record.amount, detail=str(exc))
        except PsamUnavailableError as exc:  # before DEBIT: no record; after: the record stays pending
            return self.decision(tap, False, Reason.PSAM_UNAVAILABLE, detail=str(exc))
        except TransportError:  # a pending record, if any, is settled when the card returns
            return self.decision(tap, False, Reason.CARD_REMOVED)
        except YktError as exc:
            return self.decision(tap, False, Reason.CARD_ERROR, detail=str(exc))
        except Exception as exc:  # a fault of ours mid-tap: the rider is refused and it is recorded
            return self.decision(tap, False, Reason.CARD_ERROR,
                                 detail=f"internal error: {type(exc).__name__}: {str(exc)[:200]}")

    def _channel(self, reader: Reader, atr: bytes) -> Channel:
        """The tap's channel, traced when a recorder is set."""
        channel = Channel(reader)
        if self.trace is not None:
            self.trace.header(atr, reader.name)
            channel.add_observer(self.trace)
        return channel

    def _wallet(self, channel: Channel) -> Wallet:
        config = self.config
        return Wallet(channel, self.psam, self.journal, self.clock, key_index=config.key_index,
                      station=config.station, line=config.line, balance_p1=config.balance_p1,
                      composite_prove_p2=config.composite_prove_p2)

    def _read_identity(self, channel: Channel, today: date) -> auth.Identity | None:
        """The SSSE records the role decides by (None on a plain T-Union card); at identity
        gates the card's validity, its authentication through the SAM and its PIN."""
        ssse = auth.SsseReader(channel, self.config.ssse_addressing)
        if not ssse.select():
            if self.NEEDS_SSSE:
                raise _Refused(Reason.NOT_SOCIAL_SECURITY_CARD,
                               "no social security application: a transit card only")
            return None
        identity = ssse.read(self.SSSE_TAGS)
        more = self.more_ssse_tags(identity, today)
        if more:
            identity = ssse.read(more)
        if not self.PURSE_AUTHENTICATES:
            self._authenticate(channel, identity, today)
        if self.config.require_pin and auth.pin_tries_left(channel, select=False) == 0:
            raise _Refused(Reason.PIN_BLOCKED)
        return identity

    def _authenticate(self, channel: Channel, identity: auth.Identity, today: date) -> None:
        """An identity gate's own checks: the card's validity (EF05), then INTERNAL AUTHENTICATE."""
        try:
            auth.check_validity(identity.issue_date, identity.expiry_date, today)
        except auth.CardRefusedError as exc:
            raise _Refused(Reason(exc.reason), str(exc)) from exc
        if self.config.authenticate_card:
            try:
                auth.internal_authenticate(channel, self.psam, identity.card_id, os.urandom(8), select=False)
            except AuthenticationError as exc:
                raise _Refused(Reason.AUTH_FAILED, str(exc)) from exc

    @staticmethod
    def _select_purse(wallet: Wallet) -> PublicData:
        """Select the purse; its 0x15 from the FCI. A blocked purse is a refusal."""
        try:
            return wallet.select()
        except StatusError as exc:
            if exc.sw in (SW.SW_FUNC_NOT_SUPPORTED, SW.SW_APP_LOCKED):
                raise _Refused(Reason.PURSE_BLOCKED) from exc
            raise

    def _check_purse(self, tap: Tap) -> None:
        """The deny list (a listed purse is refused, and blocked on the spot where the PSAM holds its
        issuer's maintenance key) and the purse's validity."""
        public = tap.public
        if self.denylist is not None and public.app_serial in self.denylist:
            blocked, what = block_listed(tap.channel, self.psam, public.issuer_id, public.app_serial)
            raise _Refused(Reason.DENY_LISTED, what, blocked)
        today = tap.now.date()
        if self.PURSE_AUTHENTICATES:  # transit: the card's validity is the purse's (the project's profile)
            try:
                auth.check_validity(public.valid_from, public.valid_until, today)
            except auth.CardRefusedError as exc:
                raise _Refused(Reason(exc.reason), str(exc)) from exc
        elif not public.valid_from <= today <= public.valid_until:
            raise _Refused(Reason.PURSE_EXPIRED)

    def _recovered(self, tap: Tap) -> Decision | None:
        """A torn transaction of this card resolved as done within the window opens the gate."""
        for outcome in recover_card(tap.wallet, self.config.recovery_window):
            if outcome.happened and outcome.within_window and outcome.result is not None:
                return self.decision(tap, True, Reason.RECOVERED, result=outcome.result)
        return None

    def entries_today(self, serial: bytes, day: date) -> list[dict[str, object]]:
        """The events of this terminal that opened for ``serial`` on ``day`` (Beijing time)."""
        start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
        return [e for e in self.journal.events(serial, since=start)
                if e["terminal"] == self.name and e["decision"] == "open"]
