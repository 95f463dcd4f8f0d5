"""The load-host interface: what a top-up terminal asks of the issuer's host.

The terminal calls it; :mod:`simulators.host` implements it for the test
issuer. A MAC2 is bound to the card's session random and online sequence, so
it cannot credit twice (PBOC/JR/T 0025 e-purse load: MAC2 over the session's
inputs; the ledger is the project's profile, docs/protocol.md "Load host").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class LoadRequest:
    app_serial: bytes
    amount: int
    terminal_id: bytes
    tx_type: int
    online_seq: int
    old_balance: int
    random: bytes
    key_version: int
    key_index: int
    alg_id: int
    mac1: bytes
    time: datetime


@dataclass(frozen=True)
class LoadAuthorization:
    mac2: bytes
    date: bytes
    time: bytes


@dataclass(frozen=True)
class LoadConfirmation:
    app_serial: bytes
    online_seq: int
    outcome: str  # "completed" | "failed" | "grey" (credited; the card keeps no proof of it any more)
    tac: bytes | None = None


class LoadHost(Protocol):
    def authorize_load(self, request: LoadRequest) -> LoadAuthorization:
        """Check MAC1 (MacMismatchError on a forgery) and issue MAC2."""
        ...

    def confirm_load(self, confirmation: LoadConfirmation) -> None:
        """Settle an issued MAC2 with what the card says."""
        ...
