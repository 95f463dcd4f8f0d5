"""Torn-transaction recovery (reference §5), decided by the card's counter and
its 0x18 log, never by the balance (a 0-fen metro entry never moves it).

The journal record of a torn transaction is resolved whenever the card comes
back to this terminal: *recovered* (with MAC2 and TAC from GET TRANSACTION
PROVE) if the card's log holds it, *failed* if the log shows it did not
happen (its counter value used by another transaction, or the log reaching
back past it, or GET TRANSACTION PROVE answering 6A83: the card never
reached that counter value). The log keeps the last ten transactions only:
once ten or more newer ones have pushed the counter value out, the card can
no longer say, and the record stays pending (``decided`` False) rather than
be guessed — failing a debit the card made would lose the money. The window
(120 s by default) says whether the re-tap still counts as the interrupted
ride.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from cardlib import sw as SW
from cardlib.errors import MacMismatchError, RefusedError
from cardlib.loadhost import LoadConfirmation, LoadHost
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from cardlib.pboc.files import TransactionRecord
from terminal.journal import JournalRecord
from terminal.wallet import TransactionResult, Wallet

DEFAULT_WINDOW = timedelta(seconds=120)
LOG_DEPTH = 10  # the 0x18 log keeps the last ten transactions (reference §1)


@dataclass(frozen=True)
class RecoveryOutcome:
    record: JournalRecord
    happened: bool
    within_window: bool
    result: TransactionResult | None = None
    decided: bool = True  # False: the card's log no longer reaches back; the record stays pending


def _happened(pending: JournalRecord, log: list[TransactionRecord]) -> bool | None:
    """Whether the card made the pending transaction, by its 0x18 log (newest first);
    None when the log no longer reaches back to the pending counter value."""
    load = pending.tx_type in macs.LOAD_TYPES
    same_counter = [r for r in log if (r.tx_type in macs.LOAD_TYPES) == load]
    for r in same_counter:
        if r.seq == pending.card_seq:  # that counter value was used: by this transaction or another
            return (r.amount == pending.amount and r.tx_type == pending.tx_type
                    and r.terminal_id == pending.terminal_id and r.time == pending.tx_time)
    if len(log) < LOG_DEPTH or any(r.seq < pending.card_seq for r in same_counter):
        return False  # the log reaches back past it
    return None


def _tell_host(host: LoadHost | None, confirmation: LoadConfirmation) -> None:
    """Report a load's outcome *before* the journal records it: a crash in between leaves
    the record pending and the next tap reports again (the host takes the same report
    twice). A host that refuses — it settled that counter value on another terminal's
    report — does not keep the card's word out of the journal."""
    if host is not None:
        with contextlib.suppress(RefusedError):
            host.confirm_load(confirmation)


def recover(wallet: Wallet, pending: JournalRecord, window: timedelta = DEFAULT_WINDOW,
            host: LoadHost | None = None) -> RecoveryOutcome:
    """Resolve one pending record with the card now in the field (the same card)."""
    public = wallet._public()
    if public.app_serial != pending.app_serial:
        raise ValueError("recover() needs the card of the pending record")
    within = wallet.clock.now() - pending.tx_time <= window
    happened = _happened(pending, wallet.history())
    if happened is None:  # the log has forgotten; the card still knows if it ever reached that counter value
        answer = wallet.card.transmit(P.GetTransactionProve(pending.tx_type, pending.card_seq).to_apdu())
        if answer.sw != SW.SW_RECORD_NOT_FOUND:
            return RecoveryOutcome(pending, False, within, decided=False)
        happened = False
    if not happened:
        if pending.kind == "load":
            _tell_host(host, LoadConfirmation(pending.app_serial, pending.card_seq, "failed"))
        record = wallet.journal.fail(pending.id, "not_debited" if pending.kind != "load" else "not_credited")
        return RecoveryOutcome(record, False, within)
    prove = P.ProveResponse.decode(
        wallet.card.send(P.GetTransactionProve(pending.tx_type, pending.card_seq).to_apdu(),
                         what="GET TRANSACTION PROVE").data)
    verified: bool | None = None
    if pending.kind != "load" and wallet.psam.session_open((pending.app_serial, pending.card_seq, pending.tx_type)):
        try:
            wallet.psam.verify_mac2(prove.mac)
            verified = True
        except MacMismatchError:
            verified = False
    sign = 1 if pending.kind == "load" else -1
    if pending.kind == "load":
        _tell_host(host, LoadConfirmation(pending.app_serial, pending.card_seq, "completed", prove.tac))
    record = wallet.journal.recover(pending.id, tac=prove.tac, mac2=prove.mac,
                                    balance_after=pending.balance_before + sign * pending.amount,
                                    mac2_verified=verified)
    return RecoveryOutcome(record, True, within, TransactionResult.from_record(record))


def recover_card(wallet: Wallet, window: timedelta = DEFAULT_WINDOW,
                 host: LoadHost | None = None) -> list[RecoveryOutcome]:
    """Resolve every pending record of the card in the field made at this terminal."""
    public = wallet._public()
    return [
        recover(wallet, p, window, host)
        for p in wallet.journal.pending(public.app_serial)
        if p.terminal_id == wallet.psam.terminal_id
    ]
