"""Parts of the station tests: issuers, PSAMs, cards and the money check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.keys import IssuerKeys, default_issuer, verify_tac
from cardlib.keystore import builtin_store
from cardlib.readers.base import Reader
from cardlib.readers.pyhost import HostedReader
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import SocialSecurityCard
from terminal.journal import Journal
from terminal.wallet import Wallet

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=BEIJING)
BUS = {"terminal": {"role": "bus_validator", "line": "K1"}, "fares": {"flat": 200}}
METRO_ENTRY = {"terminal": {"role": "metro_gate", "station": "S01"}, "gate": {"direction": "entry"},
               "fares": {"bands": [[6, 300], [12, 400]], "max_fare": 800, "stations": {"S01": 0, "S05": 8.5}}}


def city_a() -> IssuerKeys:
    return default_issuer()


def city_b() -> IssuerKeys:
    return next(i for i in builtin_store().issuers if i.issuer_id != city_a().issuer_id)


def local_card(seed: int, balance: int = 5000) -> SocialSecurityCard:
    return issue_card(CardProfile(balance=balance), seed=seed)


def visitor_card(seed: int, balance: int = 5000) -> SocialSecurityCard:
    """An interoperable card of city B: its own purchase key, and the interoperable one under the
    T-Union index."""
    return issue_card(CardProfile(balance=balance, region="330100", interoperable=True), issuer=city_b(), seed=seed)


def stranger_card(seed: int, balance: int = 5000) -> SocialSecurityCard:
    """A card of city B that is not interoperable: no PSAM of a city A station serves it."""
    return issue_card(CardProfile(balance=balance, region="330100"), issuer=city_b(), seed=seed)


def station_table(psams: list[tuple[str, str, str]], lanes: list[tuple[str, str, dict[str, Any]]],
                  timeout: float = 0.3, strategy: str = "first") -> dict[str, Any]:
    return {"station": {"name": "S01"}, "pool": {"strategy": strategy, "timeout_seconds": timeout,
                                                  "retry_seconds": 0.05},
            "psam": [{"name": n, "reader": u, "kind": k} for n, u, k in psams],
            "lane": [{"name": n, "reader": u, "settings": s} for n, u, s in lanes]}


def balance(card: SocialSecurityCard) -> int:
    """The card's balance as a terminal reads it (GET BALANCE over a fresh in-process reader)."""
    reader: Reader = HostedReader([card])
    reader.connect()
    try:
        return Wallet.reader(Channel(reader), Clock.fixed(NOON)).balance()
    finally:
        reader.close()


def assert_card_equals_journal(card: SocialSecurityCard, start: int, journal: Journal) -> int:
    """The card's balance is its start less every settled record of it, to the fen; every settled
    record's TAC verifies under its issuer's keys. Returns the number of settled records."""
    serial = _serial(card)
    settled = [r for state in ("completed", "recovered", "grey") for r in journal.records(state, serial)]
    spent = sum(r.amount for r in settled)
    assert card.purse.state.balance == start - spent, (card.purse.state.balance, start, spent)
    for r in settled:
        assert r.tac is not None
        issuer = builtin_store().get(r.issuer_id or b"", r.key_version)
        assert verify_tac(issuer, r.app_serial, r.tac_fields(), r.tac), f"record {r.id}: TAC"
    assert not journal.pending(serial), "a pending record is left"
    return len(settled)


def _serial(card: SocialSecurityCard) -> bytes:
    from cardlib.pboc.files import PUBLIC_SFI, PublicData
    from simulators.filesystem import DedicatedFile, TransparentEF

    pdf = card.fs.mf.children[-1]
    assert isinstance(pdf, DedicatedFile)
    ef = pdf.ef_by_sfi(PUBLIC_SFI)
    assert isinstance(ef, TransparentEF)
    return PublicData.decode(bytes(ef.data)).app_serial
