"""`ykt atr`: the historical bytes decoded and the card named from smartcard_list.txt, human and --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

MIFARE = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"  # PC/SC part 3, MIFARE Classic 1K
LIST = ("# smartcard_list.txt layout (pcsc-tools)\n"
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 .. 00 01 00 00 00 00 ..\n\tMIFARE Classic 1K (as per PCSC std part3)\n\n"
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A\n\tNXP/Philips MIFARE Classic 1K\n\tOyster card\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of our own: ~/.smartcard_list.txt is read before the system's list, as ATR_analysis does."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / ".smartcard_list.txt").write_text(LIST, encoding="utf-8")
    return tmp_path


def test_human_output_decodes_and_names(home: Path) -> None:
    result = CliRunner().invoke(cli, ["atr", MIFARE])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    tail = lines[lines.index("historical bytes  80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00") + 1 :]
    assert tail == [
        "  category        80 (PC/SC part 3 contactless storage card)",
        "  RID             A0 00 00 03 06 (PC/SC Workgroup)",
        "  standard        03 (ISO 14443 A, part 3)",
        "  card name       0001 (MIFARE Classic 1K)",
        "TCK               6A (valid)",
        "contactless       PC/SC part 3 pseudo-ATR",
        f"card names        2 in {home / '.smartcard_list.txt'}",
        "                  3B 8F 80 01 80 4F 0C A0 00 00 03 06 .. 00 01 00 00 00 00 ..",
        "                    MIFARE Classic 1K (as per PCSC std part3)",
        "                    NXP/Philips MIFARE Classic 1K",
        "                    Oyster card",
    ]


def test_json_output(home: Path) -> None:
    result = CliRunner().invoke(cli, ["atr", "3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B", "--json"])
    obj = json.loads(result.stdout)
    assert result.exit_code == 0
    assert obj["historical"]["category"] == "80" and obj["historical"]["kind"] == "compact-TLV"
    assert [(o["tag"], o["value"]) for o in obj["historical"]["objects"]] == [("1", "392F"), ("3", "C1"),
                                                                             ("7", "C601C0")]
    assert obj["historical"]["objects"][0]["meaning"] == ["country 392 (ISO 3166-1 numeric), national data F"]
    assert obj["names"] == {"list": str(home / ".smartcard_list.txt"), "matches": []}
    result = CliRunner().invoke(cli, ["atr", MIFARE, "--json"])
    obj = json.loads(result.stdout)
    assert obj["historical"]["pcsc_storage_card"] == {
        "rid": "A000000306", "standard": 3, "standard_name": "ISO 14443 A, part 3", "card_name": "0001",
        "card": "MIFARE Classic 1K", "rfu": "00000000"}
    assert [m["descriptions"] for m in obj["names"]["matches"]] == [
        ["MIFARE Classic 1K (as per PCSC std part3)"], ["NXP/Philips MIFARE Classic 1K", "Oyster card"]]


def test_without_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("cardlib.smartcard_list.candidate_lists", lambda: [tmp_path / "none.txt"])
    result = CliRunner().invoke(cli, ["atr", "3B 02 10 50"])
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == (
        "card names            pcsc-tools' smartcard_list.txt is not installed")
    assert json.loads(CliRunner().invoke(cli, ["atr", "3B 02 10 50", "--json"]).stdout)["names"] is None
