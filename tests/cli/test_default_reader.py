"""No silent simulated card (issue 20 item 1, DESIGN.md "Readers are named by URI"): without
--reader a command uses $YKT_READER, else the first PC/SC reader holding a card, else says in one
line that there is none (exit 3); the sample card never writes a journal nobody named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.vpcd import VpcdBridge
from tests.cards import EchoCard
from tests.pcsc_support import Pcscd, pcscd, vpcd_card  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def ykt(args: list[str], tmp_path: Path, **env: str) -> tuple[int, str, str]:
    """``ykt ARGS`` in a process of its own, with its data and state folders in ``tmp_path``."""
    base = {k: v for k, v in os.environ.items() if k != "YKT_READER"}
    base.update(XDG_DATA_HOME=str(tmp_path / "data"), YKT_STATE_DIR=str(tmp_path / "state"), **env)
    out = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=base, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout, out.stderr


def no_pcscd(tmp_path: Path) -> dict[str, str]:
    """pcsc-lite pointed at a socket nobody listens on: no PC/SC service at all."""
    return {"PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}


@pytest.mark.parametrize("args", [
    ["card", "info"], ["card", "history"], ["card", "pin", "verify", "--pin", "123456"],
    ["purse", "balance"], ["purse", "purchase", "--amount", "200"], ["purse", "load", "--amount", "100"],
    ["apdu", "00A4040000"], ["bench", "--count", "1"],
], ids=" ".join)
def test_without_a_reader_one_line_exit_3_naming_the_sample_card(args: list[str], tmp_path: Path) -> None:
    code, out, err = ykt(args, tmp_path, **no_pcscd(tmp_path))
    assert (code, out) == (3, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: no card reader (") and "--reader sim tries the built-in sample card" in err
    assert not (tmp_path / "data" / "yikatong" / "journal.db").exists()


def test_a_gate_on_no_reader_does_not_start(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text('[terminal]\nrole = "bus_validator"\n[fares]\nflat = 200\n', encoding="utf-8")
    code, _, err = ykt(["validator", "run", "--config", str(config), "--max-taps", "1"], tmp_path, **no_pcscd(tmp_path))
    assert code == 3 and "--reader sim" in err and len(err.splitlines()) == 1


def test_ykt_reader_names_the_reader(tmp_path: Path) -> None:
    code, out, _ = ykt(["card", "info", "--json"], tmp_path, YKT_READER="sim?seed=7", **no_pcscd(tmp_path))
    assert code == 0
    assert json.loads(out)["app_serial"] == json.loads(
        ykt(["card", "info", "--json", "--reader", "sim?seed=7"], tmp_path)[1])["app_serial"]


def test_sample_card_transactions_never_enter_an_unnamed_journal(tmp_path: Path) -> None:
    """The issue's story: two purchases on the sample card 'succeeded' into ~/.local/share/yikatong."""
    for _ in range(2):
        code, out, err = ykt(["purse", "purchase", "--reader", "sim", "--amount", "200", "--json"], tmp_path)
        assert code == 0, err
        assert "journal: none kept for the built-in sample card" in err
    assert not (tmp_path / "data" / "yikatong" / "journal.db").exists()
    named = tmp_path / "named.db"
    code, _, _ = ykt(["purse", "purchase", "--reader", "sim", "--amount", "200", "--journal", str(named)], tmp_path)
    assert code == 0 and named.exists()
    card = tmp_path / "card.json"
    assert ykt(["sim", "new", "--out", str(card)], tmp_path)[0] == 0
    code, _, err = ykt(["purse", "purchase", "--reader", f"sim:{card}", "--amount", "200"], tmp_path)
    assert code == 0 and f"journal: {tmp_path / 'data' / 'yikatong' / 'journal.db'}" in err  # an image is a card


def test_sim_new_without_seed_never_repeats_a_serial(tmp_path: Path) -> None:
    serials = []
    for i in range(3):
        code, out, _ = ykt(["sim", "new", "--out", str(tmp_path / f"c{i}.json"), "--json"], tmp_path)
        assert code == 0
        serials.append(json.loads(out)["app_serial"])
    code, out, _ = ykt(["sim", "new", "--out", str(tmp_path / "many"), "--count", "20", "--json"], tmp_path)
    serials += [card["app_serial"] for card in json.loads(out)]
    assert len(set(serials)) == len(serials) == 23
    again = [json.loads(ykt(["sim", "new", "--out", str(tmp_path / f"s{i}.json"), "--seed", "5", "--json"],
                            tmp_path)[1]) for i in range(2)]
    assert again[0]["app_serial"] == again[1]["app_serial"] and again[0]["seed"] == 5  # a seed repeats, as asked


def test_demo_keeps_its_embedded_default_and_says_so(tmp_path: Path) -> None:
    code, out, _ = ykt(["demo", "--out", str(tmp_path / "demo")], tmp_path, **no_pcscd(tmp_path))
    assert code == 0 and "cards read through: the in-process field (sim)" in out


@pytest.mark.pcsc
def test_the_first_pcsc_reader_holding_a_card(vpcd_card: Callable[..., VpcdBridge], tmp_path: Path) -> None:  # noqa: F811
    """As scriptor and opensc-tool: the reader with a card, named on stderr; the PSAM default
    announced beside a real card reader."""
    card = EchoCard()
    vpcd_card(card)
    code, out, err = ykt(["apdu", "00A4040000", "--json"], tmp_path)
    assert code == 0, err
    assert "reader: pcsc:0 (Virtual PCD 00 00)" in err.splitlines()
    assert json.loads(out)[0]["sw"] == "9000"



@pytest.mark.pcsc
def test_the_psam_default_is_announced_beside_a_real_card_reader(vpcd_card: Callable[..., VpcdBridge],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    from simulators.issuer import sample_card
    from terminal.journal import Journal

    vpcd_card(sample_card(3))
    journal = tmp_path / "j.db"
    code, out, err = ykt(["purse", "purchase", "--amount", "150", "--journal", str(journal)], tmp_path)
    assert code == 0, err
    assert "reader: pcsc:0 (Virtual PCD 00 00)" in err
    assert "note: PSAM slot is the simulated TEST ONLY issuer's PSAM" in err
    with Journal(journal, create=False, readonly=True) as j:
        assert [(r.amount, r.test) for r in j.records()] == [(150, True)]
