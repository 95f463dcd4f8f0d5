"""`ykt`: the technicians' tool. Commands live in one module each, loaded on use."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module, metadata
from typing import Any

import click

# command name -> "module:attribute"; a module is imported only when its
# command runs, so a slow or broken import never costs the others.
COMMANDS: dict[str, str] = {
    "atr": "cli.inspect_cmd:atr",
    "tlv": "cli.inspect_cmd:tlv",
    "apdu": "cli.apdu_cmd:apdu",
    "script": "cli.script_cmd:script",
    "readers": "cli.readers_cmd:readers",
    "trace": "cli.trace_cmd:trace",
    "watch": "cli.readers_cmd:watch",
    "sim": "cli.sim_cmd:sim",
    "card": "cli.card_cmd:card",
    "purse": "cli.purse_cmd:purse",
    "journal": "cli.journal_cmd:journal",
    "denylist": "cli.denylist_cmd:denylist",
    "gate": "cli.run_cmd:gate",
    "validator": "cli.run_cmd:validator",
    "demo": "cli.demo_cmd:demo",
    "bench": "cli.bench_cmd:bench",
    "clear": "cli.clear_cmd:clear",
    "clear-day": "cli.clear_cmd:clear_day",
}


class LazyGroup(click.Group):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Usage errors as one line on stderr with exit code 2, like every other error."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
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

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, _, attr = COMMANDS[cmd_name].partition(":")
            command: click.Command = getattr(import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


def _version() -> str:
    try:
        return metadata.version("yikatong")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="ykt", message="%(prog)s %(version)s")
def cli(**_: Any) -> None:
    """yikatong: cards, readers and terminals of the social security card 一卡通."""


if __name__ == "__main__":  # pragma: no cover
    cli()
