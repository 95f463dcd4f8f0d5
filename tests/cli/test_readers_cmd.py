"""`ykt readers` and `ykt watch`: PC/SC on the real pcscd + vpcd, serial probing on a
PN532 emulated behind a pseudo-terminal, events of a py: reader."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from simulators.vpcd import VpcdBridge
from tests.cards import EchoCard
from tests.pcsc_support import Pcscd, pcscd, vpcd_card  # noqa: F401

pytestmark = pytest.mark.usefixtures("allow_py")  # these tests open py: readers (code: allowed explicitly)

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_without_pyscard_pcsc_is_one_line_and_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smartcard", None)
    code, out, err = run("readers")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0] == ("PC/SC: PC/SC support needs pyscard: pip install 'yikatong[pcsc]' "
                        "(and Debian: apt install pcscd libpcsclite-dev)")
    assert lines[1] == "schemes: pcsc, pn532, py, sim, trace"
    code, out, _ = run("readers", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["pcsc"] == [] and "pyscard" in obj["pcsc_error"] and "sim" in obj["schemes"]


@pytest.mark.pcsc
def test_readers_lists_the_virtual_reader_with_its_card(vpcd_card: Callable[..., VpcdBridge]) -> None:  # noqa: F811
    card = EchoCard()
    vpcd_card(card)
    code, out, _ = run("readers", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["pcsc"]}
    assert rows["Virtual PCD 00 00"] == {"uri": "pcsc:0", "index": 0, "name": "Virtual PCD 00 00",
                                         "card_present": True, "atr": card.atr.hex().upper()}
    assert rows["Virtual PCD 00 01"]["card_present"] is False and rows["Virtual PCD 00 01"]["atr"] == ""
    code, out, _ = run("readers")
    assert "pcsc:0  Virtual PCD 00 00  (card 3B80800101)" in out.splitlines()
    assert "pcsc:1  Virtual PCD 00 01  (no card)" in out.splitlines()


@pytest.fixture
def pn532_port(tmp_path: Path) -> Iterator[str]:
    from simulators.pn532 import Pn532Emulator

    emulator = Pn532Emulator([EchoCard()])
    path = emulator.start(str(tmp_path / "ttyPN532"))
    yield path
    emulator.stop()


@pytest.mark.pty
def test_probe_serial_finds_a_pn532(pn532_port: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyNONE")
    code, out, _ = run("readers", "--probe-serial", pn532_port, missing, "--json")
    assert code == 0
    found, absent = json.loads(out)["serial"]
    assert found["pn532"] is True and found["uri"] == f"pn532:{pn532_port}"
    assert found["firmware"].startswith("32") and found["version"]  # IC 0x32 = PN532
    assert absent["pn532"] is False and "cannot open serial port" in absent["error"]
    code, out, _ = run("readers", "--probe-serial", pn532_port)
    assert f"pn532:{pn532_port}  PN532 firmware {found['version']}" in out


def test_ports_need_probe_serial() -> None:
    code, _, err = run("readers", "/dev/ttyUSB0")
    assert code == 2 and "--probe-serial" in err


def test_watch_a_polled_reader_json() -> None:
    code, out, _ = run("watch", "--reader", "py:tests.cards:EchoCard", "--count", "1", "--json")
    event = json.loads(out)
    assert code == 0
    assert (event["event"], event["reader"], event["atr"]) == ("card_inserted", "py:tests.cards:EchoCard",
                                                               "3B80800101")
    assert event["time"].endswith("+08:00")


def test_watch_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "watch", "--reader", "py:tests.cards:EchoCard"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert "card_inserted" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    assert proc.stderr is not None and proc.stderr.read() == ""


@pytest.mark.pcsc
def test_watch_pcsc_sees_readers_and_the_card(vpcd_card: Callable[..., VpcdBridge]) -> None:  # noqa: F811
    card = EchoCard()
    vpcd_card(card)
    from cardlib.readers.pcsc import list_pcsc_readers

    n = len(list_pcsc_readers())  # vpcd's two, and the station tests' six where they are configured
    done = subprocess.run([sys.executable, "-m", "cli.main", "watch", "--json", "--count", str(n + 1)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["reader_added"] * n + ["card_inserted"]
    assert events[n] == {**events[n], "reader": "Virtual PCD 00 00", "atr": card.atr.hex().upper()}
