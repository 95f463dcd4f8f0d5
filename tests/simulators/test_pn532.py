"""Our PN532 driver against the PN532 emulator over a real pseudo-terminal, libnfc's nfc-list
and nfc-poll, and the SetSerialBaudRate exchange byte by byte."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import termios
import time
import tty
from collections.abc import Iterator

import pytest

from cardlib.channel import Channel
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MultipleCardsError,
    NoCardError,
    ReaderTimeoutError,
    ReaderUnavailableError,
)
from cardlib.readers.pn532 import Pn532Reader
from cardlib.readers.pn532_frames import (
    ACK,
    ERROR,
    GET_FIRMWARE_VERSION,
    SET_SERIAL_BAUD_RATE,
    command,
)
from cardlib.readers.registry import open_reader
from simulators.field import wait_for
from simulators.issuer import sample_card
from simulators.pn532 import Pn532Emulator
from tests.cards import EchoCard

pytestmark = pytest.mark.pty
SELECT = bytes.fromhex("00A4040008A000000632010105")


def _need_pty() -> None:
    if not hasattr(os, "openpty"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no pseudo-terminals")
        pytest.skip("no pseudo-terminals here")


@pytest.fixture
def emulator() -> Iterator[Pn532Emulator]:
    _need_pty()
    e = Pn532Emulator([sample_card(seed=2)])
    e.start()
    yield e
    e.stop()


def reader(e: Pn532Emulator, **opts: str) -> Pn532Reader:
    query = "&".join(f"{k}={v}" for k, v in opts.items())
    r = open_reader(f"pn532:{e.path}" + (f"?{query}" if query else ""))
    assert isinstance(r, Pn532Reader)
    return r


def test_firmware_select_and_apdus(emulator: Pn532Emulator) -> None:
    r = reader(emulator)
    assert r.firmware == bytes.fromhex("32010607")
    atr = r.connect()
    assert atr == emulator.cards[0].atr  # pseudo-ATR rebuilt from the ATS
    resp = Channel(r).transmit(SELECT)
    assert resp.ok and resp.data[:1] == b"\x6f"
    assert r.is_card_present()
    r.close()


def test_chaining_both_ways(emulator: Pn532Emulator) -> None:
    emulator.remove()
    emulator.insert(EchoCard())
    r = reader(emulator)
    r.connect()
    data = bytes(i & 0xFF for i in range(700))
    apdu = bytes.fromhex("00DA0000") + b"\x00" + len(data).to_bytes(2, "big") + data
    assert r.transmit(apdu) == data + b"\x90\x00"
    assert any(cmd[0] == 0x40 and cmd[1] & 0x40 for cmd in emulator.log)  # MI set on the way in
    r.close()


def test_two_cards_and_no_card(emulator: Pn532Emulator) -> None:
    emulator.insert(sample_card(seed=3))
    r = reader(emulator)
    with pytest.raises(MultipleCardsError):
        r.connect()
    emulator.remove()
    with pytest.raises(NoCardError):
        r.connect()
    assert not r.is_card_present()
    r.close()


def test_card_taken_away_and_back(emulator: Pn532Emulator) -> None:
    card = emulator.cards[0]
    r = reader(emulator)
    r.connect()
    emulator.remove(card)
    with pytest.raises(CardRemovedError, match="status 01"):
        r.transmit(SELECT)
    emulator.insert(card)
    assert r.wait_for_card(2)
    r.connect()
    assert Channel(r).transmit(SELECT).ok
    r.close()


def test_nack_garbage_and_timeout(emulator: Pn532Emulator) -> None:
    r = reader(emulator, timeout="0.3")
    r.connect()
    emulator.inject_nack(2)
    assert Channel(r).transmit(SELECT).ok
    emulator.inject_garbage(b"\x13\x37\x00\xff\x05")
    assert Channel(r).transmit(SELECT).ok
    emulator.drop_next_response()
    with pytest.raises(ReaderTimeoutError):
        r.transmit(SELECT)
    assert Channel(r).transmit(SELECT).ok  # cancelled with an ACK; the link recovers
    r.close()


def test_nothing_on_the_line(tmp_path: object) -> None:
    _need_pty()
    master, slave = os.openpty()
    try:
        with pytest.raises(ReaderUnavailableError, match="no PN532 answering"):
            open_reader(f"pn532:{os.ttyname(slave)}?timeout=0.1&retries=1")
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(ReaderUnavailableError, match="cannot open serial port"):
        open_reader("pn532:/dev/does-not-exist")


def test_nfc_list_accepts_the_emulator(emulator: Pn532Emulator) -> None:
    if shutil.which("nfc-list") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but nfc-list (libnfc-bin) is not installed")
        pytest.skip("nfc-list (libnfc-bin) is not installed")
    env = dict(os.environ, LIBNFC_DEVICE=f"pn532_uart:{emulator.path}")
    done = subprocess.run(["nfc-list"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 ISO14443A passive target(s) found" in done.stdout
    assert "SAK (SEL_RES): 20" in done.stdout
    assert "59  4b  54" in done.stdout  # the card's historical bytes in the ATS ("YKT")


def test_nfc_poll_lists_the_card_until_it_leaves(emulator: Pn532Emulator) -> None:
    """nfc-poll asks with InAutoPoll, then checks presence with R(NAK) blocks through
    InCommunicateThru until the card leaves the field."""
    if shutil.which("nfc-poll") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but nfc-poll (libnfc-examples) is not installed")
        pytest.skip("nfc-poll (libnfc-examples) is not installed")
    env = dict(os.environ, LIBNFC_DEVICE=f"pn532_uart:{emulator.path}")
    proc = subprocess.Popen(["nfc-poll"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # listed, then presence checks: R(NAK) (B2) through InCommunicateThru (42)
        assert wait_for(lambda: bytes.fromhex("42B2") in emulator.log, 30)
        assert any(cmd[0] == 0x60 for cmd in emulator.log)  # InAutoPoll
        emulator.remove()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "ISO/IEC 14443A (106 kbps) target" in out and "59  4b  54" in out
        assert "Waiting for card removing...done." in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- SetSerialBaudRate (UM0701-02 §7.2.8) ---------------------------------------------------------

#: The frames nfcpy's pn532 driver writes and expects for 921,600 baud (nfcpy 1.0.4,
#: nfc/clf/pn532.py, init()): BR 07, and the answer D5 11.
SET_921600 = bytes.fromhex("0000FF03FDD4100715" "00")
SET_ANSWER = bytes.fromhex("0000FF02FED5111A00")


def _speed(fd: int) -> int:
    return termios.tcgetattr(fd)[4]


def _read_exactly(fd: int, n: int, timeout: float = 2.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            out += os.read(fd, n - len(out))
    return out


@pytest.fixture
def host_line(emulator: Pn532Emulator) -> Iterator[int]:
    """The host's side of the emulator's pty, raw, opened at 115,200 baud."""
    fd = os.open(emulator.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = termios.B115200
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    yield fd
    os.close(fd)


def test_set_serial_baud_rate_exchange_byte_exact(emulator: Pn532Emulator, host_line: int) -> None:
    assert SET_921600 == command(SET_SERIAL_BAUD_RATE, b"\x07")
    os.write(host_line, SET_921600)
    assert _read_exactly(host_line, len(ACK) + len(SET_ANSWER)) == ACK + SET_ANSWER
    # answered at the old speed; nothing switches before the host's ACK
    assert emulator.baud == 115200 and _speed(emulator._master) == termios.B115200
    os.write(host_line, ACK)
    assert wait_for(lambda: emulator.baud == 921600, 2)
    assert _speed(emulator._master) == termios.B921600  # set by the emulator on its side of the pty
    os.write(host_line, command(GET_FIRMWARE_VERSION))  # and it keeps answering
    assert _read_exactly(host_line, 6 + 13) == ACK + bytes.fromhex("0000FF06FAD50332010607E800")


def test_refused_speed_and_a_command_instead_of_the_ack(emulator: Pn532Emulator, host_line: int) -> None:
    emulator.max_baud = 115200
    os.write(host_line, SET_921600)
    assert _read_exactly(host_line, len(ACK) + len(ERROR)) == ACK + ERROR  # the application error frame
    assert emulator.baud == 115200
    emulator.max_baud = 921600
    os.write(host_line, SET_921600)
    assert _read_exactly(host_line, len(ACK) + len(SET_ANSWER)) == ACK + SET_ANSWER
    os.write(host_line, command(GET_FIRMWARE_VERSION))  # no ACK, and the host still at 115,200
    assert _read_exactly(host_line, 6 + 13)[6:] == bytes.fromhex("0000FF06FAD50332010607E800")
    assert emulator.baud == 115200 and _speed(emulator._master) == termios.B115200


def test_driver_raises_the_line_to_921600(emulator: Pn532Emulator) -> None:
    r = reader(emulator)
    assert r.baud == 921600 and r.port.baudrate == 921600
    assert wait_for(lambda: emulator.baud == 921600, 2)  # on our ACK, read by the emulator's thread
    assert _speed(emulator._master) == termios.B921600
    assert bytes.fromhex("1007") in emulator.log
    r.connect()
    assert Channel(r).transmit(SELECT).ok
    r.close()
    assert wait_for(lambda: emulator.baud == 115200, 2)  # back to the power-on speed for whoever opens it next
    assert emulator.log[-1] == bytes.fromhex("1004")


def test_driver_stays_at_115200_when_the_chip_refuses(emulator: Pn532Emulator) -> None:
    emulator.max_baud = 115200
    r = reader(emulator)
    assert r.baud == 115200 and r.port.baudrate == 115200
    assert bytes.fromhex("1007") in emulator.log  # asked, refused
    r.connect()
    assert Channel(r).transmit(SELECT).ok
    r.close()


def test_driver_at_115200_asks_nothing(emulator: Pn532Emulator) -> None:
    r = reader(emulator, baud="115200")
    assert r.baud == 115200
    assert not any(cmd[0] == SET_SERIAL_BAUD_RATE for cmd in emulator.log)
    r.close()
    with pytest.raises(FormatError, match="not a PN532 speed"):
        reader(emulator, baud="100000")
