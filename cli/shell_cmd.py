"""`ykt shell`: an interactive session on one card, in the spirit of osmocom's pySim-shell.

Built on the standard library's ``cmd`` with ``readline`` (history, tab completion): no
dependency, plain lines on a dumb terminal and on a pipe (docs/shell.md says why not cmd2).
Every APDU goes through :meth:`CardShell.exchange`, which shows the answer decoded and writes
the transcript, a ``ykt script`` file (docs/script-format.md) that replays the session.
PINs are read without echo and, like every secret a trace masks, never reach the screen,
the history or the transcript.
"""

from __future__ import annotations

import cmd
import getpass
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.atr import parse_atr
from cardlib.channel import Channel
from cardlib.errors import FormatError
from cardlib.iso import INS_SELECT, read_binary, read_record, select_aid, select_fid
from cardlib.pboc import purse as purse_commands
from cardlib.readers.base import Disposition
from cardlib.safefiles import GUARDED, check_output
from cardlib.ssse import commands as ssse_commands
from cardlib.ssse import files as ssse
from cardlib.sw import describe
from cardlib.trace import Masker
from cli.common import Options, common_options, echo_kv, parse_hex, report_error, wait_option
from cli.explain import KNOWN_FILES, WHOLE_SSSE, explain, fields, rows_text
from cli.session import open_channel, reconnect

HISTORY_LENGTH = 1000
APPLICATIONS = {purse_commands.PURSE_AID: "purse", ssse.SSSE_AID: "ssse"}
SELECTABLE: dict[str, Callable[[], CommandAPDU]] = {
    "purse": purse_commands.select_purse,
    "ssse": ssse_commands.select_ssse,
    "mf": lambda: select_fid(0x3F00, fci=True),
}

try:
    import readline
except ImportError:  # pragma: no cover - a Python without readline: no history, no completion
    readline = None  # type: ignore[assignment]


def history_path() -> Path:
    """Where the history of past sessions is kept (XDG state directory)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "yikatong" / "shell_history"


def spaced(hex_text: str) -> str:
    """``00A4`` → ``00 A4``; masked bytes (``**``) stay masked."""
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def _transcript_path(path: str) -> str:
    """Where a transcript may go: never over a journal or key file, over a card image, deny list or
    batch not at all (a shell has no --force), never over a FIFO or device (safefiles)."""
    return check_output(path, "transcript", guard=GUARDED)


class Transcript:
    """The session as a `ykt script`: each APDU with the status word it got, `reset`, and the
    shell commands as comments. An APDU carrying a secret is written masked, as a comment."""

    def __init__(self, header: list[str], path: str | None = None) -> None:
        self.lines: list[str] = []
        self._stream: IO[str] | None = None
        if path:
            path = _transcript_path(path)
            try:
                self._stream = open(path, "w", encoding="utf-8")  # closed with the command
            except OSError as exc:
                raise FormatError(f"cannot write transcript {path!r}: {exc.strerror}") from None
        for line in header:
            self.add(f"# {line}")

    def add(self, line: str) -> None:
        self.lines.append(line)
        if self._stream is not None:
            self._stream.write(line + "\n")
            self._stream.flush()  # a session that dies keeps what it did

    def apdu(self, shown: str, sw: int) -> None:
        if "*" in shown:
            self.add(f"# {shown} => {sw:04X}  (secret data not recorded: not replayed)")
        else:
            self.add(f"{shown} => {sw:04X}")

    def save(self, path: str) -> None:
        path = _transcript_path(path)
        try:
            Path(path).write_text("".join(line + "\n" for line in self.lines), encoding="utf-8")
        except OSError as exc:
            raise FormatError(f"cannot write transcript {path!r}: {exc.strerror}") from None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def _sfi(text: str) -> int:
    """An SFI in hex as the project writes them: ``0x18`` or ``18``."""
    try:
        value = int(text.lower().removeprefix("0x"), 16)
    except ValueError:
        raise FormatError(f"SFI {text!r} is not hex (e.g. 0x18)") from None
    if not 1 <= value <= 30:
        raise FormatError(f"SFI {text} out of range 0x01..0x1E")
    return value


def _record_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 254:
        raise FormatError(f"record number {text!r}: expected 1..254")
    return int(text)


class CardShell(cmd.Cmd):
    """The commands of the session; an input line in hex is an APDU."""

    identchars = cmd.Cmd.identchars + "-"

    def __init__(self, channel: Channel, opts: Options, transcript: Transcript, interactive: bool) -> None:
        super().__init__()
        self.channel = channel
        self.opts = opts
        self.transcript = transcript
        self.interactive = interactive
        self.use_rawinput = interactive
        self.masker = Masker()
        self.app = ""
        self.session_history: list[str] = []
        self.exit_code = 0
        self._set_prompt()

    # --- the loop -------------------------------------------------------------------

    def _set_prompt(self) -> None:
        self.prompt = (f"ykt:{self.app}> " if self.app else "ykt> ") if self.interactive else ""

    def run(self) -> int:
        """The loop until exit, end of input or (without a terminal) the first error."""
        self._load_history()
        try:
            while True:
                try:
                    self.cmdloop()
                    return self.exit_code
                except KeyboardInterrupt:
                    if not self.interactive:
                        raise
                    click.echo("^C")  # a fresh prompt, as a shell gives
        finally:
            self._save_history()

    def _load_history(self) -> None:
        if readline is None or not self.interactive:
            return
        readline.set_auto_history(False)  # precmd adds each line, secrets masked
        readline.set_completer_delims(" \t\n")  # verify-pin is one word
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(history_path())
        except OSError:
            pass

    def _save_history(self) -> None:
        if readline is None or not self.interactive:
            return
        path = history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            readline.write_history_file(path)
        except OSError:
            pass  # no history is no reason to fail the session

    def parseline(self, line: str) -> tuple[str | None, str | None, str]:
        command, arg, line = super().parseline(line)
        return (command.replace("-", "_") if command else command), arg, line

    def precmd(self, line: str) -> str:
        text = line.strip()
        if text and text != "EOF" and not text.startswith("#"):
            safe = self._safe(text)
            self.session_history.append(safe)
            if readline is not None and self.interactive:
                readline.add_history(safe)
            if not self._is_apdu(text):
                self.transcript.add(f"# ykt> {safe}")
        return line

    def _is_apdu(self, text: str) -> bool:
        try:
            parse_hex(text, "APDU")
        except FormatError:
            return False
        return True

    def _safe(self, text: str) -> str:
        """The line as history and transcript may keep it: a secret APDU masked, a PIN never."""
        word = text.split(maxsplit=1)[0].replace("_", "-")
        if word == "verify-pin":
            return word
        if self._is_apdu(text):
            shown = self.masker.command(parse_hex(text, "APDU"))
            return spaced(shown) if "*" in shown else text
        return text

    def onecmd(self, line: str) -> bool:
        try:
            return bool(super().onecmd(line))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # every error becomes one line, the session goes on
            code = report_error(exc, self.opts)
            if not self.interactive:
                self.exit_code = code
                return True  # without a terminal, as a script: stop at the first error
            return False

    def emptyline(self) -> bool:
        return False  # cmd's default repeats the last command: not with a card

    def default(self, line: str) -> None:
        """A line that names no command: an APDU in hex, a comment, or a mistake."""
        text = line.strip()
        if text.startswith("#"):
            return
        if not self._is_apdu(text):
            word = text.split(maxsplit=1)[0]
            raise FormatError(f"unknown command {word!r} (help lists the commands; an APDU is hex)")
        self.exchange(parse_hex(text, "APDU"))

    def completenames(self, text: str, *_ignored: Any) -> list[str]:
        return [name for name in self.command_names() if name.startswith(text)]

    def command_names(self) -> list[str]:
        return sorted(name[3:].replace("_", "-") for name in self.get_names()
                      if name.startswith("do_") and name != "do_EOF")

    # --- talking to the card ------------------------------------------------------------

    def exchange(self, command: CommandAPDU | bytes) -> ResponseAPDU:
        """Send one APDU; show it (secrets masked), the answer decoded; note it in the transcript."""
        apdu = command.encode() if isinstance(command, CommandAPDU) else bytes(command)
        shown = self.masker.command(apdu)
        click.echo(f"> {spaced(shown)}")
        response = self.channel.transmit(apdu)
        self.transcript.apdu(shown, response.sw)
        if response.data:
            click.echo(f"< {response.data.hex(' ').upper()}")
        click.echo(f"< {response.sw:04X}  {describe(response.sw)}")
        for line in explain(apdu, response.data, response.sw):
            click.echo(line)
        if apdu[1] == INS_SELECT and response.ok:
            self._selected(CommandAPDU.decode(apdu))
        return response

    def _selected(self, command: CommandAPDU) -> None:
        if command.p1 == 0x04:
            self.app = APPLICATIONS.get(command.data, command.data.hex().upper())
        else:
            self.app = command.data.hex().upper()
        self._set_prompt()

    # --- commands -------------------------------------------------------------------

    def do_select(self, arg: str) -> None:
        """select purse|ssse|mf|FID|AID: select an application by name or AID, or a file by FID.

        select purse     the transit purse (AID A000000632010105)
        select ssse      the social security application
        select 3F00      a file by its 2-byte identifier; longer hex is an AID
        """
        name = arg.strip().lower()
        if not name:
            raise FormatError("select what? purse, ssse, mf, a FID (3F00) or an AID")
        if name in SELECTABLE:
            self.exchange(SELECTABLE[name]())
            return
        try:
            target = parse_hex(name, "FID or AID")
        except FormatError:
            raise FormatError(f"select {arg.strip()!r}: not purse, ssse, mf, a FID (3F00) or an AID in hex") from None
        if len(target) == 2:
            self.exchange(select_fid(int.from_bytes(target, "big"), fci=True))
        else:
            self.exchange(select_aid(target))

    def complete_select(self, text: str, *_ignored: Any) -> list[str]:
        return [name for name in SELECTABLE if name.startswith(text.lower())]

    def do_read(self, arg: str) -> None:
        """read SFI [RECORD]: read a file by its SFI (hex: 0x18 or 18): every record, or one.

        Files whose layout the project knows are decoded: 0x15 0x16 0x17 (binary),
        0x18 0x1E (records) of the purse, 05 06 of the social security application.
        A file that is not a record file is read with READ BINARY.
        """
        parts = arg.split()
        if not 1 <= len(parts) <= 2:
            raise FormatError("read SFI [RECORD]: e.g. read 0x18, read 0x18 2")
        sfi = _sfi(parts[0])
        known = KNOWN_FILES.get(sfi)
        le = (known.size if known else 0) or 256
        if len(parts) == 2:
            self.exchange(read_record(_record_number(parts[1]), sfi=sfi, le=le))
            return
        if known is not None and not known.records:
            self.exchange(read_binary(0, le, sfi=sfi))
            return
        values: dict[int, bytes] = {}
        for number in range(1, 255):
            response = self.exchange(read_record(number, sfi=sfi, le=le))
            if number == 1 and response.sw == SW.SW_WRONG_FILE_STRUCTURE and known is None:  # not a record file
                self.exchange(read_binary(0, 256, sfi=sfi))
                return
            if not response.ok or not response.data:
                break
            if sfi in WHOLE_SSSE:
                values[response.data[0]] = response.data[2:]
        if sfi in WHOLE_SSSE and values:
            try:
                whole = WHOLE_SSSE[sfi](values)
            except FormatError as exc:
                click.echo(f"  {exc}")
                return
            for line in rows_text(KNOWN_FILES[sfi].name, fields(whole)):
                click.echo(line)

    def complete_read(self, text: str, *_ignored: Any) -> list[str]:
        return [name for name in (f"0x{sfi:02X}" for sfi in sorted(KNOWN_FILES)) if name.startswith(text)]

    def do_balance(self, arg: str) -> None:
        """balance: GET BALANCE of the purse (selected first when it is not)."""
        if self.app != "purse" and not self.exchange(purse_commands.select_purse()).ok:
            return
        self.exchange(purse_commands.GetBalance().to_apdu())

    def do_verify_pin(self, arg: str) -> None:
        """verify-pin: VERIFY the PIN of the social security application; asked without echo.

        The PIN is never shown, kept in the history or written to the transcript.
        """
        if arg.strip():
            raise FormatError("verify-pin takes no argument: it asks for the PIN without echo")
        if not self.interactive:
            raise FormatError("verify-pin needs a terminal: the PIN is read without echo")
        command = ssse_commands.verify_pin(getpass.getpass("PIN: "))
        if self.app != "ssse" and not self.exchange(ssse_commands.select_ssse()).ok:
            return
        self.exchange(command)

    def do_reset(self, arg: str) -> None:
        """reset: reset the card (warm reset) and show its ATR."""
        self.channel.reader.disconnect(Disposition.RESET)
        atr = reconnect(self.channel)
        self.transcript.add("reset")
        self.masker = Masker()
        self.app = ""
        self._set_prompt()
        click.echo(f"ATR {atr.hex(' ').upper()}")

    def do_atr(self, arg: str) -> None:
        """atr: the card's ATR, decoded (ISO 7816-3)."""
        echo_kv(parse_atr(self.channel.reader.atr).describe())

    def do_history(self, arg: str) -> None:
        """history: the commands of this session (secrets masked); up-arrow recalls them."""
        for number, line in enumerate(self.session_history, 1):
            click.echo(f"{number:4d}  {line}")

    def do_save(self, arg: str) -> None:
        """save FILE: write the transcript so far as a `ykt script` (replay: ykt script FILE)."""
        path = arg.strip()
        if not path:
            raise FormatError("save FILE: name the file")
        self.transcript.save(path)
        click.echo(f"transcript saved to {path} ({len(self.transcript.lines)} lines)")

    def do_help(self, arg: str) -> None:
        """help [COMMAND]: the commands, or one command in full."""
        name = arg.strip()
        if name:
            func = getattr(self, "do_" + name.replace("-", "_"), None)
            if func is None or name == "EOF":
                raise FormatError(f"no command {name!r} (help lists them)")
            click.echo(inspect.cleandoc(func.__doc__ or name))
            return
        rows = [(n, self._summary(n)) for n in self.command_names()]
        rows.append(("HEX", "an APDU in hex (spaces allowed), sent as it is: 00A4040008A000000632010105"))
        width = max(len(n) for n, _ in rows)
        for n, text in rows:
            click.echo(f"  {n.ljust(width)}  {text}")

    def _summary(self, name: str) -> str:
        doc = getattr(self, "do_" + name.replace("-", "_")).__doc__ or ""
        first = doc.strip().splitlines()[0] if doc.strip() else ""
        return first.split(": ", 1)[1] if ": " in first else first

    def do_exit(self, arg: str) -> bool:
        """exit: end the session (also quit, Ctrl-D)."""
        return True

    def do_quit(self, arg: str) -> bool:
        """quit: the same as exit."""
        return True

    def do_EOF(self, arg: str) -> bool:  # the name cmd gives end of input
        if self.interactive:
            click.echo()
        return True


@click.command()
@click.option("--transcript", "transcript_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the session as it goes to FILE, a `ykt script` that replays it.")
@wait_option
@common_options("reader", "trace", "now")
def shell(transcript_path: str | None, opts: Options) -> None:
    """An interactive session on one card: APDUs, select, read, balance, verify-pin, reset.

    Answers are decoded inline (status word, TLV tree, known records). Without a terminal
    the commands are read from standard input and the first error stops the session.
    """
    channel = open_channel(opts)
    atr = channel.reader.atr
    transcript = Transcript([f"ykt shell on {channel.reader.name}, ATR {atr.hex().upper()}, "
                             f"{opts.clock().now().isoformat(timespec='seconds')}",
                             "replay: ykt script THIS_FILE --reader URI"], transcript_path)
    click.get_current_context().call_on_close(transcript.close)
    interactive = sys.stdin.isatty()
    session = CardShell(channel, opts, transcript, interactive)
    if interactive:
        click.echo(f"card in {channel.reader.name}, ATR {atr.hex(' ').upper()}")
        click.echo("help lists the commands; an APDU is typed in hex; exit or Ctrl-D leaves")
    code = session.run()
    if code:
        sys.exit(code)
