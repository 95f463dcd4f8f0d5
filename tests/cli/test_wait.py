"""`--wait [SECONDS]` on card commands (as `opensc-tool -w`): through real pcscd and vpcd, the
card arrives after the command started; without a card the wait ends in one line, exit 3."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.field import wait_for
from simulators.issuer import sample_card
from simulators.vpcd import VpcdBridge
from tests.cli.pty_session import ykt_command
from tests.pcsc_support import VPCD_READER, Pcscd, card_seen, pcscd, vpcd_card  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
READER = f"pcsc:{VPCD_READER}"


def _no_card_in_the_reader() -> None:
    assert wait_for(functools.partial(card_seen, VPCD_READER, present=False), 10, 0.05), "a card is in vpcd"


@pytest.mark.pcsc
@pytest.mark.parametrize("command", [["card", "info", "--json"], ["shell"]], ids=["card-info", "shell"])
def test_a_command_waits_for_the_card_that_comes(vpcd_card: Callable[..., VpcdBridge],  # noqa: F811
                                                  command: list[str]) -> None:
    _no_card_in_the_reader()
    proc = subprocess.Popen(ykt_command() + command + ["--reader", READER, "--wait", "60"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()  # no card yet: still waiting, not failed
        vpcd_card(sample_card(3))
        out, err = proc.communicate("balance\n", timeout=60)  # the shell's one command, on stdin
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    if command[0] == "card":
        info = json.loads(out)
        assert info["balance"] == 5000 and len(info["app_serial"]) == 20
    else:
        assert "balance 5000 fen (¥50.00)" in out


@pytest.mark.pcsc
def test_without_a_card_the_wait_ends_in_one_line(pcscd: Pcscd, tmp_path: Path) -> None:  # noqa: F811
    _no_card_in_the_reader()
    done = subprocess.run(ykt_command() + ["apdu", "--reader", READER, "--wait=0.5", "00A4040008A000000632010105"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        3, "", f"error: no card in {VPCD_READER} after waiting 0.5 s\n")
    # the terminal path (card and PSAM slots) waits the same way, and journals nothing
    journal = tmp_path / "journal.db"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}  # the simulated PSAM's state
    done = subprocess.run(ykt_command() + ["purse", "purchase", "--amount", "100", "--journal", str(journal),
                                           "--reader", READER, "--wait", "0.5"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr.splitlines()[-1] == f"error: no card in {VPCD_READER} after waiting 0.5 s"
    assert len(done.stderr.splitlines()) <= 2  # at most the PSAM announcement before it
    assert not journal.exists()


@pytest.mark.usefixtures("allow_py")  # a py: reader runs code: allowed explicitly
def test_a_polled_reader_waits_too_and_without_wait_fails_at_once() -> None:
    """The readers without card events poll presence (Reader.wait_for_card's default)."""
    empty = "py:tests.cards:no_card"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "YKT_ALLOW_PY": "tests.cards"}  # the factory is code: allowed
    done = subprocess.run(ykt_command() + ["script", "-", "--reader", empty, "--wait", "0.3"], input="0084000008\n",
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (3, f"error: no card in {empty} after waiting 0.3 s\n")
    done = subprocess.run(ykt_command() + ["apdu", "--reader", empty, "0084000008"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (3, f"error: no card in {empty}\n")
