"""`ykt purse`: balance, load and purchase with the PSAM slot and the journal."""

from __future__ import annotations

import click

from cardlib.errors import FormatError
from cli.common import Options, common_options, wait_option
from cli.terminal_support import open_journal, open_terminal_slots, yuan
from terminal.wallet import TransactionResult, Wallet


@click.group()
def purse() -> None:
    """The transit purse: balance, load, purchase."""


def _wallet(opts: Options, journal_path: str | None) -> Wallet:
    slots, channel = open_terminal_slots(opts)
    journal = open_journal(journal_path, opts)
    return Wallet(channel, slots.psam, journal, opts.clock())


def _show(result: TransactionResult, opts: Options) -> None:
    if opts.json:
        out = result.to_json()
        opts.emit({k: out[k] for k in ("amount", "balance_before", "balance_after", "card_seq", "terminal_id",
                                       "terminal_seq", "tac", "type", "time", "journal_id")})
        return
    click.echo(f"{result.kind}: {yuan(result.amount)}; balance {yuan(result.balance_before)} → "
               f"{yuan(result.balance_after)}; TAC {result.tac.hex().upper()}; journal #{result.journal_id}")


def _amount(value: int) -> int:
    if value < 0:
        raise FormatError("--amount must be a non-negative number of fen")
    return value


@purse.command()
@wait_option
@common_options("reader", "json", "trace")
def balance(opts: Options) -> None:
    """The purse balance."""
    from cli.card_cmd import _reading_wallet
    from cli.session import open_channel

    value = _reading_wallet(open_channel(opts), opts).balance()
    if opts.json:
        opts.emit({"balance": value})
    else:
        click.echo(yuan(value))


@purse.command()
@click.option("--amount", required=True, type=int, help="Amount in fen.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False), help="Journal database.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), help="Issuer of the simulated load host.")
@wait_option
@common_options("reader", "psam", "json", "trace", "now")
def load(amount: int, journal_path: str | None, issuer_keys: str | None, opts: Options) -> None:
    """Top up through the (simulated) issuer's load host."""
    from cardlib.keys import load_issuer_keys
    from simulators.host import SimulatedLoadHost

    wallet = _wallet(opts, journal_path)
    _show(wallet.load(_amount(amount), SimulatedLoadHost(load_issuer_keys(issuer_keys))), opts)


@purse.command()
@click.option("--amount", required=True, type=int, help="Amount in fen.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False), help="Journal database.")
@wait_option
@common_options("reader", "psam", "json", "trace", "now")
def purchase(amount: int, journal_path: str | None, opts: Options) -> None:
    """A purchase with MAC1 from the PSAM and MAC2 checked by it."""
    _show(_wallet(opts, journal_path).purchase(_amount(amount)), opts)
