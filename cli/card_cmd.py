"""`ykt card`: what is on a social security card; its PIN."""

from __future__ import annotations

import click

from cardlib.iso import read_binary
from cardlib.pboc.files import MANAGEMENT_SFI, ManagementData
from cli.common import Options, common_options, echo_kv, wait_option
from cli.session import open_channel
from terminal import auth
from terminal.wallet import Wallet


@click.group()
def card() -> None:
    """Read the card: identity, purse, history, PIN."""


def _reading_wallet(channel: object, opts: Options) -> Wallet:
    return Wallet.reader(channel, opts.clock())  # type: ignore[arg-type]


@card.command()
@wait_option
@common_options
def info(opts: Options) -> None:
    """Issuer and holder data (EF05/EF06), purse data (0x15/0x17) and balance."""
    channel = open_channel(opts)
    card_info = auth.read_card(channel)
    wallet = _reading_wallet(channel, opts)
    public = wallet.select()
    management = ManagementData.decode(channel.send(read_binary(0, ManagementData.SIZE, sfi=MANAGEMENT_SFI)).data)
    out = {
        **card_info.to_json(),
        "app_serial": public.app_serial.hex().upper(),
        "issuer_id": public.issuer_id.hex().upper(),
        "purse_valid_from": public.valid_from.isoformat(),
        "purse_valid_until": public.valid_until.isoformat(),
        "city": management.province.hex().upper() + management.city.hex().upper(),
        "balance": wallet.balance(),
    }
    if opts.json:
        opts.emit(out)
        return
    echo_kv([(k, str(v)) for k, v in out.items()])


@card.command()
@wait_option
@common_options
def history(opts: Options) -> None:
    """The purse's transaction log (0x18) and trip records (0x1E)."""
    channel = open_channel(opts)
    wallet = _reading_wallet(channel, opts)
    log = wallet.history()
    trips = wallet.trips()
    if opts.json:
        opts.emit({
            "transactions": [{"seq": r.seq, "amount": r.amount, "type": f"{r.tx_type:02X}",
                              "terminal_id": r.terminal_id.hex().upper(), "time": r.time.isoformat()} for r in log],
            "trips": [{"type": f"{t.record_type:02X}", "amount": t.amount, "balance": t.balance,
                       "time": t.time.isoformat(), "station": t.station.hex().upper()} for t in trips],
        })
        return
    for r in log:
        click.echo(f"{r.time:%Y-%m-%d %H:%M:%S}  seq {r.seq:5d}  type {r.tx_type:02X}  {r.amount:>7} fen"
                   f"  terminal {r.terminal_id.hex().upper()}")
    if not log:
        click.echo("no transactions")


@card.group()
def pin() -> None:
    """Verify, change or unblock the PIN (never echoed or logged)."""


def _pin(value: str | None, prompt: str) -> str:
    return value if value is not None else click.prompt(prompt, hide_input=True, err=True)


@pin.command()
@click.option("--pin", "pin_", help="The PIN (prompted without echo when omitted).")
@wait_option
@common_options
def verify(pin_: str | None, opts: Options) -> None:
    """Verify the PIN; exit 4 with the tries left when wrong."""
    channel = open_channel(opts)
    auth.verify_pin(channel, _pin(pin_, "PIN"))
    click.echo("PIN verified")


@pin.command()
@click.option("--old", help="Current PIN.")
@click.option("--new", help="New PIN.")
@wait_option
@common_options
def change(old: str | None, new: str | None, opts: Options) -> None:
    """Change the PIN of the SSSE application; exit 4 with the tries left when the old one is wrong."""
    channel = open_channel(opts)
    auth.change_pin(channel, _pin(old, "current PIN"), _pin(new, "new PIN"))
    click.echo("PIN changed")


@pin.command()
@click.option("--puk", help="Unblocking key.")
@click.option("--new", help="New PIN.")
@wait_option
@common_options
def unblock(puk: str | None, new: str | None, opts: Options) -> None:
    """Unblock the PIN with the PUK and set a new one; exit 4 when the PUK is wrong."""
    channel = open_channel(opts)
    auth.unblock_pin(channel, _pin(puk, "PUK"), _pin(new, "new PIN"))
    click.echo("PIN unblocked")
