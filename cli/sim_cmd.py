"""`ykt sim`: issue virtual cards and PSAMs, show a card image."""

from __future__ import annotations

import itertools
import secrets
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import click

from cardlib.errors import FormatError
from cardlib.keys import load_issuer_keys
from cardlib.safefiles import GUARDED, check_output
from cardlib.ssse.files import CARD_TYPES
from cli.common import Options, common_options


def _date(text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FormatError(f"{what}: expected YYYY-MM-DD, got {text!r}") from None


@click.group()
def sim() -> None:
    """Virtual cards: issue, show, serve; a simulated day of terminal batches."""


@sim.command()
@click.option("--out", "out", required=True, type=click.Path(), help="Card image file (a folder with --count).")
@click.option("--name", help="Holder's name (Chinese characters welcome).")
@click.option("--birth-date", help="YYYY-MM-DD.")
@click.option("--card-type", default="adult", show_default=True,
              type=click.Choice(list(CARD_TYPES)))
@click.option("--region", default="330300", show_default=True, help="6-digit region code of the issuing city.")
@click.option("--balance", default=5000, show_default=True, type=int, help="Purse balance in fen.")
@click.option("--valid-until", help="Expiry YYYY-MM-DD (card and purse).")
@click.option("--algorithm", default="3des", show_default=True, type=click.Choice(["3des", "sm4"]))
@click.option("--pin", default="123456", show_default=True, help="6-digit PIN.")
@click.option("--seed", type=int, help="Varies serials, holder and randomness (never the keys); the same seed "
              "gives the same card. Without it every card is new: a random seed, shown with --json.")
@click.option("--count", default=1, type=int, help="Issue this many cards into the --out folder.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), help="Another issuer's key file.")
@click.option("--force", is_flag=True, help="Replace an existing card image (its balance is lost).")
@click.option("--kind", "kind", default="ssc", show_default=True, type=click.Choice(["ssc", "tunion"]),
              help="ssc: a social security card; tunion: a plain T-Union transit card (the purse alone; "
                   "card type adult, elder or disabled).")
@click.option("--interoperable", is_flag=True,
              help="A card of the interoperable (T-Union) network: it holds the TEST ONLY interoperable purchase "
                   "key beside its issuer's and 0x17 says so, so another city's station takes it (docs/station.md).")
@common_options("json")
def new(out: str, name: str | None, birth_date: str | None, card_type: str, region: str, balance: int,
        valid_until: str | None, algorithm: str, pin: str, seed: int | None, count: int,
        issuer_keys: str | None, force: bool, kind: str, interoperable: bool, opts: Options) -> None:
    """Personalise new virtual social security cards (or plain T-Union cards)."""
    from simulators.image import save_image
    from simulators.issuer import CardProfile, issue_card

    issuer = load_issuer_keys(issuer_keys)
    kwargs = {"name": name, "birth_date": _date(birth_date, "--birth-date"), "card_type": card_type,
              "region": region, "balance": balance, "algorithm": algorithm, "pin": pin, "kind": kind,
              "interoperable": interoperable}
    until = _date(valid_until, "--valid-until")
    if until is not None:
        kwargs["valid_until"] = until
    profile = CardProfile(**kwargs)  # type: ignore[arg-type]
    if count < 1:
        raise FormatError("--count must be at least 1")
    first = 0 if seed is None else seed
    paths = [Path(out)] if count == 1 else [Path(out) / f"card-{first + i:05d}.json" for i in range(count)]
    if count > 1:
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FormatError(f"--out {out}: cannot make the folder: {exc.strerror}") from None
    for path in paths:  # every one before the first is written: no half-issued batch of cards
        check_output(path, "card image", force=force, guard=GUARDED)
    issued = []
    err = sys.stderr
    hidden = count == 1 or not opts.progress()
    seeds = _seeds(seed)
    serials: set[bytes] = set()
    with click.progressbar(paths, label="issuing", hidden=hidden, file=err) as bar:
        for path in bar:
            card_seed = next(seeds)
            card = issue_card(profile, issuer, card_seed)
            while card.app_serial in serials:  # two seeds may draw one serial: a batch never holds it twice
                card_seed = next(seeds)
                card = issue_card(profile, issuer, card_seed)
            serials.add(card.app_serial)
            save_image(card, path)
            issued.append({"file": str(path), "app_serial": card.app_serial.hex().upper(), "balance": card.balance,
                           "seed": card_seed})
    if opts.json:
        opts.emit(issued if count > 1 else issued[0])
    else:
        for item in issued:
            click.echo(f"{item['file']}: app serial {item['app_serial']}, balance {item['balance']} fen")


def _seeds(seed: int | None) -> Iterator[int]:
    """``seed``, ``seed + 1``, … as given; without one, random seeds of 63 bits, so that cards issued
    without ``--seed`` do not repeat one another's serials (as every run from seed 0 did)."""
    if seed is not None:
        yield from itertools.count(seed)
    while True:
        yield secrets.randbits(63)


@sim.command()
@click.option("--out", "out", required=True, type=click.Path())
@click.option("--terminal-id", default="000000000001", show_default=True, help="6-byte terminal number, hex.")
@click.option("--seed", default=0, type=int)
@click.option("--issuer-keys", type=click.Path(dir_okay=False))
@click.option("--kind", "kind", default="local", show_default=True, type=click.Choice(["local", "tunion"]),
              help="local: the issuer's purchase master; tunion: a T-Union PSAM of the same operator, holding the "
                   "TEST ONLY interoperable master under its key index (docs/station.md).")
@click.option("--force", is_flag=True, help="Replace an existing card image.")
@common_options("json")
def psam(out: str, terminal_id: str, seed: int, issuer_keys: str | None, kind: str, force: bool,
         opts: Options) -> None:
    """Make a virtual PSAM of the (test) issuer."""
    from cardlib.keystore import PsamKind
    from cli.common import parse_hex
    from simulators.image import save_image
    from simulators.psam import make_psam
    from simulators.station import make_station_psam

    check_output(out, "card image", force=force, guard=GUARDED)
    issuer, tid = load_issuer_keys(issuer_keys), parse_hex(terminal_id, "--terminal-id")
    card = make_psam(issuer, tid, seed) if kind == "local" else make_station_psam(PsamKind.TUNION, issuer, tid, seed)
    save_image(card, out)
    number, index = card.state.terminal_id.hex().upper(), card.state.key_index
    if opts.json:
        opts.emit({"file": out, "terminal_id": number, "kind": kind, "key_index": index, "test": card.test})
    else:
        what = "PSAM" if kind == "local" else f"T-Union PSAM (key index {index})"
        click.echo(f"{out}: {what}, terminal {number}" + (" (TEST ONLY issuer)" if card.test else ""))


@sim.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--show-secrets", is_flag=True, help="Show keys, PIN and PUK (masked by default).")
@common_options("json")
def show(path: str, show_secrets: bool, opts: Options) -> None:
    """Show a card image (keys masked unless --show-secrets)."""
    from simulators.image import card_from_json, mask_image, read_image

    obj = read_image(path)
    card = card_from_json(obj)  # validates
    shown = obj if show_secrets else mask_image(obj)
    shown = {k: v for k, v in shown.items() if k != "rng"}
    if opts.json:
        opts.emit(shown)
        return
    for label, value in _summary(card, shown):
        click.echo(f"{label:<16}{value}")


def _summary(card: object, shown: dict[str, Any]) -> list[tuple[str, str]]:
    """Lines for a person: what the card holds, keys as the image shows them (masked or not)."""
    from simulators.psam import PsamCard
    from simulators.ssc import SocialSecurityCard

    keys = shown.get("keys") or shown.get("issuer", {}).get("keys", {})
    key_lines = [(f"key {name}", f"{entry.get('key')} (index {entry.get('index')}, {entry.get('algorithm')})")
                 for name, entry in keys.items() if isinstance(entry, dict)]
    if isinstance(card, PsamCard):
        return [
            ("kind", "PSAM" + (" (TEST ONLY issuer)" if card.test else "")),
            ("issuer", card.issuer.name),
            ("terminal", card.state.terminal_id.hex().upper()),
            ("terminal seq", str(card.state.terminal_seq)),
            *key_lines,
        ]
    assert isinstance(card, SocialSecurityCard)
    purse = card.purse.state
    purse_lines = [
        ("app serial", card.app_serial.hex().upper()),
        ("balance", f"{purse.balance} fen"),
        ("online seq", str(purse.online_seq)),
        ("offline seq", str(purse.offline_seq)),
        ("purse", purse.blocked or "usable"),
        ("algorithm", str(keys.get("dpk", {}).get("algorithm"))),
    ]
    if card.card_kind == "tunion":
        return [("kind", "T-Union transit card" + (" (TEST ONLY issuer)" if card.meta.get("test_only") else "")),
                ("issuer", str(card.meta.get("issuer", "?"))),
                ("card type", str(card.meta.get("card_type", "?"))), *purse_lines, *key_lines]
    issuer, holder = card.issuer_records(), card.holder_records()
    ssse = shown.get("ssse", {})
    types = {v: k for k, v in CARD_TYPES.items()}
    return [
        ("kind", "social security card" + (" (TEST ONLY issuer)" if card.meta.get("test_only") else "")),
        ("issuer", str(card.meta.get("issuer", "?"))),
        ("card id", issuer.card_id.hex().upper()),
        ("card number", issuer.card_number),
        ("card type", types.get(issuer.card_type, f"{issuer.card_type:02X}")),
        ("region", issuer.region),
        ("valid", f"{issuer.issue_date} .. {issuer.expiry_date}"),
        ("name", holder.name),
        ("ssn", holder.ssn),
        ("sex", {1: "male", 2: "female"}.get(holder.sex, str(holder.sex))),
        ("birth date", str(holder.birth_date)),
        *purse_lines,
        ("pin", f"{ssse.get('pin')} ({card.ssse.state.pin_tries} tries left)"),
        ("puk", f"{ssse.get('puk')} ({card.ssse.state.puk_tries} tries left)"),
        *key_lines,
    ]


try:  # `ykt sim serve` lives with the bridges
    from cli.serve_cmd import serve as _serve

    sim.add_command(_serve)
except ImportError:  # pragma: no cover
    pass


@sim.command("day")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the day into.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--transactions", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--cards", type=click.IntRange(1), help="Cards (default: 30 % of the transactions).")
@click.option("--day", default="2026-11-28", show_default=True, help="The day (Beijing).")
@click.option("--clean", is_flag=True, help="No injected faults.")
@common_options("json")
def day_(out: str, seed: int, transactions: int, cards: int | None, day: str, clean: bool, opts: Options) -> None:
    """A city's day of TEST ONLY terminal batches with known faults (manifest.json), to clear."""
    from clearing.generate import Faults, generate

    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise FormatError(f"--day {day!r}: expected YYYY-MM-DD") from None
    made = generate(out, seed=seed, transactions=transactions, cards=cards, faults=Faults() if clean else None,
                    day=when)
    if opts.json:
        opts.emit(made.__dict__)
    else:
        click.echo(f"{made.transactions} transaction(s) of {made.cards} card(s) on {made.terminals} terminal(s):"
                   f" {made.batches} batch file(s) in {out}/batches; faults {made.faults}")
