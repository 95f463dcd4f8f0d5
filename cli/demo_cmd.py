"""`ykt demo`: a day of the social security card on the embedded simulator.

Six virtual cards, six terminals, one morning: a top-up, buses with a
transfer, the metro, a museum, a torn purchase recovered on the next tap, a
deny-listed card blocked, an expired card and two cards tapped together —
then a settlement that balances to the fen with every TAC verified.

``--via pcsc`` serves each card through the vpcd driver of a running pcscd and
reads it with the PC/SC reader; ``--via pn532`` serves it behind the PN532
emulator on a pseudo-terminal and reads it with the PN532 driver. The PSAMs
stay in process (a terminal's SAM slot), the story is the same.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from cardlib.channel import Channel
from cardlib.clock import Clock, parse_time
from cardlib.keys import default_issuer
from cardlib.readers.pyhost import HostedReader
from cardlib.settlement import verify_records
from cli.common import Options, common_options, paint_state
from simulators.faults import TEAR_AFTER, FaultyCard
from simulators.field import FIELD_KINDS, Field, open_field
from simulators.host import SimulatedLoadHost
from simulators.image import load_card, release_card, save_image
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.app import TerminalApp
from terminal.config import parse_config
from terminal.decision import Decision
from terminal.denylist import DenyList, build_denylist
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.roles import make_app
from terminal.wallet import Wallet

START = "2026-11-28T07:30:00+08:00"
VIA_TEXT = {"sim": "the in-process field (sim)",
            "pcsc": "pcscd + vpcd: the PC/SC reader 'Virtual PCD 00 00' (two cards together stay in process)",
            "pn532": "the PN532 driver on a pseudo-terminal, answered by the PN532 emulator"}
T = TypeVar("T")

CARDS: dict[str, CardProfile] = {
    "adult": CardProfile(name="王芳", birth_date=date(1990, 4, 12), region="330300", balance=1000),
    "elder": CardProfile(name="吕庆军", birth_date=date(1958, 3, 2), card_type="elder", region="330300", balance=2000),
    "student": CardProfile(name="陈晓东", birth_date=date(2009, 9, 1), card_type="student", region="330300", balance=3000),
    "visitor": CardProfile(name="孙磊", birth_date=date(1987, 6, 20), region="341800", balance=8000),
    "denied": CardProfile(name="赵勇", birth_date=date(1979, 1, 5), region="330300", balance=5000),
    "expired": CardProfile(name="周静", birth_date=date(1970, 2, 2), region="330300", balance=1500,
                           valid_until=date(2025, 12, 31)),
}

CONCESSIONS = [{"name": "elder free", "min_age": 65, "pay_percent": 0},
               {"name": "student half", "card_type": "student", "pay_percent": 50}]
TERMINALS: dict[str, tuple[str, dict[str, Any]]] = {
    "bus-K101": ("000000000101", {"terminal": {"role": "bus_validator", "name": "bus-K101", "line": "K101"},
                                  "fares": {"flat": 200}, "transfer": {"window_minutes": 90, "discount": 100},
                                  "concessions": CONCESSIONS, "region": {"local": "3303"}}),
    "bus-K202": ("000000000202", {"terminal": {"role": "bus_validator", "name": "bus-K202", "line": "K202"},
                                  "fares": {"flat": 200}, "transfer": {"window_minutes": 90, "discount": 100},
                                  "concessions": CONCESSIONS, "region": {"local": "3303"}}),
    "metro-S01": ("000000000301", {"terminal": {"role": "metro_gate", "name": "metro-S01", "station": "S01"},
                                   "fares": {"bands": [[6, 300], [12, 400], [22, 500]], "max_fare": 800,
                                             "stations": {"S01": 0.0, "S05": 8.5, "S09": 19.6}},
                                   "concessions": CONCESSIONS}),
    "metro-S05": ("000000000305", {"terminal": {"role": "metro_gate", "name": "metro-S05", "station": "S05"},
                                   "fares": {"bands": [[6, 300], [12, 400], [22, 500]], "max_fare": 800,
                                             "stations": {"S01": 0.0, "S05": 8.5, "S09": 19.6}},
                                   "concessions": CONCESSIONS}),
    "museum": ("000000000401", {"terminal": {"role": "identity_gate", "name": "museum"},
                                "gate": {"free_entry_age": 65, "daily_limit": 2},
                                "fares": {"admission": 4000, "admission_visitor": 6000},
                                "region": {"local": "3303", "same_city_treatment": True}}),
}


@dataclass
class Story:
    out: Path
    clock: Clock
    seed: int
    where: Field
    psams: dict[str, PsamClient] = field(default_factory=dict)
    journals: dict[str, Journal] = field(default_factory=dict)
    apps: dict[str, TerminalApp] = field(default_factory=dict)
    taps: list[dict[str, Any]] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    issued: dict[str, int] = field(default_factory=dict)
    serials: dict[str, str] = field(default_factory=dict)

    def card_path(self, who: str) -> Path:
        return self.out / "cards" / f"{who}.json"

    def terminal(self, name: str, terminal_id: str, config: dict[str, Any], deny: DenyList | None) -> None:
        sam = HostedReader([make_psam(terminal_id=bytes.fromhex(terminal_id), seed=self.seed)])
        sam.connect()
        psam = PsamClient(Channel(sam), test=True)
        journal = Journal(self.out / "journals" / f"{name}.db", self.clock)
        self.psams[name], self.journals[name] = psam, journal
        self.apps[name] = make_app(parse_config(config), psam, journal, self.clock, deny, name)

    def tap(self, terminal: str, *who: str, tear_debit: bool = False, note: str = "") -> Decision:
        held = [load_card(self.card_path(w)) for w in who]  # each image held for this tap only
        try:
            cards: list[Any] = [FaultyCard(c).on_ins(0x54, TEAR_AFTER) if tear_debit else c for c in held]
            if len(cards) > 1 and not self.where.holds_several:
                # a PC/SC reader resolves anticollision and shows one card: this tap stays in process
                decision = self.apps[terminal].tap(HostedReader(cards, name=terminal))
                field = "sim"
            else:
                decision = self.present(cards, lambda: self.apps[terminal].tap(self.where.reader))
                field = self.where.kind
        finally:
            for card in held:
                release_card(card)
        self.taps.append({"who": "+".join(who), "note": note, "field": field, **decision.to_json()})
        return decision

    def present(self, cards: list[Any], action: Callable[[], T]) -> T:
        """Cards into the field, ``action``, cards out again."""
        for card in cards:
            self.where.insert(card)
        try:
            return action()
        finally:
            for card in cards:
                self.where.remove(card)

    def advance(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))


def _balance(path: Path) -> int:
    card = load_card(path, persist=False)
    return card.balance  # type: ignore[union-attr]


def run_story(out: Path, seed: int, start: str, via: str = "sim") -> dict[str, Any]:
    field = open_field(via)
    try:
        return _run_story(out, seed, start, field)
    finally:
        field.close()


def _run_story(out: Path, seed: int, start: str, field: Field) -> dict[str, Any]:
    (out / "cards").mkdir(parents=True, exist_ok=True)
    (out / "journals").mkdir(parents=True, exist_ok=True)
    clock = Clock.fixed(parse_time(start))
    story = Story(out, clock, seed, field)
    for i, (who, profile) in enumerate(CARDS.items()):
        card = issue_card(profile, default_issuer(), seed * 100 + i)
        save_image(card, story.card_path(who))
        story.issued[who] = card.balance
        story.serials[who] = card.app_serial.hex().upper()
    deny_path = out / "denylist.bin"
    build_denylist([bytes.fromhex(story.serials["denied"])], deny_path, 1)
    deny = DenyList(deny_path)
    for name, (tid, config) in TERMINALS.items():
        story.terminal(name, tid, config, deny)
    story.terminal("topup", "000000000501", {"terminal": {"role": "bus_validator", "name": "topup"}}, None)

    # 07:30 the adult tops up ¥50 at a top-up point
    host = SimulatedLoadHost(default_issuer())

    def top_up() -> Any:
        field.reader.connect()
        return Wallet(Channel(field.reader), story.psams["topup"], story.journals["topup"], clock).load(5000, host)

    adult = load_card(story.card_path("adult"))
    try:
        load = story.present([adult], top_up)
    finally:
        release_card(adult)
    story.loads.append({"who": "adult", "terminal": "topup", **load.to_json()})
    story.advance(15)
    story.tap("bus-K101", "adult", note="bus, flat fare")
    story.tap("bus-K101", "student", note="bus, student half price")
    story.tap("bus-K101", "elder", note="bus, free for 65+")
    story.advance(1)
    story.tap("bus-K101", "adult", note="tapped again: not charged twice")
    story.advance(24)
    story.tap("bus-K202", "adult", note="transfer within 90 minutes")
    story.advance(10)
    story.tap("metro-S01", "adult", note="metro entry: 0 fen composite purchase")
    story.tap("metro-S01", "adult", "student", note="two cards together")
    story.advance(25)
    story.tap("metro-S05", "adult", note="metro exit: 8.5 km fare")
    story.advance(5)
    torn = story.tap("bus-K202", "visitor", tear_debit=True, note="visitor's card pulled away during the DEBIT")
    story.advance(0.25)
    recovered = story.tap("bus-K202", "visitor", note="re-tap within 120 s: recovered, not charged twice")
    story.advance(3)
    story.tap("bus-K202", "denied", note="deny-listed: refused and purse blocked")
    story.tap("bus-K202", "denied", note="the blocked purse refuses")
    story.advance(80)
    story.tap("museum", "elder", note="museum: free for 65+")
    story.tap("museum", "adult", note="museum: admission from the purse")
    story.tap("museum", "visitor", note="museum: visitor pays the local price")
    story.tap("museum", "expired", note="expired card")

    # settlement: every journal exported and every TAC verified with the issuer's keys
    settlement: dict[str, Any] = {"terminals": [], "count": 0, "debits": 0, "loads": 0, "tacs_verified": 0}
    records: list[dict[str, Any]] = []
    for name, journal in story.journals.items():
        batch = out / "journals" / f"{name}.batch.jsonl"
        with open(batch, "w", encoding="utf-8") as fh:
            header = journal.export_batch(fh, journal.records()[0].terminal_id if journal.records() else None)
        rows = [r.to_json() for r in journal.records() if r.state in ("completed", "recovered")]
        records.extend(rows)
        pending = journal.pending()
        settlement["terminals"].append({"terminal": name, "batch": str(batch), "count": header.count,
                                        "total_amount": header.total_amount, "pending": len(pending)})
    report = verify_records(records, default_issuer())
    settlement["count"] = len(records)
    settlement["debits"] = sum(r["amount"] for r in records if r["type"] != "02")
    settlement["loads"] = sum(r["amount"] for r in records if r["type"] == "02")
    settlement["tacs_verified"] = report.checked - len(report.failed)
    settlement["tacs_failed"] = list(report.failed)
    settlement["transactions"] = [{"terminal": r["terminal_id"], "card": r["app_serial"], "type": r["type"],
                                   "amount": r["amount"], "tac": r["tac"], "state": r["state"]} for r in records]
    balances = {who: _balance(story.card_path(who)) for who in CARDS}
    issued = sum(story.issued.values())
    now_total = sum(balances.values())
    settlement["issued_balance"] = issued
    settlement["final_balance"] = now_total
    settlement["balanced"] = issued + settlement["loads"] - settlement["debits"] == now_total and report.ok
    for j in story.journals.values():
        j.close()
    refusals = [t for t in story.taps if t["decision"] == "closed"]
    return {
        "out_dir": str(out), "seed": seed, "via": field.kind, "cards": {w: {"app_serial": story.serials[w], "balance": balances[w],
                                                       "issued_balance": story.issued[w]} for w in CARDS},
        "loads": story.loads, "taps": story.taps, "refusals": refusals,
        "recovery": {"torn": torn.to_json(), "recovered": recovered.to_json()},
        "settlement": settlement,
    }


def _print(doc: dict[str, Any]) -> None:
    click.echo("yikatong demo — a morning of the social security card (virtual cards, test issuer)")
    click.echo(f"cards read through: {VIA_TEXT[doc['via']]}\n")
    for load in doc["loads"]:
        click.echo(f"{load['time'][11:19]} topup        {load['who']:<8} LOAD  +{load['amount']} fen, "
                   f"balance {load['balance_after']} fen, TAC {load['tac']}")
    for t in doc["taps"]:
        state = paint_state("OPEN  " if t["decision"] == "open" else "CLOSED", t["decision"] == "open")
        bal = f"balance {t['balance']:>5}" if t["balance"] is not None else " " * 13
        click.echo(f"{t['time'][11:19]} {t['terminal']:<12} {t['who']:<15} {state} {t['amount']:>5} fen  {bal}  "
                   f"{t['reason']:<20} {t['text_zh']} / {t['text_en']}  — {t['note']}")
    s = doc["settlement"]
    click.echo("\nsettlement")
    for term in s["terminals"]:
        click.echo(f"  {term['terminal']:<12} {term['count']:>3} record(s) {term['total_amount']:>7} fen  "
                   f"pending {term['pending']}  batch {term['batch']}")
    click.echo(f"  loads {s['loads']} fen, debits {s['debits']} fen, {s['tacs_verified']} TAC(s) verified, "
               f"{len(s['tacs_failed'])} failed")
    click.echo(f"  balances: issued {s['issued_balance']} + loads {s['loads']} - debits {s['debits']} = "
               f"{s['issued_balance'] + s['loads'] - s['debits']}; cards now hold {s['final_balance']} "
               f"→ {'BALANCED' if s['balanced'] else 'NOT BALANCED'}")
    click.echo(f"\ncard images, journals, batches and the deny list are in {doc['out_dir']}")


@click.command()
@click.option("--seed", default=1, type=int, show_default=True, help="Varies the cards (never the keys).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for cards and journals "
              "(default: a new temporary folder).")
@click.option("--via", type=click.Choice(FIELD_KINDS), default="sim", show_default=True,
              help="How the cards reach the terminals: in process, a running pcscd with the vpcd "
              "driver, or the PN532 emulator on a pseudo-terminal.")
@common_options("json", "now")
def demo(seed: int, out_dir: str | None, via: str, opts: Options) -> None:
    """Run the story on the embedded simulator and settle it."""
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="ykt-demo-"))
    if out_dir and any(out.glob("*")):
        from cardlib.errors import FormatError

        raise FormatError(f"{out} is not empty: the demo writes a fresh set of cards and journals")
    doc = run_story(out, seed, opts.now or START, via)
    if opts.json:
        opts.emit(doc)
    else:
        _print(doc)
    if not doc["settlement"]["balanced"]:
        from cardlib.errors import MacMismatchError

        raise MacMismatchError("settlement does not balance")

