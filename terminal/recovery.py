"""Torn-transaction recovery (public field code, docs/protocol.md): four outcomes, decided by
the card's counter as field terminals do, never by the balance (a 0-fen
metro entry never moves it) and never on a guess.

On the re-tap the terminal reads the 0x18 log, runs a fresh INITIALIZE of 0
fen with the pending record's key index (``80 50 01 02 0B`` for purchases,
``80 50 00 02 0B`` for loads) and compares the counter with the record's (the
value INITIALIZE returned before the tear):

- unchanged: the money did not move → *failed* (the rider is charged as new);
  so too when the log shows that counter value used by another transaction;
- moved, the log showing it ours (or, when the log no longer reaches back,
  moved by exactly one), and GET TRANSACTION PROVE — sent with the counter
  *after* it (value + 1) and P2 the torn type — answers → *recovered*, MAC2
  checked by the PSAM while its session is open;
- moved and the log showing it ours, but PROVE answers 9406 (the card was used
  since and keeps the last proof only) → *grey* (灰记录): the money moved
  without a TAC; it counts in the card's account, never in a batch;
- anything else (no answer, a counter that went back, a log that forgot and a
  card that cannot prove) → stays *pending* (``decided`` False).

The window (120 s by default) says whether the re-tap still counts as the
interrupted ride.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from cardlib.apdu import ResponseAPDU
from cardlib.errors import FormatError, MacMismatchError, RefusedError, StatusError
from cardlib.loadhost import LoadConfirmation, LoadHost
from cardlib.pboc import macs
from cardlib.pboc import purse as purse_commands
from cardlib.pboc.files import TransactionRecord
from cardlib.sw import SW_MAC_UNAVAILABLE
from terminal.journal import JournalRecord
from terminal.wallet import TransactionResult, Wallet

DEFAULT_WINDOW = timedelta(seconds=120)
LOG_DEPTH = 10  # the 0x18 log keeps the last ten transactions (JR/T 0025 e-purse, JT/T 978)


@dataclass(frozen=True)
class RecoveryOutcome:
    """What recovery decided for one pending record: whether the money moved, whether the
    re-tap is within the window, the result when recovered; ``decided`` False when the card
    could not tell and the record stays pending."""

    record: JournalRecord
    happened: bool  # the money moved: recovered or grey
    within_window: bool
    result: TransactionResult | None = None
    decided: bool = True  # False: the card could not tell; the record stays pending

    @property
    def outcome(self) -> str:
        """failed, recovered, grey or pending: the record's state."""
        return self.record.state


def _log_says(pending: JournalRecord, log: list[TransactionRecord]) -> bool | None:
    """Whether the 0x18 log (newest first) shows the pending transaction made (True), its
    counter value used by another (False), or does not reach back to it (None)."""
    load = pending.tx_type in macs.LOAD_TYPES
    for r in log:
        if (r.tx_type in macs.LOAD_TYPES) == load and r.seq == pending.card_seq:
            return (r.amount == pending.amount and r.tx_type == pending.tx_type
                    and r.terminal_id == pending.terminal_id and r.time == pending.tx_time)
    return None


def _counter_now(wallet: Wallet, pending: JournalRecord) -> int | None:
    """The counter a fresh INITIALIZE of 0 fen with the record's key index returns, or None."""
    tid = wallet.psam.terminal_id
    load = pending.tx_type in macs.LOAD_TYPES
    command = (purse_commands.InitializeForLoad(pending.key_index, 0, tid) if load
               else purse_commands.InitializeForPurchase(pending.key_index, 0, tid)).to_apdu()
    answer = wallet.card.transmit(command)
    if not answer.ok:
        return None
    try:
        if load:
            return purse_commands.InitializeForLoadResponse.decode(answer.data).online_seq
        return purse_commands.InitializeForPurchaseResponse.decode(answer.data).offline_seq
    except FormatError:
        return None


def prove_p2(wallet: Wallet, tx_type: int) -> int:
    """P2 of GET TRANSACTION PROVE for a torn transaction of ``tx_type``."""
    return wallet.composite_prove_p2 if tx_type == macs.TX_CAPP_PURCHASE else tx_type


def _tell_host(host: LoadHost | None, confirmation: LoadConfirmation) -> None:
    """Report a load's outcome *before* the journal records it: a crash in between leaves
    the record pending and the next tap reports again (the host takes the same report
    twice). A host that refuses — it settled that counter value on another terminal's
    report — does not keep the card's word out of the journal."""
    if host is not None:
        with contextlib.suppress(RefusedError):
            host.confirm_load(confirmation)


def _fail(wallet: Wallet, pending: JournalRecord, within: bool, host: LoadHost | None) -> RecoveryOutcome:
    """The money did not move: the record fails (a load's host is told first)."""
    if pending.kind == "load":
        _tell_host(host, LoadConfirmation(pending.app_serial, pending.card_seq, "failed"))
    record = wallet.journal.fail(pending.id, "not_debited" if pending.kind != "load" else "not_credited")
    return RecoveryOutcome(record, False, within)


def recover(wallet: Wallet, pending: JournalRecord, window: timedelta = DEFAULT_WINDOW,
            host: LoadHost | None = None) -> RecoveryOutcome:
    """Resolve one pending record with the card now in the field (the same card): failed,
    recovered or grey when the card's counter, log and proof tell; else the record stays
    pending (``decided`` False). Never guesses from the balance."""
    public = wallet._public()
    if public.app_serial != pending.app_serial:
        raise ValueError("recover() needs the card of the pending record")
    within = wallet.clock.now() - pending.tx_time <= window
    undecided = RecoveryOutcome(pending, False, within, decided=False)
    try:
        log_says = _log_says(pending, wallet.history())
    except (StatusError, FormatError):  # a log the card will not give or that does not parse; a card
        log_says = None  # that left (TransportError) ends the recovery: the record stays pending
    counter = _counter_now(wallet, pending)
    if counter is None or counter < pending.card_seq:
        return undecided
    if counter == pending.card_seq or log_says is False:
        return _fail(wallet, pending, within, host)
    if log_says is None and counter != pending.card_seq + 1:
        return undecided  # moved by several, and the log has forgotten whose the first was
    answer = wallet.card.transmit(purse_commands.GetTransactionProve(prove_p2(wallet, pending.tx_type),
                                                                     purse_commands.prove_seq(pending.card_seq)).to_apdu())
    if answer.sw == SW_MAC_UNAVAILABLE and log_says:  # done, but the card has been used since
        return _grey(wallet, pending, within, host)
    prove = _prove_of(answer)
    if prove is None:
        return undecided
    return _recovered(wallet, pending, prove, within, host)


def _balance_after(pending: JournalRecord) -> int:
    sign = 1 if pending.kind == "load" else -1
    return pending.balance_before + sign * pending.amount


def _prove_of(answer: ResponseAPDU) -> purse_commands.ProveResponse | None:
    """GET TRANSACTION PROVE's MAC and TAC, or None when the card did not give them."""
    if not answer.ok:
        return None
    try:
        return purse_commands.ProveResponse.decode(answer.data)
    except FormatError:
        return None


def _grey(wallet: Wallet, pending: JournalRecord, within: bool, host: LoadHost | None) -> RecoveryOutcome:
    """The money moved but the card keeps no proof of it any more: a grey record."""
    if pending.kind == "load":
        _tell_host(host, LoadConfirmation(pending.app_serial, pending.card_seq, "grey"))
    record = wallet.journal.grey(pending.id, balance_after=_balance_after(pending))
    return RecoveryOutcome(record, True, within, TransactionResult.from_record(record))


def _recovered(wallet: Wallet, pending: JournalRecord, prove: purse_commands.ProveResponse, within: bool,
               host: LoadHost | None) -> RecoveryOutcome:
    """The money moved and the card proved it: MAC2 checked while the PSAM's session is open."""
    verified: bool | None = None
    if pending.kind != "load" and wallet.psam.session_open((pending.app_serial, pending.card_seq, pending.tx_type)):
        try:
            wallet.psam.verify_mac2(prove.mac)
            verified = True
        except MacMismatchError:
            verified = False
    if pending.kind == "load":
        _tell_host(host, LoadConfirmation(pending.app_serial, pending.card_seq, "completed", prove.tac))
    record = wallet.journal.recover(pending.id, tac=prove.tac, mac2=prove.mac, balance_after=_balance_after(pending),
                                    mac2_verified=verified)
    return RecoveryOutcome(record, True, within, TransactionResult.from_record(record))


def recover_card(wallet: Wallet, window: timedelta = DEFAULT_WINDOW,
                 host: LoadHost | None = None) -> list[RecoveryOutcome]:
    """Resolve every pending record of the card in the field made at this terminal
    (see :func:`recover`)."""
    public = wallet._public()
    return [
        recover(wallet, p, window, host)
        for p in wallet.journal.pending(public.app_serial)
        if p.terminal_id == wallet.psam.terminal_id
    ]
