"""What every `ykt` subcommand shares: the common options, output, errors.

DESIGN.md: `--reader`, `--psam`, `--json`, `--trace FILE`, `--debug`, `--now`
are written on the subcommand itself, each only where the command uses it
(`--debug` everywhere); errors are one line on stderr with the exit code of
the error class; `--debug` adds the traceback. `-q`/`-v` live on the group.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from cardlib.errors import EXIT_USAGE, FormatError, YktError, exit_code_for

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PSAM = "sim?kind=psam"


@dataclass
class Options:
    """The common options of one invocation."""

    reader: str | None = None  # None: $YKT_READER, else the first PC/SC reader holding a card (cli.session)
    psam: str = DEFAULT_PSAM
    json: bool = False
    trace: str | None = None
    debug: bool = False
    now: str | None = None
    wait: float | None = None  # --wait: seconds to wait for a card (inf: for ever); None: do not wait
    extra: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)  # the common options given on the command line
    verbosity: int = 0  # the group's -q (-1: no notes on stderr) and -v (1: every APDU on stderr)

    def note(self, text: str) -> None:
        """A note for the person at the terminal, on stderr; silenced by ``-q``."""
        if self.verbosity >= 0:
            click.echo(text, err=True)

    def progress(self) -> bool:
        """Whether to draw a progress bar: on a terminal (stderr), not under ``-q``."""
        return self.verbosity >= 0 and sys.stderr.isatty()

    def emit(self, obj: Any) -> None:
        """Print one JSON document."""
        click.echo(json.dumps(obj, ensure_ascii=False, indent=None if not sys.stdout.isatty() else 2))

    def clock(self) -> Any:
        """The explicit clock of this run (fixed by --now)."""
        from cardlib.clock import Clock

        return Clock.fixed_from_text(self.now) if self.now else Clock.system()


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        opts = ctx.ensure_object(Options)
        if value is not None and value is not False:
            setattr(opts, name, value)
            opts.given.add(name)
        return value

    return callback


_COMMON: dict[str, Callable[[F], F]] = {
    "reader": click.option(
        "--reader", "-r", metavar="URI", expose_value=False, callback=_store("reader"), is_eager=True,
        help="Card reader URI (pcsc:N, pn532:/dev/tty…, sim, sim:FILE, trace:FILE, py:mod:factory); default "
             "$YKT_READER, else the first PC/SC reader holding a card."),
    "psam": click.option(
        "--psam", metavar="URI", expose_value=False, callback=_store("psam"), is_eager=True,
        help="PSAM slot reader URI (default: the test issuer's simulated PSAM)."),
    "json": click.option(
        "--json", "json_", is_flag=True, expose_value=False, callback=_store("json"), is_eager=True,
        help="Machine-readable JSON output."),
    "trace": click.option(
        "--trace", metavar="FILE", expose_value=False, callback=_store("trace"), is_eager=True,
        help="Record every APDU exchange to FILE (JSON Lines)."),
    "debug": click.option(
        "--debug", is_flag=True, expose_value=False, callback=_store("debug"), is_eager=True,
        help="Show tracebacks on errors."),
    "now": click.option(
        "--now", metavar="TIME", expose_value=False, callback=_store("now"), is_eager=True,
        help="Fix the clock (ISO 8601, Beijing time if no offset)."),
}
COMMON_NAMES = tuple(_COMMON)


def common_options(*names: str) -> Callable[[F], F]:
    """Add the common options a command uses (``--debug`` always); it receives ``opts: Options``.

    ``@common_options("reader", "json")``: an option a command would ignore is not offered.
    """
    if names and callable(names[0]):
        raise TypeError("common_options(...) names the options the command uses")
    unknown = set(names) - set(_COMMON)
    if unknown:
        raise ValueError(f"unknown common option(s): {', '.join(sorted(unknown))}")
    chosen = [name for name in _COMMON if name in names or name == "debug"]

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            opts = ctx.ensure_object(Options)
            return run_guarded(opts, lambda: func(*args, opts=opts, **kwargs))

        for name in reversed(chosen):
            wrapper = _COMMON[name](wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


WAIT_FOREVER = float("inf")


class _Seconds(click.FloatRange):
    """A non-negative number of seconds; the error says how to write ``--wait`` before an argument
    (click takes the word after an option with an optional value as its value)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is not a number of seconds >= 0 (write --wait=SECONDS, or put a bare "
                      "--wait after the arguments)", param, ctx)


def wait_option(func: F) -> F:
    """``--wait [SECONDS]`` on a command that opens a card: wait for one instead of failing at once
    (``opensc-tool -w``). Alone it waits for ever; write ``--wait=SECONDS`` before an argument."""
    option = click.option(
        "--wait", metavar="[SECONDS]", type=_Seconds(min=0), is_flag=False, flag_value=WAIT_FOREVER,
        expose_value=False, callback=_store("wait"), is_eager=True,
        help="Wait for a card (for ever, or SECONDS) instead of failing when none is there.")
    return option(func)


def run_guarded(opts: Options, body: Callable[[], Any]) -> Any:
    """Run a command body; turn errors into one line on stderr and an exit code."""
    try:
        return body()
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # every error becomes one line
        sys.exit(report_error(exc, opts))


def report_error(exc: Exception, opts: Options) -> int:
    """One line on stderr for an error (the traceback too with --debug); its exit code."""
    if opts.debug:
        traceback.print_exc()
    message = str(exc) or type(exc).__name__
    first = message.splitlines()[0] if message else type(exc).__name__
    if not isinstance(exc, YktError):
        first = f"internal error: {type(exc).__name__}: {first}"
    click.echo(f"error: {first}", err=True)
    return exit_code_for(exc)


def parse_hex(text: str, what: str = "hex") -> bytes:
    """Hex for people: spaces, colons and a 0x prefix allowed."""
    from cardlib.hexutil import from_hex

    return from_hex(text, what)


def echo_kv(rows: list[tuple[str, str]]) -> None:
    """A two-column human table."""
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


def use_color() -> bool:
    """Colour only on a terminal and without NO_COLOR."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def paint_state(text: str, opened: bool) -> str:
    """A gate's OPEN in green, CLOSED in red: on a terminal without NO_COLOR only."""
    return click.style(text, fg="green" if opened else "red", bold=True) if use_color() else text


__all__ = [
    "COMMON_NAMES",
    "EXIT_USAGE",
    "FormatError",
    "Options",
    "common_options",
    "echo_kv",
    "paint_state",
    "parse_hex",
    "report_error",
    "run_guarded",
    "use_color",
    "wait_option",
]
