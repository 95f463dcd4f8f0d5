"""The transit wallet: balance, history, load, purchase, composite purchase
(PBOC EP, JR/T 0025 / JT/T 978 flows).

Money is never lost: the journal record is written and synced before DEBIT
or CREDIT is sent and completed after. Once DEBIT or CREDIT has left, no
error — the line's or our own (a trace file that cannot be written, a broken
pipe) — fails the record: it stays pending and :class:`TornTransactionError`
carries it; the card's next tap resolves it (:mod:`terminal.recovery`). Only
the card saying it did not happen (an error status) fails a record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.crypto import Algorithm
from cardlib.errors import FormatError, MacMismatchError, StatusError, TransportError
from cardlib.iso import read_binary, read_record, select_aid
from cardlib.keys import purse_factors
from cardlib.loadhost import LoadConfirmation, LoadHost, LoadRequest
from cardlib.pboc import macs
from cardlib.pboc import psam as psam_commands
from cardlib.pboc import purse as purse_commands
from cardlib.pboc.files import (
    LOG_SFI,
    MANAGEMENT_SFI,
    PUBLIC_SFI,
    TRIP_SFI,
    ManagementData,
    PublicData,
    TransactionRecord,
    TripRecord,
)
from cardlib.tlv import parse as parse_tlv
from terminal.journal import Journal, JournalRecord
from terminal.psam import PsamClient


class TornTransactionError(TransportError):
    """DEBIT or CREDIT got no answer: present the same card again."""

    def __init__(self, record: JournalRecord, cause: BaseException) -> None:
        self.record = record
        super().__init__(f"transaction torn ({cause}): present the same card again to complete it")


@dataclass(frozen=True)
class TransactionResult:
    """A purchase or load as the journal completed it: what the rider paid or got, the
    balances, the card's counter and the card's TAC (what settlement checks)."""

    kind: str
    tx_type: int
    amount: int
    balance_before: int
    balance_after: int
    card_seq: int
    terminal_id: bytes
    terminal_seq: int | None
    tac: bytes
    mac2: bytes | None
    time: datetime
    journal_id: int
    app_serial: bytes
    recovered: bool = False
    mac2_verified: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape of CLI output: bytes in upper-case hex, the time in ISO 8601."""
        return {
            "kind": self.kind, "type": f"{self.tx_type:02X}", "amount": self.amount,
            "balance_before": self.balance_before, "balance_after": self.balance_after,
            "card_seq": self.card_seq, "terminal_id": self.terminal_id.hex().upper(),
            "terminal_seq": self.terminal_seq, "tac": self.tac.hex().upper(),
            "mac2": self.mac2.hex().upper() if self.mac2 else None, "time": self.time.isoformat(),
            "journal_id": self.journal_id, "app_serial": self.app_serial.hex().upper(),
            "recovered": self.recovered,
        }

    @classmethod
    def from_record(cls, r: JournalRecord) -> TransactionResult:
        """The result a completed (or recovered, or grey) journal record stands for."""
        return cls(r.kind, r.tx_type, r.amount, r.balance_before, r.balance_after or 0, r.card_seq, r.terminal_id,
                   r.terminal_seq, r.tac or b"", r.mac2, r.tx_time, r.id, r.app_serial,
                   r.state in ("recovered", "grey"), r.mac2_verified)


# every tap sends this one
_SELECT_PURSE = select_aid(purse_commands.PURSE_AID)


class Wallet:
    """The purse of the card in ``card``, with the PSAM and the journal of this terminal.

    It promises that no money moves unrecorded: every DEBIT and CREDIT goes after its
    journal record is written and synced, and a torn exchange leaves that record pending
    (:class:`TornTransactionError`) for recovery on the card's next tap."""

    def __init__(self, card: Channel, psam: PsamClient | None, journal: Journal | None, clock: Clock,
                 *, key_index: int | None = None, test: bool | None = None, station: str = "",
                 line: str = "", balance_p1: int = 0x00, composite_prove_p2: int = 0x09) -> None:
        self.card = card
        self.station, self.line = station, line  # where the terminal stands: into every journal record
        self._psam = psam
        self._journal = journal
        self.clock = clock
        self.key_index = (psam.key_index if psam else 1) if key_index is None else key_index
        self.test = (psam.test if psam else False) if test is None else test
        self.public: PublicData | None = None
        self.balance_p1 = balance_p1  # GET BALANCE: 00 including the overdraft, 03 excluding it
        self.composite_prove_p2 = composite_prove_p2  # GET TRANSACTION PROVE's P2 for a composite purchase

    @classmethod
    def reader(cls, card: Channel, clock: Clock) -> Wallet:
        """A wallet that only reads (balance, history): no PSAM, no journal."""
        return cls(card, None, None, clock)

    @property
    def psam(self) -> PsamClient:
        """The PSAM; ValueError on a wallet that only reads."""
        if self._psam is None:
            raise ValueError("this wallet has no PSAM: it can only read")
        return self._psam

    @property
    def journal(self) -> Journal:
        """The journal; ValueError on a wallet that only reads."""
        if self._journal is None:
            raise ValueError("this wallet has no journal: it can only read")
        return self._journal

    # --- reading ------------------------------------------------------------------

    def select(self) -> PublicData:
        """SELECT the purse; 0x15 from the FCI's 9F0C, else READ BINARY by SFI."""
        fci = self.card.send(_SELECT_PURSE, what="SELECT PURSE").data
        raw = b""
        try:
            for obj in parse_tlv(fci, strict=False):
                found = obj.find(0x9F0C)
                if found is not None:
                    raw = found.value
        except Exception:  # a malformed FCI falls back to READ BINARY
            raw = b""
        if len(raw) != PublicData.SIZE:
            raw = self.card.send(read_binary(0, PublicData.SIZE, sfi=PUBLIC_SFI), what="READ 0x15").data
        self.public = PublicData.decode(raw)
        return self.public

    def _public(self) -> PublicData:
        return self.public or self.select()

    def management(self) -> ManagementData:
        """The purse's 0x17 management data (READ BINARY)."""
        self._public()
        return ManagementData.decode(self.card.send(read_binary(0, ManagementData.SIZE, sfi=MANAGEMENT_SFI)).data)

    def balance(self) -> int:
        """The balance in fen (GET BALANCE with this wallet's P1)."""
        self._public()
        return purse_commands.decode_balance(self.card.send(purse_commands.GetBalance(self.balance_p1).to_apdu(), what="GET BALANCE").data)

    def _records(self, sfi: int, size: int, count: int) -> list[bytes]:
        self._public()
        out = []
        for n in range(1, count + 1):
            r = self.card.transmit(read_record(n, sfi=sfi, le=size))
            if r.sw == SW.SW_RECORD_NOT_FOUND or not r.data:
                break
            r.check(f"READ RECORD {n} of {sfi:02X}")
            out.append(r.data)
        return out

    def history(self) -> list[TransactionRecord]:
        """0x18, newest first."""
        return [TransactionRecord.decode(r) for r in self._records(LOG_SFI, TransactionRecord.SIZE, 10)]

    def trips(self) -> list[TripRecord]:
        """The 0x1E transit records, as the card orders them."""
        return [TripRecord.decode(r) for r in self._records(TRIP_SFI, TripRecord.SIZE, 30)]

    def _send_journaled(self, record: JournalRecord, command: CommandAPDU) -> ResponseAPDU:
        """Send DEBIT/CREDIT after its write-ahead record. Any error once it may have left —
        no answer, or our own (an observer that cannot write its trace) — leaves the record
        pending: the card may have moved the money, and only its next tap can tell."""
        try:
            return self.card.transmit(command)
        except Exception as exc:
            raise TornTransactionError(record, exc) from exc

    # --- purchase -------------------------------------------------------------------

    def purchase(self, amount: int, extra: dict[str, Any] | None = None) -> TransactionResult:
        """Debit ``amount`` fen (INITIALIZE, MAC1 from the PSAM, DEBIT, MAC2 checked by the
        PSAM). StatusError 9401 when the balance is short; MacMismatchError when a MAC fails
        (the record then says which side refused)."""
        return self._purchase(amount, None, 0, extra)

    def composite_purchase(self, amount: int, capp_record: bytes | None, record_id: int = 0x2702,
                           extra: dict[str, Any] | None = None, trip: TripRecord | None = None) -> TransactionResult:
        """CAPP init, cache updates (the 0x1A record, then the 48-byte 0x1E transit record, as
        public gate code sends them, before the DEBIT), debit; 0 fen allowed (a metro entry).
        ``trip``'s amount and balance are this transaction's, filled in once INITIALIZE told
        the balance."""
        return self._purchase(amount, capp_record, record_id, extra, capp=True, trip=trip)

    def _purchase(self, amount: int, capp_record: bytes | None, record_id: int,
                  extra: dict[str, Any] | None, capp: bool = False,
                  trip: TripRecord | None = None) -> TransactionResult:
        public = self._public()
        psam = self.psam
        tid = psam.terminal_id
        init = purse_commands.InitializeForPurchaseResponse.decode(
            self.card.send(purse_commands.InitializeForPurchase(self.key_index, amount, tid, capp).to_apdu(),
                           what="INITIALIZE FOR PURCHASE").data)
        now = self.clock.now().astimezone(BEIJING).replace(microsecond=0)
        date, time = macs.bcd_datetime(now)
        tx_type = macs.TX_CAPP_PURCHASE if capp else macs.TX_EP_PURCHASE
        issuer_f, card_f = purse_factors(public.issuer_id, public.app_serial)
        session = (public.app_serial, init.offline_seq, tx_type)
        sam = psam.init_purchase(psam_commands.InitSamForPurchase(
            init.random, init.offline_seq, amount, tx_type, date, time, init.key_version, init.alg_id,
            (card_f, issuer_f)), session)
        if capp_record is not None:
            self.card.send(purse_commands.UpdateCappDataCache(record_id, capp_record).to_apdu(), what="UPDATE CAPP DATA CACHE")
        if trip is not None:
            filled = dataclasses.replace(trip, amount=amount, balance=max(init.balance - amount, 0), time=now)
            self.card.send(purse_commands.UpdateCappDataCache(0, filled.encode(), TRIP_SFI).to_apdu(),
                           what="UPDATE CAPP DATA CACHE 1E")
        journal = self.journal
        record = journal.begin(
            kind="composite" if capp else "purchase", tx_type=tx_type, app_serial=public.app_serial,
            card_seq=init.offline_seq, amount=amount, balance_before=init.balance, terminal_id=tid,
            tx_time=now, algorithm=Algorithm.from_alg_id(init.alg_id), key_version=init.key_version,
            key_index=self.key_index, test=self.test, terminal_seq=sam.terminal_seq, station=self.station,
            line=self.line, extra=extra, issuer_id=public.issuer_id)
        response = self._send_journaled(record, purse_commands.DebitForPurchase(sam.terminal_seq, date, time, sam.mac1).to_apdu())
        if not response.ok:
            journal.fail(record.id, f"card answered {response.sw:04X}")
            if response.sw == SW.SW_MAC_INVALID:
                raise MacMismatchError("the card refused the PSAM's MAC1")
            response.check("DEBIT FOR PURCHASE")
        try:
            debit = purse_commands.DebitResponse.decode(response.data)
        except FormatError as exc:  # 9000 with something else: the card may have paid
            raise TornTransactionError(record, exc) from exc
        balance_after = init.balance - amount
        try:
            psam.verify_mac2(debit.mac2)
        except MacMismatchError:  # the card did debit: the record completes, flagged
            journal.complete(record.id, tac=debit.tac, mac2=debit.mac2, balance_after=balance_after,
                             mac2_verified=False)
            raise
        done = journal.complete(record.id, tac=debit.tac, mac2=debit.mac2, balance_after=balance_after,
                                mac2_verified=True)
        return TransactionResult.from_record(done)

    # --- load -------------------------------------------------------------------------

    def load(self, amount: int, host: LoadHost, extra: dict[str, Any] | None = None) -> TransactionResult:
        """Credit ``amount`` fen authorised by ``host`` (its MAC2 for the card's MAC1); the host
        is told the outcome before the journal completes, so a crash between the two only
        repeats the report."""
        public = self._public()
        tid = self.psam.terminal_id
        init = purse_commands.InitializeForLoadResponse.decode(
            self.card.send(purse_commands.InitializeForLoad(self.key_index, amount, tid).to_apdu(), what="INITIALIZE FOR LOAD").data)
        now = self.clock.now().astimezone(BEIJING).replace(microsecond=0)
        auth = host.authorize_load(LoadRequest(
            public.app_serial, amount, tid, macs.TX_EP_LOAD, init.online_seq, init.balance, init.random,
            init.key_version, self.key_index, init.alg_id, init.mac1, now))
        tx_time = macs.parse_bcd_datetime(auth.date, auth.time)
        record = self.journal.begin(
            kind="load", tx_type=macs.TX_EP_LOAD, app_serial=public.app_serial, card_seq=init.online_seq,
            amount=amount, balance_before=init.balance, terminal_id=tid, tx_time=tx_time,
            algorithm=Algorithm.from_alg_id(init.alg_id), key_version=init.key_version,
            key_index=self.key_index, test=self.test, station=self.station, line=self.line, extra=extra,
            issuer_id=public.issuer_id)
        response = self._send_journaled(record, purse_commands.CreditForLoad(auth.date, auth.time, auth.mac2).to_apdu())
        if not response.ok:
            self.journal.fail(record.id, f"card answered {response.sw:04X}")
            host.confirm_load(LoadConfirmation(public.app_serial, init.online_seq, "failed"))
            if response.sw == SW.SW_MAC_INVALID:
                raise MacMismatchError("the card refused the host's MAC2")
            raise StatusError(response.sw, command="CREDIT FOR LOAD")
        try:
            tac = purse_commands.CreditResponse.decode(response.data).tac
        except FormatError as exc:  # 9000 with something else: the card may have credited
            raise TornTransactionError(record, exc) from exc
        # the host first: a crash before the journal completes leaves the record pending, and recovery
        # tells the host again (it takes the same report twice); the other way round it stayed pending there
        host.confirm_load(LoadConfirmation(public.app_serial, init.online_seq, "completed", tac))
        done = self.journal.complete(record.id, tac=tac, mac2=auth.mac2, balance_after=init.balance + amount)
        return TransactionResult.from_record(done)
