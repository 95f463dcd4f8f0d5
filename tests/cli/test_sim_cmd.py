from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from tests.cli.terminal import on_a_terminal


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_new_show_and_apdu(tmp_path: Path) -> None:
    card = tmp_path / "elder.json"
    code, out, err = run("sim", "new", "--out", str(card), "--name", "沈明", "--birth-date", "1965-05-23",
                         "--card-type", "elder", "--region", "310000", "--balance", "8800", "--seed", "4", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["balance"] == 8800 and len(info["app_serial"]) == 20
    code, out, _ = run("sim", "show", str(card), "--json")
    shown = json.loads(out)
    assert shown["keys"]["dpk"]["key"] == "********" and shown["keys"]["dpk"]["index"] == 1
    assert shown["balance"] == 8800 and shown["kind"] == "card"
    code, out, _ = run("sim", "show", str(card), "--json", "--show-secrets")
    assert len(json.loads(out)["keys"]["dpk"]["key"]) == 32
    code, out, _ = run("apdu", "--reader", f"sim:{card}", "00A4040008A000000632010105", "805C000204", "--json")
    assert json.loads(out)[1]["data"] == f"{8800:08X}"


def test_same_seed_same_card(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run("sim", "new", "--out", str(a), "--seed", "9")
    run("sim", "new", "--out", str(b), "--seed", "9")
    assert a.read_text() == b.read_text()


def test_count_and_psam(tmp_path: Path) -> None:
    code, out, _ = run("sim", "new", "--out", str(tmp_path / "cards"), "--count", "3", "--algorithm", "sm4", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    assert len(list((tmp_path / "cards").glob("*.json"))) == 3
    code, out, _ = run("sim", "psam", "--out", str(tmp_path / "psam.json"), "--terminal-id", "0000000000A1", "--json")
    assert json.loads(out) == {"file": str(tmp_path / "psam.json"), "terminal_id": "0000000000A1", "kind": "local",
                               "key_index": 1, "test": True}


def test_bad_input(tmp_path: Path) -> None:
    code, _, err = run("sim", "new", "--out", str(tmp_path / "x.json"), "--birth-date", "1965-13-40")
    assert code == 2 and "YYYY-MM-DD" in err
    (tmp_path / "broken.json").write_text("[]")
    code, _, err = run("sim", "show", str(tmp_path / "broken.json"))
    assert code == 2 and err.count("\n") == 1
    code, _, err = run("sim", "new", "--out", str(tmp_path / "x.json"), "--issuer-keys", str(tmp_path / "nope.json"))
    assert code == 2 and "no such key file" in err


def test_a_plain_tunion_card(tmp_path: Path) -> None:
    """--kind tunion issues a purse-only card: no SSSE application, its type in 0x15 byte 28."""
    from simulators.image import load_card

    path = tmp_path / "tu.json"
    code, _, _ = run("sim", "new", "--out", str(path), "--kind", "tunion", "--card-type", "elder", "--seed", "3")
    assert code == 0
    card = load_card(path, persist=False)
    assert card.card_kind == "tunion" and card._purse_ef(0x15).data[28] == 0x01  # type: ignore[union-attr]
    assert card.process(bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"))[-2:] == b"\x6a\x82"  # type: ignore[union-attr]
    code, out, _ = run("sim", "show", str(path))
    fields = {line[:16].strip(): line[16:] for line in out.splitlines()}
    assert code == 0 and fields["kind"].startswith("T-Union transit card") and fields["card type"] == "elder"
    code, out, _ = run("card", "info", "--reader", f"sim:{path}", "--json")
    info = json.loads(out)
    assert code == 0 and (info["card_kind"], info["card_type"], info["card_type_name"], info["balance"]) == (
        "tunion", 0x01, "elder", 5000)  # the code on the card (0x15 byte 28) and its name
    assert "ssn" not in info and len(info["app_serial"]) == 20
    code, _, err = run("sim", "new", "--out", str(tmp_path / "s.json"), "--kind", "tunion", "--card-type", "student")
    assert code != 0 and "T-Union card's type" in err


def test_show_for_people(tmp_path: Path) -> None:
    card, sam = tmp_path / "card.json", tmp_path / "psam.json"
    run("sim", "new", "--out", str(card), "--name", "吕庆军", "--birth-date", "1958-03-02", "--card-type", "elder",
        "--region", "341800", "--balance", "1200", "--valid-until", "2030-06-30", "--pin", "246810", "--seed", "2")
    code, out, _ = run("sim", "show", str(card))
    assert code == 0
    fields = {line[:16].strip(): line[16:] for line in out.splitlines()}
    assert fields["name"] == "吕庆军" and fields["birth date"] == "1958-03-02" and fields["card type"] == "elder"
    assert fields["valid"] == "2024-01-01 .. 2030-06-30" and fields["balance"] == "1200 fen"
    assert fields["card id"].startswith("341800D156000005") and fields["card id"].endswith("FFFF")
    assert fields["region"] == "341800"
    assert fields["pin"] == "******** (3 tries left)" and fields["key dpk"].startswith("******** (index 1, 3des)")
    assert "246810" not in out
    code, out, _ = run("sim", "show", str(card), "--show-secrets")
    assert "246810 (3 tries left)" in out
    run("sim", "psam", "--out", str(sam), "--terminal-id", "0000000000A1")
    code, out, _ = run("sim", "show", str(sam))
    fields = {line[:16].strip(): line[16:] for line in out.splitlines()}
    assert fields["kind"] == "PSAM (TEST ONLY issuer)" and fields["terminal"] == "0000000000A1"
    assert fields["key mpk"].startswith("********")


def test_new_refuses_bad_profiles(tmp_path: Path) -> None:
    out = str(tmp_path / "x.json")
    for args, words in ((("--pin", "12ab56"), "PIN"), (("--region", "33"), "region"),
                        (("--name", "欧阳" * 6), "GBK"), (("--count", "0"), "--count"),
                        (("--valid-until", "2023-01-01"), "before")):
        code, _, err = run("sim", "new", "--out", out, *args)
        assert code == 2 and words in err and err.count("\n") == 1, (args, err)
    code, _, err = run("sim", "new", "--out", out, "--card-type", "vip")
    assert code == 2
    assert not (tmp_path / "x.json").exists()


def test_count_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    code, seen, out = on_a_terminal(["sim", "new", "--out", str(tmp_path / "many"), "--count", "3"])
    assert code == 0 and out.count(b"balance 5000 fen") == 3
    assert b"issuing" in seen
    code, _, err = run("sim", "new", "--out", str(tmp_path / "more"), "--count", "2")
    assert code == 0 and "issuing" not in err  # not a terminal: no bar


def test_sim_day_writes_a_day_of_batches_and_its_manifest_the_same_for_a_seed(tmp_path: Path) -> None:
    days = []
    for name in ("a", "b"):
        code, out, err = run("sim", "day", "--out", str(tmp_path / name), "--seed", "3", "--transactions", "300",
                             "--json")
        assert code == 0, err
        days.append(json.loads(out))
    assert days[0] == days[1] and days[0]["transactions"] == 300
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and any(p.name == "manifest.json" for p in files)
    assert any(p.suffix == ".jsonl" for p in files)
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in files)


def test_an_interoperable_card_holds_the_network_key_and_says_so_in_0x17(tmp_path: Path) -> None:
    """--interoperable: the T-Union purchase key beside the issuer's, and 0x17's flag 0001; a card made
    without it reads 0000 there, so no other city's station takes it (docs/station.md)."""
    from cardlib.keystore import TUNION_KEY_INDEX
    from cardlib.pboc.files import ManagementData
    from simulators.image import load_card

    flags = {}
    for name, extra in (("visitor", ["--interoperable"]), ("home", [])):
        path = tmp_path / f"{name}.json"
        code, _, err = run("sim", "new", "--out", str(path), "--region", "330100", "--seed", "5", *extra)
        assert code == 0, err
        card = load_card(path, persist=False)
        management = ManagementData.decode(bytes(card._purse_ef(0x17).data))  # type: ignore[union-attr]
        flags[name] = (management.interop.hex(), [k.index for k in card.keys.extra_dpk])  # type: ignore[union-attr]
    assert flags == {"visitor": ("0001", [TUNION_KEY_INDEX]), "home": ("0000", [])}
