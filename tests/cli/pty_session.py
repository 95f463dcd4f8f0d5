"""A program on a real pseudo-terminal, driven as a person types: send keys, wait for text.

``pty.fork`` gives the child the pty as its controlling terminal, so readline and getpass
(which opens /dev/tty) see what they see in front of a person. ANSI control sequences are
stripped from what the terminal showed before anyone asserts on it.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|[\x07\r]")


def ykt_command() -> list[str]:
    """The installed ``ykt`` beside this interpreter, else ``python -m cli.main``."""
    script = Path(sys.executable).parent / "ykt"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


class PtySession:
    """``ykt ARGS`` with stdin, stdout and stderr on one pty (TERM=dumb unless env says otherwise)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        argv = ykt_command() + args
        full_env = {**os.environ, "TERM": "dumb", **env}
        full_env.pop("NO_COLOR", None)
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once, never back into the test runner
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, full_env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.raw = b""
        self._seen = 0  # how much of the text expect() has consumed
        self.status: int | None = None

    @property
    def text(self) -> str:
        """Everything the terminal showed, ANSI codes stripped."""
        return strip_ansi(self.raw.decode("utf-8", errors="replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the child closed the terminal (Linux: EIO)
            return False
        if not chunk:
            return False
        self.raw += chunk
        return True

    def expect(self, needle: str, timeout: float = 30) -> str:
        """Wait until ``needle`` shows after the last match; the text up to and with it."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text
            at = text.find(needle, self._seen)
            if at >= 0:
                part = text[self._seen : at + len(needle)]
                self._seen = at + len(needle)
                return part
            if time.monotonic() > deadline or not self._read(min(0.5, max(0.0, deadline - time.monotonic()))):
                if text.find(needle, self._seen) < 0:
                    raise AssertionError(f"{needle!r} did not show; the terminal shows:\n{text[self._seen:]}")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode("utf-8"))

    def wait(self, timeout: float = 30) -> int:
        """Reap the child (killed after ``timeout``), keep what it showed last: its exit code."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                _, status = os.waitpid(self.pid, 0)
                break
            self._read(0.1)
        while select.select([self.fd], [], [], 0)[0] and self._read(0):
            pass
        os.close(self.fd)
        self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def __enter__(self) -> PtySession:
        return self

    def __exit__(self, *exc: object) -> None:
        """A test that failed half-way leaves no child waiting on its terminal."""
        if self.status is None:
            self.wait(timeout=0)
