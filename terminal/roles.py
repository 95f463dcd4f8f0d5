"""The terminal application for a configuration's role."""

from __future__ import annotations

from cardlib.clock import Clock
from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.current_denylist import CurrentDenyList
from terminal.denylist import DenyList
from terminal.gate import IdentityGate, MetroGate
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.validator import BusValidator


def make_app(config: TerminalConfig, psam: PsamClient, journal: Journal, clock: Clock,
             denylist: DenyList | CurrentDenyList | None = None, name: str | None = None) -> TerminalApp:
    """The application of ``config.role``: metro gate, identity gate or (any other) bus validator."""
    if config.role == "metro_gate":
        return MetroGate(config, psam, journal, clock, denylist, name)
    if config.role == "identity_gate":
        return IdentityGate(config, psam, journal, clock, denylist, name)
    return BusValidator(config, psam, journal, clock, denylist, name)
