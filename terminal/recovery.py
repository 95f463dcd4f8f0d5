"""Torn-transaction recovery (reference §5), decided by the card's counter and
its 0x18 log, never by the balance (a 0-fen metro entry never moves it).

The journal record of a torn transaction is resolved whenever the card comes
back to this terminal: *recovered* (with MAC2 and TAC from GET TRANSACTION
PROVE) if the card's log holds it, *failed* if not. The window (120 s by
default) says whether the re-tap still counts as the interrupted ride.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cardlib.errors import MacMismatchError
from cardlib.loadhost import LoadConfirmation, LoadHost
from cardlib.pboc import purse as P
from terminal.journal import JournalRecord
from terminal.wallet import TransactionResult, Wallet

DEFAULT_WINDOW = timedelta(seconds=120)


@dataclass(frozen=True)
class RecoveryOutcome:
    record: JournalRecord
    happened: bool
    within_window: bool
    result: TransactionResult | None = None


def recover(wallet: Wallet, pending: JournalRecord, window: timedelta = DEFAULT_WINDOW,
            host: LoadHost | None = None) -> RecoveryOutcome:
    """Resolve one pending record with the card now in the field (the same card)."""
    public = wallet._public()
    if public.app_serial != pending.app_serial:
        raise ValueError("recover() needs the card of the pending record")
    within = wallet.clock.now() - pending.tx_time <= window
    happened = any(
        r.seq == pending.card_seq and r.amount == pending.amount and r.tx_type == pending.tx_type
        and r.terminal_id == pending.terminal_id and r.time == pending.tx_time
        for r in wallet.history()
    )
    if not happened:
        record = wallet.journal.fail(pending.id, "not_debited" if pending.kind != "load" else "not_credited")
        if pending.kind == "load" and host is not None:
            host.confirm_load(LoadConfirmation(pending.app_serial, pending.card_seq, "failed"))
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
    record = wallet.journal.recover(pending.id, tac=prove.tac, mac2=prove.mac,
                                    balance_after=pending.balance_before + sign * pending.amount,
                                    mac2_verified=verified)
    if pending.kind == "load" and host is not None:
        host.confirm_load(LoadConfirmation(pending.app_serial, pending.card_seq, "completed", prove.tac))
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
