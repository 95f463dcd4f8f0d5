"""`ykt card`: what is on a social security card; its PIN."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from cardlib.errors import FormatError
from cardlib.iso import read_binary
from cardlib.pboc.files import (
    INDUSTRY_NAMES,
    MANAGEMENT_SFI,
    TRIP_TYPE_NAMES,
    TX_TYPE_NAMES,
    ManagementData,
)
from cli.common import Options, common_options, echo_kv, wait_option
from cli.names import CARD_KIND_NAMES, SEX_NAMES, SSC_CARD_TYPE_NAMES, named, yuan
from cli.session import open_channel
from cli.target_info import reader_target, target_lines
from terminal import auth
from terminal.wallet import Wallet


@click.group()
def card() -> None:
    """Read the card: identity, purse, history, PIN."""


def _reading_wallet(channel: object, opts: Options) -> Wallet:
    return Wallet.reader(channel, opts.clock())  # type: ignore[arg-type]


@card.command()
@wait_option
@common_options("reader", "json", "trace")
def info(opts: Options) -> None:
    """Issuer and holder data (EF05/EF06), purse data (0x15/0x17) and balance; over a PN532 the
    card's UID, ATQA, SAK and ATS as nfc-list shows them. Names where the card has codes (--json:
    the codes, and the names beside them)."""
    from cardlib.pboc.files import LOCAL_CARD_TYPES

    channel = open_channel(opts)
    target = reader_target(channel.reader)
    try:
        identity: dict[str, object] = {"card_kind": "ssc", **auth.read_card(channel).to_json()}
    except auth.NoSsseError:
        identity = {"card_kind": "tunion"}
    wallet = _reading_wallet(channel, opts)
    public = wallet.select()
    if identity["card_kind"] == "tunion":  # its type is 0x15 byte 28
        identity["card_type"] = public.local_card_type
        identity["card_type_name"] = LOCAL_CARD_TYPES.get(public.local_card_type, "unknown")
    else:
        identity["card_type_name"] = SSC_CARD_TYPE_NAMES.get(_int(identity["card_type"]), "unknown")
        identity["sex_name"] = SEX_NAMES.get(_int(identity["sex"]), "unknown")
    management = ManagementData.decode(channel.send(read_binary(0, ManagementData.SIZE, sfi=MANAGEMENT_SFI)).data)
    out = {
        **identity,
        "app_serial": public.app_serial.hex().upper(),
        "issuer_id": public.issuer_id.hex().upper(),
        "purse_valid_from": public.valid_from.isoformat(),
        "purse_valid_until": public.valid_until.isoformat(),
        "city": management.province.hex().upper() + management.city.hex().upper(),
        "balance": wallet.balance(),
    }
    if target is not None:
        out["target"] = target
    if opts.json:
        opts.emit(out)
        return
    echo_kv(_info_rows(out))
    if target is not None:
        click.echo("\n".join(target_lines(target)))


def _int(value: object) -> int:
    return value if isinstance(value, int) else -1


def _info_rows(out: dict[str, object]) -> list[tuple[str, str]]:
    """The person's view of ``card info``: names for codes, money with its unit."""
    rows = []
    for key, value in out.items():
        if key.endswith("_name") or key == "target":
            continue
        if key == "card_kind":
            text = CARD_KIND_NAMES.get(str(value), str(value))
        elif key in ("card_type", "sex") and isinstance(value, int):
            text = f"{out[key + '_name']} ({value:02X})"
        elif key == "balance" and isinstance(value, int):
            text = yuan(value)
        else:
            text = str(value)
        rows.append((key, text))
    return rows


@card.command()
@wait_option
@common_options("reader", "json", "trace")
def history(opts: Options) -> None:
    """The purse's transaction log (0x18) and transit records (0x1E), types named."""
    channel = open_channel(opts)
    wallet = _reading_wallet(channel, opts)
    log = wallet.history()
    trips = wallet.trips()
    if opts.json:
        opts.emit({
            "transactions": [{"seq": r.seq, "amount": r.amount, "type": f"{r.tx_type:02X}",
                              "type_name": TX_TYPE_NAMES.get(r.tx_type, "unknown"),
                              "terminal_id": r.terminal_id.hex().upper(), "time": r.time.isoformat()} for r in log],
            "trips": [{"type": f"{t.record_type:02X}", "type_name": TRIP_TYPE_NAMES.get(t.record_type, "unknown"),
                       "industry": f"{t.industry:02X}", "industry_name": INDUSTRY_NAMES.get(t.industry, "unknown"),
                       "amount": t.amount, "balance": t.balance, "time": t.time.isoformat(),
                       "station": t.station.hex().upper(), "terminal": t.terminal.hex().upper()} for t in trips],
        })
        return
    for r in log:
        click.echo(f"{r.time:%Y-%m-%d %H:%M:%S}  seq {r.seq:5d}  {named(TX_TYPE_NAMES, r.tx_type):<14}"
                   f"  {yuan(r.amount):>20}  terminal {r.terminal_id.hex().upper()}")
    if not log:
        click.echo("no transactions")
    for t in trips:
        click.echo(f"{t.time:%Y-%m-%d %H:%M:%S}  trip  {named(TRIP_TYPE_NAMES, t.record_type):<16}"
                   f"  {named(INDUSTRY_NAMES, t.industry):<10}  {yuan(t.amount):>20}  balance {yuan(t.balance)}"
                   f"  station {t.station.hex().upper()}")


@card.group()
def pin() -> None:
    """Verify, change or unblock the PIN (never echoed or logged)."""


def _pin(value: str | None, prompt: str, option: str, twice: bool = False) -> str:
    """The value given, else asked without echo on the terminal (``twice`` for a new PIN); with no
    terminal to ask on, one line saying which option gives it (getpass would read stdin aloud)."""
    if value is not None:
        return value
    if not _has_terminal():
        raise FormatError(f"no terminal to ask for the {prompt} on: give it with {option}")
    text: str = click.prompt(prompt, hide_input=True, err=True,
                             confirmation_prompt=f"{prompt} again" if twice else False)
    return text


def _has_terminal() -> bool:
    """Whether a prompt can be answered without echo: a controlling terminal (getpass asks there)."""
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return sys.stdin.isatty()


def _done(opts: Options, action: str, text: str) -> None:
    if opts.json:
        opts.emit({"pin": action, "ok": True})
    else:
        click.echo(text)


@contextlib.contextmanager
def _json_failure(opts: Options, action: str) -> Iterator[None]:
    """With --json a refused PIN or PUK is also a JSON answer (the tries left); the error line and
    the exit code stay."""
    try:
        yield
    except auth.PinError as exc:
        if opts.json:
            opts.emit({"pin": action, "ok": False, "error": str(exc), "tries_left": exc.tries_left})
        raise


@pin.command()
@click.option("--pin", "pin_", help="The PIN (prompted without echo when omitted).")
@wait_option
@common_options("reader", "json", "trace")
def verify(pin_: str | None, opts: Options) -> None:
    """Verify the PIN; exit 4 with the tries left when wrong."""
    channel = open_channel(opts)
    with _json_failure(opts, "verify"):
        auth.verify_pin(channel, _pin(pin_, "PIN", "--pin"))
    _done(opts, "verify", "PIN verified")


@pin.command()
@click.option("--old", help="Current PIN.")
@click.option("--new", help="New PIN.")
@wait_option
@common_options("reader", "json", "trace")
def change(old: str | None, new: str | None, opts: Options) -> None:
    """Change the PIN of the SSSE application; exit 4 with the tries left when the old one is wrong."""
    channel = open_channel(opts)
    with _json_failure(opts, "change"):
        auth.change_pin(channel, _pin(old, "current PIN", "--old"), _pin(new, "new PIN", "--new", twice=True))
    _done(opts, "change", "PIN changed")


@pin.command()
@click.option("--puk", help="Unblocking key.")
@click.option("--new", help="New PIN.")
@wait_option
@common_options("reader", "json", "trace")
def unblock(puk: str | None, new: str | None, opts: Options) -> None:
    """Unblock the PIN with the PUK and set a new one; exit 4 when the PUK is wrong."""
    channel = open_channel(opts)
    with _json_failure(opts, "unblock"):
        auth.unblock_pin(channel, _pin(puk, "PUK", "--puk"), _pin(new, "new PIN", "--new", twice=True))
    _done(opts, "unblock", "PIN unblocked")
