"""pcscd for tests: use a running one, or start one (and stop only that one).

Without root or without pcscd/vpcd the PC/SC tests skip with a reason, except
with CI=true, where they fail loudly: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}: .ci/run must install and start it")
    pytest.skip(reason)


def _answers() -> bool:
    try:
        from smartcard import scard
    except ImportError:
        return False
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != 0:
        return False
    scard.SCardReleaseContext(ctx)
    return True


class Pcscd:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="pcscd-", suffix=".log")[1])

    @property
    def owned(self) -> bool:
        return self.proc is not None

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(["pcscd", "-f"], stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if SOCKET.exists() and _answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"pcscd did not come up; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        time.sleep(0.3)
        self.start()


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    try:
        import smartcard  # noqa: F401
    except ImportError:
        _unavailable("pyscard is not installed")
    if shutil.which("pcscd") is None:
        _unavailable("pcscd is not installed")
    if not VPCD_DRIVER.exists() and not list(Path("/usr/lib/pcsc/drivers").rglob("libifdvpcd*")):
        _unavailable("the vpcd driver (vsmartcard-vpcd) is not installed")
    daemon = Pcscd()
    if not (SOCKET.exists() and _answers()):
        if os.geteuid() != 0:
            _unavailable("pcscd is not running and starting it needs root")
        daemon.start()
    yield daemon
    daemon.stop()


def wait_for(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False
