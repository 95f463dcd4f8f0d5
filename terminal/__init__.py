"""yikatong terminal: the applications that take money and open gates (wallet, journal,
PSAM client, the roles and their loop). The names an integrator needs are importable from
here (docs/library.md); they load on first use (cardlib.exports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardlib.exports import lazy_exports

if TYPE_CHECKING:
    from cardlib.clock import Clock as Clock
    from terminal.app import Tap as Tap
    from terminal.app import TerminalApp as TerminalApp
    from terminal.config import TerminalConfig as TerminalConfig
    from terminal.config import load_config as load_config
    from terminal.config import parse_config as parse_config
    from terminal.decision import Decision as Decision
    from terminal.decision import Reason as Reason
    from terminal.denylist import DenyList as DenyList
    from terminal.denylist import build_denylist as build_denylist
    from terminal.gate import IdentityGate as IdentityGate
    from terminal.gate import MetroGate as MetroGate
    from terminal.journal import Journal as Journal
    from terminal.loop import run_loop as run_loop
    from terminal.psam import PsamClient as PsamClient
    from terminal.roles import make_app as make_app
    from terminal.session import open_psam as open_psam
    from terminal.validator import BusValidator as BusValidator
    from terminal.wallet import TornTransactionError as TornTransactionError
    from terminal.wallet import TransactionResult as TransactionResult
    from terminal.wallet import Wallet as Wallet

    __version__: str

_NAMES = {  # each name and the module that defines it
    # paying
    "Wallet": "terminal.wallet", "TransactionResult": "terminal.wallet", "TornTransactionError": "terminal.wallet",
    "Journal": "terminal.journal", "PsamClient": "terminal.psam", "open_psam": "terminal.session",
    # roles and the loop
    "TerminalApp": "terminal.app", "Tap": "terminal.app", "BusValidator": "terminal.validator",
    "MetroGate": "terminal.gate", "IdentityGate": "terminal.gate", "make_app": "terminal.roles",
    "run_loop": "terminal.loop", "Decision": "terminal.decision", "Reason": "terminal.decision",
    # configuration, deny list, time
    "TerminalConfig": "terminal.config", "load_config": "terminal.config", "parse_config": "terminal.config",
    "DenyList": "terminal.denylist", "build_denylist": "terminal.denylist", "Clock": "cardlib.clock",
}
__all__ = ["__version__", *_NAMES]
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
