"""`ykt`: the technicians' tool. Commands live in one module each, loaded on use."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

import click

# command name -> ("module:attribute", the first sentence of its help). A module is imported only
# when its command runs, so a slow or broken import never costs the others, and
# `ykt --help` lists the commands from the short helps here without importing
# any of them (tests/cli/test_main.py holds each to its command's own help).
COMMANDS: dict[str, tuple[str, str]] = {
    "atr": ("cli.inspect_cmd:atr",
            "Decode an ATR (ISO 7816-3, historical bytes per ISO 7816-4, PC/SC part 3) and name the card "
            "from pcsc-tools' smartcard_list.txt, as ATR_analysis does, when it is installed."),
    "tlv": ("cli.inspect_cmd:tlv",
            "Decode BER-TLV (ISO 7816-4 §5.2) as a tree."),
    "apdu": ("cli.apdu_cmd:apdu",
             "Send each APDU to the card; exit 0 whatever the SW (the SW is data)."),
    "script": ("cli.script_cmd:script",
               "Run an APDU script (ours or a pcsc-tools scriptor file) against the card."),
    "shell": ("cli.shell_cmd:shell",
              "An interactive session on one card: APDUs, select, read, balance, verify-pin, reset."),
    "readers": ("cli.readers_cmd:readers",
                "List PC/SC readers (card present, ATR) and the reader schemes available."),
    "trace": ("cli.trace_cmd:trace",
              "Recorded APDU traces (JSON Lines; replay one with --reader trace:FILE)."),
    "watch": ("cli.readers_cmd:watch",
              "Print reader and card events as they happen (--json: one event a line)."),
    "sim": ("cli.sim_cmd:sim",
            "Virtual cards: issue, show, serve; a simulated day of terminal batches."),
    "card": ("cli.card_cmd:card",
             "Read the card: identity, purse, history, PIN."),
    "purse": ("cli.purse_cmd:purse",
              "The transit purse: balance, load, purchase."),
    "journal": ("cli.journal_cmd:journal",
                "The durable journal: show, check, export settlement batches, verify TACs, prune."),
    "denylist": ("cli.denylist_cmd:denylist",
                 "Deny lists of application serials."),
    "gate": ("cli.run_cmd:gate",
             "Entry gates: metro, parks, museums, libraries."),
    "validator": ("cli.run_cmd:validator",
                  "Bus validators."),
    "station": ("cli.station_cmd:station",
                "A station: several lanes and a pool of PSAMs (local and T-Union) in one process."),
    "demo": ("cli.demo_cmd:demo",
             "Run the story on the embedded simulator and settle it."),
    "bench": ("cli.bench_cmd:bench",
              "Time APDU round trips through the channel on any reader."),
    "clear": ("cli.clear_cmd:clear",
              "Clear batch files (folders of *.jsonl or files): check, verify, chain, and split the money."),
}


# click 8.2 and later raise this for a group run without a subcommand; 8.1 prints the help itself
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(click.exceptions, "NoArgsIsHelpError", click.UsageError)


class LazyGroup(click.Group):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Usage errors as one line on stderr with exit code 2, like every other error."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS_IS_HELP as exc:  # `ykt card`: its help, as `ykt card --help` (click 8.2+ says exit 2)
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        sys.exit(result if isinstance(result, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the registry's short helps: listing imports no command module."""
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        rows += [(name, cmd.get_short_help_str()) for name in super().list_commands(ctx)
                 if name not in COMMANDS and (cmd := super().get_command(ctx, name)) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, _, attr = COMMANDS[cmd_name][0].partition(":")
            command: click.Command = getattr(import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("yikatong")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the package metadata is read only when asked (it costs ~20 ms at start-up)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"ykt {_version()}")
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.option("-q", "--quiet", is_flag=True,
              help="No notes on stderr (the reader or journal chosen, the PSAM note, progress bars, "
                   "summaries); errors still show.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also every APDU exchange with the card on stderr as it happens (PINs and personal data "
                   "masked).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """yikatong: cards, readers and terminals of the social security card 一卡通."""
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose do not go together")
    if quiet or verbose:
        from cli.common import Options  # `ykt --help` imports no command's code

        ctx.ensure_object(Options).verbosity = 1 if verbose else -1


if __name__ == "__main__":  # pragma: no cover
    cli()
