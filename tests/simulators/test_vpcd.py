"""The vpcd bridge against a vpcd stand-in on a real TCP socket (framing, controls,
removal, reconnects), and `ykt sim serve` as a process. The bridge against the
real pcscd + vpcd driver is in tests/cardlib/test_pcsc_reader.py."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.errors import ProtocolError
from simulators.vpcd import (
    GET_ATR,
    MAX_MESSAGE,
    POWER_OFF,
    POWER_ON,
    RESET,
    VpcdBridge,
    frame,
    read_message,
    reader_name,
    serve_until_stopped,
)
from tests.cards import EchoCard

ROOT = Path(__file__).resolve().parents[2]


class FakeVpcd:
    """What the vpcd driver does on its port: accept one card, send it framed messages.

    Like Debian's vpcd it writes the length and the payload in two sends.
    """

    def __init__(self, port: int = 0) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1)
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 5) -> socket.socket:
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)
        return self.conn

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)))
        self.conn.sendall(payload)

    def ask(self, payload: bytes) -> bytes | None:
        self.send(payload)
        assert self.conn is not None
        return read_message(self.conn)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


class CountingCard(EchoCard):
    def __init__(self) -> None:
        super().__init__()
        self.resets = 0

    def reset(self) -> bytes:
        self.resets += 1
        return super().reset()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def bridge(vpcd: FakeVpcd) -> Iterator[VpcdBridge]:
    b = VpcdBridge(CountingCard(), port=vpcd.port, retry=0.02).start()
    vpcd.accept()
    assert vpcd.ask(bytes([GET_ATR])) == b.card.atr  # served, not only connected
    yield b
    b.stop()


# --- framing ---------------------------------------------------------------------------------


def test_frame_is_a_big_endian_length_then_the_payload() -> None:
    assert frame(b"\x3b\x00") == bytes.fromhex("00023B00")
    assert frame(bytes(MAX_MESSAGE))[:2] == b"\xff\xff"
    with pytest.raises(ProtocolError, match="65536"):
        frame(bytes(MAX_MESSAGE + 1))


@given(st.lists(st.binary(min_size=0, max_size=600), max_size=8), st.integers(1, 7))
def test_messages_survive_any_split_of_the_stream(payloads: list[bytes], piece: int) -> None:
    """One recv may return part of a message: the reader loops to the exact length."""
    a, b = socket.socketpair()
    try:
        stream = b"".join(frame(p) for p in payloads)

        def write() -> None:
            for i in range(0, len(stream), piece):
                a.sendall(stream[i:i + piece])

        writer = threading.Thread(target=write)
        writer.start()
        got = [read_message(b) for _ in payloads]
        writer.join()
        assert got == payloads
        a.close()
        assert read_message(b) is None  # the peer closed
    finally:
        a.close()
        b.close()


def test_a_truncated_message_is_a_closed_link() -> None:
    a, b = socket.socketpair()
    a.sendall(b"\x00\x05abc")
    a.close()
    assert read_message(b) is None
    b.close()


def test_reader_names_of_the_vpcd_ports() -> None:
    assert reader_name(35963) == "Virtual PCD 00 00"
    assert reader_name(35964) == "Virtual PCD 00 01"
    assert reader_name(40000) == "vpcd port 40000"


# --- the bridge ------------------------------------------------------------------------------


def test_controls_and_apdus(vpcd: FakeVpcd, bridge: VpcdBridge) -> None:
    card: CountingCard = bridge.card  # type: ignore[assignment]
    assert vpcd.ask(bytes([GET_ATR])) == card.atr
    vpcd.send(bytes([POWER_OFF]))
    assert vpcd.ask(bytes([GET_ATR])) == card.atr  # the presence poll is answered powered off too
    vpcd.send(bytes([POWER_ON]))
    vpcd.send(bytes([RESET]))
    assert vpcd.ask(bytes.fromhex("0084000004")) == bytes.fromhex("010203049000")  # no stray answers
    assert card.resets == 2 and list(bridge.controls) == [POWER_OFF, POWER_ON, RESET]
    data = bytes(range(256)) * 200
    assert vpcd.ask(bytes.fromhex("00DA000000") + len(data).to_bytes(2, "big") + data) == data + b"\x90\x00"
    assert bridge.apdus == 2
    assert vpcd.conn is not None
    sock = bridge._sock
    assert sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_failing_card_model_answers_6f00_and_keeps_serving(vpcd: FakeVpcd, bridge: VpcdBridge) -> None:
    assert vpcd.ask(b"\x00\xda") == bytes.fromhex("6F00")  # two bytes: not an APDU the card can decode
    assert vpcd.ask(bytes.fromhex("0084000001")) == bytes.fromhex("019000")


def test_a_torn_card_closes_the_link_and_stays_out_until_inserted(vpcd: FakeVpcd, bridge: VpcdBridge) -> None:
    card: CountingCard = bridge.card  # type: ignore[assignment]
    card.torn = True
    assert vpcd.ask(bytes.fromhex("0084000001")) is None  # socket closed = removal
    with pytest.raises(socket.timeout):
        vpcd.accept(timeout=0.3)  # no reconnect while removed
    card.torn = False
    bridge.insert()
    vpcd.accept()
    assert vpcd.ask(bytes([GET_ATR])) == card.atr


def test_remove_and_insert(vpcd: FakeVpcd, bridge: VpcdBridge) -> None:
    bridge.remove()
    assert vpcd.conn is not None and vpcd.conn.recv(1) == b""
    bridge.toggle()  # back in
    vpcd.accept()
    assert vpcd.ask(bytes([GET_ATR])) == bridge.card.atr
    assert bridge.connections == 2


def test_reconnects_when_vpcd_comes_up_late_and_after_it_restarts() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens on this port yet
    b = VpcdBridge(EchoCard(), port=port, retry=0.02).start()
    try:
        first = FakeVpcd(port)  # "pcscd" starts after the card
        first.accept()
        assert first.ask(bytes([GET_ATR])) == b.card.atr
        first.close()  # "pcscd" goes away ...
        second = FakeVpcd(port)  # ... and comes back
        second.accept()
        assert second.ask(bytes([GET_ATR])) == b.card.atr
        second.close()
    finally:
        b.stop()


def test_stdin_commands_and_sigusr1(vpcd: FakeVpcd) -> None:
    b = VpcdBridge(EchoCard(), port=vpcd.port, retry=0.02)

    def served() -> bool:
        vpcd.accept()
        return vpcd.ask(bytes([GET_ATR])) == b.card.atr  # the bridge serves this very link

    def closed() -> bool:
        assert vpcd.conn is not None
        return vpcd.conn.recv(1) == b""

    def lines() -> Iterator[str]:
        assert served()
        yield "remove\n"
        assert closed()
        yield "insert\n"
        assert served()
        os.kill(os.getpid(), signal.SIGUSR1)  # toggles: out
        assert closed()
        os.kill(os.getpid(), signal.SIGUSR1)  # and in again
        assert served()
        yield "bogus\n"
        yield "quit\n"
        raise AssertionError("read past quit")

    before = signal.getsignal(signal.SIGUSR1)
    serve_until_stopped(b, lines())
    assert b._stop.is_set() and b.connections >= 3
    assert signal.getsignal(signal.SIGUSR1) == before  # handler restored


# --- ykt sim serve ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulators.image import save_image
    from simulators.issuer import sample_card

    path = tmp_path_factory.mktemp("serve") / "card.json"
    save_image(sample_card(seed=9), path)
    return path


def _ykt(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_serve_to_vpcd_until_quit(image: Path, vpcd: FakeVpcd) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "sim", "serve", str(image), "--vpcd",
                             f"127.0.0.1:{vpcd.port}"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert f"vpcd at 127.0.0.1:{vpcd.port}" in proc.stdout.readline()
        vpcd.accept(timeout=20)
        atr = vpcd.ask(bytes([GET_ATR]))
        assert atr and atr[0] == 0x3B
        answer = vpcd.ask(bytes.fromhex("00A4040008A000000632010105"))
        assert answer is not None and answer[-2:] == b"\x90\x00"
        proc.stdin.write("remove\n")
        proc.stdin.flush()
        assert vpcd.conn is not None and vpcd.conn.recv(1) == b""
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_behind_a_pn532(image: Path, tmp_path: Path) -> None:
    link = tmp_path / "ttyPN532"
    done = _ykt("sim", "serve", str(image), "--pn532", "--link", str(link), "--json", stdin="quit\n")
    assert done.returncode == 0, done.stderr
    assert f'"pn532": "{link}"' in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    ([], "exactly one of"),
    (["--vpcd", "35963", "--pn532"], "exactly one of"),
    (["--vpcd", "host:port"], "expected [HOST:]PORT"),
    (["--vpcd", "35963", "--link", "/tmp/x"], "--link goes with --pn532"),
])
def test_serve_usage_errors(image: Path, args: list[str], message: str) -> None:
    done = _ykt("sim", "serve", str(image), *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_serve_a_missing_image(tmp_path: Path) -> None:
    done = _ykt("sim", "serve", str(tmp_path / "none.json"), "--vpcd", "35963")
    assert done.returncode == 2 and done.stderr.startswith("error:")


