"""Our PN532 driver against the PN532 emulator over a real pseudo-terminal, and libnfc's nfc-list."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from cardlib.channel import Channel
from cardlib.errors import (
    CardRemovedError,
    MultipleCardsError,
    NoCardError,
    ReaderTimeoutError,
    ReaderUnavailableError,
)
from cardlib.readers.pn532 import Pn532Reader
from cardlib.readers.registry import open_reader
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
