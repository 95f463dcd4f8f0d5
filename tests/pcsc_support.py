"""pcscd for tests: use a running one, or start one (and stop only that one).

Without root, pyscard, pcscd or the vpcd driver the PC/SC tests skip with a
reason, except with CI=true, where they fail loudly: CI must run them.
Test modules import the fixtures: ``from tests.pcsc_support import pcscd, vpcd_card  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from simulators.field import wait_for

if TYPE_CHECKING:
    from cardlib.readers.base import Card
    from simulators.vpcd import VpcdBridge

SOCKET = Path("/run/pcscd/pcscd.comm")
PID_FILE = Path("/run/pcscd/pcscd.pid")
DRIVERS = Path("/usr/lib/pcsc/drivers")
VPCD_PORT = 35963
VPCD_READER = "Virtual PCD 00 00"
#: the station's vpcd slots (4 lanes + 2 PSAMs): below 32768, out of Linux's ephemeral range (32768-60999)
#: where other sockets of the same run (a Dask cluster's) may take a port before vpcd binds it
STATION_PORTS = tuple(range(29900, 29906))
STATION_CONF = Path("/etc/reader.conf.d/yikatong-station")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}: .ci/setup-system.sh installs it and tests start pcscd as root")
    pytest.skip(reason)


def answers() -> bool:
    """Whether a pcscd answers on its socket (a context can be established)."""
    try:
        from smartcard import scard
    except ImportError:
        return False
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != 0:
        return False
    scard.SCardReleaseContext(ctx)
    return True


def pid_in_file() -> int | None:
    """The pid pcscd wrote (the file ends in a NUL byte), or None."""
    try:
        text = PID_FILE.read_bytes().rstrip(b"\0\n ")
        return int(text)
    except (OSError, ValueError):
        return None


def end_process(proc: subprocess.Popen[Any]) -> None:
    """TERM, KILL after 5 s, and reap (an unreaped pcscd or card process blocks the next one)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Pcscd:
    """The pcscd of this test session; ``owned`` when we started it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        fd, name = tempfile.mkstemp(prefix="pcscd-", suffix=".log")
        os.close(fd)
        self.log = Path(name)

    @property
    def owned(self) -> bool:
        return self.proc is not None

    def start(self) -> None:
        """``pcscd -f`` in the foreground, logging to a temp file; returns once it answers."""
        stale = pid_in_file()
        if stale is not None and not _alive(stale):
            PID_FILE.unlink(missing_ok=True)  # left by a pcscd killed hard: pcscd would refuse to start
        with open(self.log, "ab") as fh:
            proc = subprocess.Popen(["pcscd", "-f"], stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.proc = proc
        up = wait_for(lambda: proc.poll() is not None or (SOCKET.exists() and answers()), 10, 0.01)
        if not up or proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-800:]
            self.stop()
            raise RuntimeError(f"pcscd did not come up (pid file {PID_FILE}: {stale}); log {self.log}:\n{tail}")

    def stop(self) -> None:
        """TERM and reap the one we started (an unreaped pcscd blocks the next start)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        end_process(proc)
        wait_for(lambda: not SOCKET.exists(), 2)

    def restart(self) -> None:
        """Stop and start again (only for the pcscd we own)."""
        assert self.owned, "restart only a pcscd this session started"
        self.stop()
        self.start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still has a pid but is gone
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3]
    except OSError:
        return True


_SHARED: Pcscd | None = None  # one per test process, however many modules import the fixture
_MACHINE_LOCK: int | None = None
LOCK_FILE = Path(tempfile.gettempdir()) / "yikatong-pcsc.lock"


LOCK_FD_ENV = "YKT_PCSC_LOCK_FD"


def _inherited_lock() -> int | None:
    """The lock's descriptor when a parent holds it for us (``python -m tests.pcsc_support CMD``):
    $YKT_PCSC_LOCK_FD names a descriptor on LOCK_FILE that this process inherited, locked."""
    import fcntl

    text = os.environ.get(LOCK_FD_ENV, "")
    if not text.isdigit():
        return None
    fd = int(text)
    try:
        if (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != (LOCK_FILE.stat().st_dev, LOCK_FILE.stat().st_ino):
            return None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file: succeeds only if it is ours
    except OSError:
        return None
    return fd


def hold_machine_lock() -> None:
    """Hold the machine-wide PC/SC lock until this process exits.

    pcscd and the vpcd ports are one per machine: two test runs at once (two
    work trees) would stop each other's pcscd or serve cards on the same port.
    A run started under ``python -m tests.pcsc_support CMD`` finds the lock
    already held for it (the wrapper waits for it without pytest's timeout).
    """
    global _MACHINE_LOCK
    if _MACHINE_LOCK is not None:
        return
    import fcntl

    inherited = _inherited_lock()
    if inherited is not None:
        _MACHINE_LOCK = inherited
        return
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _MACHINE_LOCK = fd


#: vpcd keeps its ports in the driver's globals: two reader.conf entries on one LIBPATH share one
#: driver and its last entry's ports (every slot 0 answers on that port). Each station entry loads its
#: own copy of the driver, so each keeps its ports and the default "Virtual PCD" keeps 35963/35964.
STATION_DRIVERS = Path("/usr/local/lib/yikatong")


def station_conf_text() -> str:
    """reader.conf entries for STATION_PORTS: vpcd gives each entry two slots (port, port + 1); the
    friendly name carries the entry's port so a reader's name says its port."""
    out = ["# yikatong station tests: vpcd slots on ports 29900-29905 (tests/pcsc_support.py)"]
    for base in STATION_PORTS[::2]:
        out += [f'FRIENDLYNAME "YKT vpcd {base}"', f"DEVICENAME   /dev/null:{base:#06x}",
                f"LIBPATH      {STATION_DRIVERS}/libifdvpcd-{base}.so", f"CHANNELID    {base:#06x}"]
    return "".join(line + "\n" for line in out)


def station_reader(port: int) -> str:
    """The PC/SC reader name of a station slot's port (29901 → "YKT vpcd 29900 00 01")."""
    if port not in STATION_PORTS:
        raise ValueError(f"{port} is not a station slot port ({STATION_PORTS[0]}-{STATION_PORTS[-1]})")
    base = port - (port - STATION_PORTS[0]) % 2
    return f"YKT vpcd {base} 00 {port - base:02d}"


def install_station_conf() -> bool:
    """Write STATION_CONF and the driver copies it names when missing or different (root only; before
    pcscd starts: it reads reader.conf.d once). True when something was written."""
    drivers = sorted(DRIVERS.rglob("libifdvpcd.so*")) if DRIVERS.exists() else []
    if os.geteuid() != 0 or not STATION_CONF.parent.is_dir() or not drivers:
        return False
    source = drivers[0].read_bytes()
    wrote = False
    STATION_DRIVERS.mkdir(parents=True, exist_ok=True)
    for base in STATION_PORTS[::2]:
        copy = STATION_DRIVERS / f"libifdvpcd-{base}.so"
        if not copy.exists() or copy.read_bytes() != source:
            copy.write_bytes(source)
            wrote = True
    text = station_conf_text()
    try:
        same = STATION_CONF.read_text() == text
    except OSError:
        same = False
    if not same:
        STATION_CONF.write_text(text)
        wrote = True
    return wrote


def missing_station_readers() -> list[str]:
    """The station slots the running pcscd does not list."""
    from cardlib.readers.pcsc import list_pcsc_readers

    have = {r.name for r in list_pcsc_readers()}
    return [station_reader(p) for p in STATION_PORTS if station_reader(p) not in have]


def ensure_pcscd() -> Pcscd:
    """A pcscd with the vpcd driver: the running one, or one we start (skip or, on CI, fail)."""
    global _SHARED
    hold_machine_lock()
    if _SHARED is not None and (_SHARED.owned or (SOCKET.exists() and answers())):
        return _SHARED
    try:
        import smartcard  # noqa: F401
    except ImportError:
        _unavailable("pyscard is not installed (pip install 'yikatong[pcsc]')")
    if shutil.which("pcscd") is None:
        _unavailable("pcscd is not installed (apt install pcscd)")
    if not DRIVERS.exists() or not list(DRIVERS.rglob("libifdvpcd*")):
        _unavailable("the vpcd driver is not installed (apt install vsmartcard-vpcd)")
    daemon = Pcscd()
    if not (SOCKET.exists() and answers()):
        if os.geteuid() != 0:
            _unavailable("pcscd is not running and starting it needs root")
        install_station_conf()  # read by pcscd at start only
        daemon.start()
    _SHARED = daemon
    return daemon


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    """The session's pcscd; stopped at the end only if this session started it."""
    daemon = ensure_pcscd()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def station_slots(pcscd: Pcscd) -> Pcscd:
    """pcscd with the station's six vpcd slots: configured and restarted when it is ours; a pcscd this
    session did not start and that lacks them fails the test with what to do (never restarted)."""
    missing = missing_station_readers()
    if missing and pcscd.owned and install_station_conf():
        pcscd.restart()
        missing = missing_station_readers()
    if missing:
        pytest.fail(station_slots_problem(missing))
    return pcscd


def station_slots_problem(missing: list[str]) -> str:
    """What the ``station_slots`` fixture fails with: one line naming the missing readers, their
    ports and what to do."""
    return (f"pcscd lacks the station's vpcd slots {', '.join(missing)} (ports"
            f" {STATION_PORTS[0]}-{STATION_PORTS[-1]}): run .ci/setup-system.sh as root (it writes"
            f" {STATION_CONF}) and restart pcscd, or stop it and let the tests start their own")


def card_seen(reader: str = VPCD_READER, present: bool = True) -> bool:
    """Whether pcscd reports a card (or none) in ``reader``."""
    from cardlib.readers.pcsc import list_pcsc_readers

    with contextlib.suppress(Exception):
        return any(r.name == reader and r.card_present == present for r in list_pcsc_readers())
    return False


@pytest.fixture
def vpcd_card(pcscd: Pcscd) -> Iterator[Callable[..., VpcdBridge]]:
    """``vpcd_card(card)`` serves ``card`` on port 35963 and returns the bridge once pcscd sees it."""
    from simulators.vpcd import VpcdBridge

    bridges: list[VpcdBridge] = []

    def serve(card: Card, port: int = VPCD_PORT) -> VpcdBridge:
        from simulators.vpcd import reader_name

        # a card an earlier test left may still show until pcscd's next poll: same ATR, dead link
        wait_for(functools.partial(card_seen, reader_name(port), present=False), 5, 0.05)
        bridge = VpcdBridge(card, port=port).start()
        bridges.append(bridge)
        if not wait_for(lambda: card_seen(bridge.reader_name), 10, 0.05):
            raise RuntimeError(f"pcscd does not see the card in {bridge.reader_name!r}; log {pcscd.log}")
        return bridge

    yield serve
    for bridge in bridges:
        bridge.stop()
        wait_for(functools.partial(card_seen, bridge.reader_name, present=False), 5, 0.05)


def _main(argv: list[str]) -> int:
    """``python -m tests.pcsc_support CMD ARGS…``: wait for the machine-wide PC/SC lock (however long
    other work trees hold it), then run CMD holding it; the test runs inside find it theirs."""
    import fcntl

    if not argv:
        print("usage: python -m tests.pcsc_support CMD [ARGS...]", file=sys.stderr)
        return 2
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return subprocess.call(argv, pass_fds=(fd,), env={**os.environ, LOCK_FD_ENV: str(fd)})


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
