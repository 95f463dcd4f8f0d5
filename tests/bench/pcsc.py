"""PC/SC for the benchmarks: the test-suite's pcscd (tests/pcsc_support.py), a card
served through vpcd from a process of its own, and one bare pyscard client used for every side that is
"bare" or "theirs".

Without root, pyscard, pcscd or the vpcd driver, ``ensure_pcscd`` skips (a
``pytest.skip`` exception, which the runner reports as "could not run"); with
CI=true it fails. A pcscd started here is stopped again by ``stop_pcscd``; one that
was running already (the test session's, the system's) is left alone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulators.field import wait_for
from simulators.vpcd import reader_name
from tests.pcsc_support import SOCKET, Pcscd, answers, card_seen, end_process, ensure_pcscd


def start_pcscd() -> Pcscd | None:
    """The running pcscd (None: leave it running), or one started for this benchmark."""
    running = SOCKET.exists() and answers()
    daemon = ensure_pcscd()
    return None if running else daemon


def stop_pcscd(daemon: Pcscd | None) -> None:
    """Stop the pcscd ``start_pcscd`` started (never one that ran before, e.g. the test session's)."""
    if daemon is not None:
        daemon.stop()


# The sample card behind a VpcdBridge in a process of its own, as a card is outside the
# terminal (and as vicc is): the measuring process runs only the client.
_SERVE = (
    "import sys\n"
    "from simulators.issuer import sample_card\n"
    "from simulators.vpcd import VpcdBridge\n"
    "VpcdBridge(sample_card(), port=int(sys.argv[1])).serve_forever()\n"
)


@contextlib.contextmanager
def card_process(argv: list[str], port: int, env: dict[str, str] | None = None,
                 what: str = "card", name: str | None = None) -> Iterator[str]:
    """Run ``argv`` (a card that connects to vpcd on ``port``) until the block ends;
    yields the reader's name (``name``, else vpcd's default for the port) once pcscd sees the card."""
    name = name or reader_name(port)
    # a card an earlier user left may show until pcscd's next poll
    wait_for(functools.partial(card_seen, name, present=False), 5, 0.05)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        try:
            if not wait_for(lambda: proc.poll() is not None or card_seen(name), 15, 0.05) or proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-600:]
                raise RuntimeError(f"pcscd does not see the {what} in {name!r} (exit {proc.poll()}): {tail}")
            yield name
        finally:
            end_process(proc)
            wait_for(functools.partial(card_seen, name, present=False), 5, 0.05)


def served_sample_card(port: int) -> contextlib.AbstractContextManager[str]:
    """The simulated social security card (``sample_card()``) in the vpcd slot on ``port``."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return card_process([sys.executable, "-c", _SERVE, str(port)], port, {"PYTHONPATH": path},
                        "simulated card")


class BareClient:
    """pyscard's ``smartcard.scard`` and nothing of ours: a context, a SHARED connection,
    ``SCardTransmit`` with lists of ints (what pyscard wants and gives)."""

    def __init__(self, reader: str) -> None:
        from smartcard import scard

        self.scard = scard
        hresult, self.ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        self._check(hresult, "establish context")
        hresult, self.card, protocol = scard.SCardConnect(
            self.ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        self._check(hresult, f"connect to {reader!r}")
        self.pci = scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0

    def _check(self, hresult: int, what: str) -> None:
        if hresult != 0:
            raise RuntimeError(f"{what}: {self.scard.SCardGetErrorMessage(hresult)} (0x{hresult & 0xFFFFFFFF:08X})")

    def transmit(self, apdu: list[int]) -> list[int]:
        hresult, response = self.scard.SCardTransmit(self.card, self.pci, apdu)
        if hresult != 0:
            self._check(hresult, "transmit")
        return response  # type: ignore[no-any-return]

    def close(self) -> None:
        s: Any = self.scard
        with contextlib.suppress(Exception):
            s.SCardDisconnect(self.card, s.SCARD_LEAVE_CARD)
        with contextlib.suppress(Exception):
            s.SCardReleaseContext(self.ctx)
