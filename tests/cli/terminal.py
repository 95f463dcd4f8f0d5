"""Running `ykt` with one of its streams on a real pseudo-terminal, as a person sees it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # every writer closed: Linux answers EIO
            return out
        if not chunk:
            return out
        out += chunk


def on_a_terminal(args: list[str], tty: str = "stderr", env: dict[str, str] | None = None,
                  timeout: float = 60) -> tuple[int, bytes, bytes]:
    """``ykt ARGS`` with ``tty`` ("stdout" or "stderr") on a pty: (exit code, what the
    terminal showed, the other stream)."""
    main, sub = pty.openpty()
    streams = {"stdout": sub, "stderr": subprocess.PIPE} if tty == "stdout" else {"stdout": subprocess.PIPE,
                                                                                "stderr": sub}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, **streams)  # type: ignore[call-overload]
    os.close(sub)
    shown: list[bytes] = []
    reader = threading.Thread(target=lambda: shown.append(_drain(main)), daemon=True)
    reader.start()
    out, err = proc.communicate(timeout=timeout)
    reader.join(timeout)
    os.close(main)
    return proc.returncode, b"".join(shown), (err if tty == "stdout" else out)
