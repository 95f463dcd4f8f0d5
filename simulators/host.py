"""The issuer's online top-up host for the test issuer (implements cardlib.loadhost).

Checks load MAC1, issues MAC2, and keeps a ledger of every MAC2 issued by
(card, online sequence): a pending one is settled only when the terminal
reports what the card said (the project's profile). The ledger is a SQLite file when
a path is given, so it survives the host's restart.

Rules of the ledger:

- a (card, online seq) is authorised for one amount only: asking again with
  another amount is refused while the first is pending or completed (a MAC2
  is bound to its session's random, but the host does not hand out two
  different credits for the same counter value);
- asking again with the same amount (a new session of the same counter,
  after a lost answer) issues a fresh MAC2 for the new random;
- a confirmation settles a pending entry once; "failed" frees the counter
  value for a new authorisation, "completed" closes it for good.
"""

from __future__ import annotations

import sqlite3
import threading

from cardlib.crypto import Algorithm, constant_time_equal, diversify_levels
from cardlib.errors import FormatError, MacMismatchError, RefusedError
from cardlib.keys import IssuerKeys, default_issuer, purse_factors
from cardlib.loadhost import LoadAuthorization, LoadConfirmation, LoadRequest
from cardlib.pboc import macs

OUTCOMES = ("completed", "failed", "grey")  # grey: credited, the proof gone (no TAC)


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

    def close(self) -> None:
        self._db.close()

    def _check(self, request: LoadRequest) -> tuple[bytes, Algorithm]:
        """The load session key, once the request is well formed and its MAC1 verifies."""
        if request.tx_type not in macs.LOAD_TYPES:
            raise FormatError(f"load refused: transaction type {request.tx_type:02X} is not a load")
        if request.amount <= 0:
            raise FormatError(f"load refused: amount {request.amount} fen")
        if request.key_index != self.issuer.mlk.index:
            raise RefusedError(f"load refused: key index {request.key_index} is not the issuer's load key")
        alg = Algorithm.from_alg_id(request.alg_id)
        dlk = diversify_levels(self.issuer.mlk.key, purse_factors(self.issuer.issuer_id, request.app_serial), alg)
        seslk = macs.load_session_key(dlk, request.random, request.online_seq, alg)
        # the balance as its 4 wire bytes: a purse in overdraft sends it in two's complement
        old_balance = request.old_balance & 0xFFFFFFFF
        mac1 = macs.load_mac1(seslk, old_balance, request.amount, request.tx_type, request.terminal_id, alg)
        if not constant_time_equal(mac1, request.mac1):
            raise MacMismatchError("load refused: the card's MAC1 does not verify")
        return seslk, alg

    def authorize_load(self, request: LoadRequest) -> LoadAuthorization:
        seslk, alg = self._check(request)
        serial = request.app_serial.hex().upper()
        date, time = macs.bcd_datetime(request.time)
        mac2 = macs.load_mac2(seslk, request.amount, request.tx_type, request.terminal_id, date, time, alg)
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT amount, state FROM ledger WHERE app_serial=? AND online_seq=?", (serial, request.online_seq)
            ).fetchone()
            if row is not None and row[1] == "completed":
                raise RefusedError(f"load refused: online seq {request.online_seq} of this card is already credited")
            if row is not None and row[1] == "pending" and row[0] != request.amount:
                raise RefusedError(
                    f"load refused: online seq {request.online_seq} of this card is pending for {row[0]} fen"
                )
            self._db.execute(
                "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, 'pending', NULL)",
                (serial, request.online_seq, request.amount, request.terminal_id.hex().upper(), mac2.hex().upper()),
            )
        return LoadAuthorization(mac2, date, time)

    def confirm_load(self, confirmation: LoadConfirmation) -> None:
        if confirmation.outcome not in OUTCOMES:
            raise FormatError(f"load confirmation: outcome {confirmation.outcome!r}, expected one of {OUTCOMES}")
        if confirmation.outcome == "completed" and (confirmation.tac is None or len(confirmation.tac) != 4):
            raise FormatError("load confirmation: a completed load carries the card's 4-byte TAC")
        serial = confirmation.app_serial.hex().upper()
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT state FROM ledger WHERE app_serial=? AND online_seq=?", (serial, confirmation.online_seq)
            ).fetchone()
            if row is None:
                raise RefusedError(f"load confirmation: no MAC2 was issued for online seq {confirmation.online_seq}")
            if row[0] != "pending":
                if row[0] == confirmation.outcome:
                    return  # the same report twice: already settled
                raise RefusedError(
                    f"load confirmation: online seq {confirmation.online_seq} is already settled as {row[0]}"
                )
            self._db.execute(
                "UPDATE ledger SET state=?, tac=? WHERE app_serial=? AND online_seq=?",
                (confirmation.outcome, confirmation.tac.hex().upper() if confirmation.tac else None,
                 serial, confirmation.online_seq),
            )

    def ledger(self) -> list[tuple[str, int, int, str]]:
        """(app serial hex, online seq, amount, state) of every MAC2 issued."""
        with self._lock:
            return list(self._db.execute("SELECT app_serial, online_seq, amount, state FROM ledger ORDER BY 1, 2"))
