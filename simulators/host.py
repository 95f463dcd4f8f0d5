"""The issuer's online top-up host for the test issuer (implements cardlib.loadhost).

Checks load MAC1, issues MAC2, and keeps a ledger of every MAC2 issued by
(card, online sequence): a pending one is settled only when the terminal
reports what the card said (reference §5). The ledger is a SQLite file when
a path is given.
"""

from __future__ import annotations

import sqlite3
import threading

from cardlib.crypto import Algorithm, constant_time_equal, diversify_levels
from cardlib.errors import MacMismatchError, RefusedError
from cardlib.keys import IssuerKeys, card_factor, default_issuer, purse_factors
from cardlib.loadhost import LoadAuthorization, LoadConfirmation, LoadRequest
from cardlib.pboc import macs


class SimulatedLoadHost:
    def __init__(self, issuer: IssuerKeys | None = None, ledger_path: str | None = None) -> None:
        self.issuer = issuer or default_issuer()
        self._db = sqlite3.connect(ledger_path or ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS ledger (app_serial TEXT, online_seq INTEGER, amount INTEGER,"
                " terminal TEXT, mac2 TEXT, state TEXT, tac TEXT, PRIMARY KEY (app_serial, online_seq))"
            )

    def authorize_load(self, request: LoadRequest) -> LoadAuthorization:
        alg = Algorithm.from_alg_id(request.alg_id)
        card_factor(request.app_serial)
        dlk = diversify_levels(self.issuer.mlk.key, purse_factors(self.issuer.issuer_id, request.app_serial), alg)
        seslk = macs.load_session_key(dlk, request.random, request.online_seq, alg)
        mac1 = macs.load_mac1(seslk, request.old_balance, request.amount, request.tx_type, request.terminal_id, alg)
        if not constant_time_equal(mac1, request.mac1):
            raise MacMismatchError("load refused: the card's MAC1 does not verify")
        serial = request.app_serial.hex().upper()
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT amount, state FROM ledger WHERE app_serial=? AND online_seq=?", (serial, request.online_seq)
            ).fetchone()
            if row is not None and (row[0] != request.amount or row[1] == "completed"):
                raise RefusedError(
                    f"load refused: online seq {request.online_seq} of this card was already authorised"
                )
            date, time = macs.bcd_datetime(request.time)
            mac2 = macs.load_mac2(seslk, request.amount, request.tx_type, request.terminal_id, date, time, alg)
            self._db.execute(
                "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, 'pending', NULL)",
                (serial, request.online_seq, request.amount, request.terminal_id.hex().upper(), mac2.hex().upper()),
            )
        return LoadAuthorization(mac2, date, time)

    def confirm_load(self, confirmation: LoadConfirmation) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE ledger SET state=?, tac=? WHERE app_serial=? AND online_seq=? AND state='pending'",
                (confirmation.outcome, confirmation.tac.hex().upper() if confirmation.tac else None,
                 confirmation.app_serial.hex().upper(), confirmation.online_seq),
            )

    def ledger(self) -> list[tuple[str, int, int, str]]:
        with self._lock:
            return list(self._db.execute("SELECT app_serial, online_seq, amount, state FROM ledger ORDER BY 1, 2"))
