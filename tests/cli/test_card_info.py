"""`ykt card info` for people: names where the card keeps codes (card type, sex, card kind),
money with its unit; --json keeps every code and puts the names beside them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import cli


def info(*args: str) -> str:
    result = CliRunner().invoke(cli, ["card", "info", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_text_names_the_codes_and_json_keeps_them() -> None:
    data = json.loads(info("--reader", "sim?seed=4", "--json"))
    rows = {line[:19].strip(): line[19:] for line in info("--reader", "sim?seed=4").splitlines()}
    assert isinstance(data["card_type"], int) and isinstance(data["sex"], int)
    assert data["sex"] in (1, 2) and data["sex_name"] == {1: "male", 2: "female"}[data["sex"]]
    assert rows["sex"] == f"{data['sex_name']} ({data['sex']:02X})"
    assert (data["card_type"], data["card_type_name"], rows["card_type"]) == (1, "adult", "adult (01)")
    assert rows["card_kind"] == "social security card" and data["card_kind"] == "ssc"
    assert rows["balance"] == f"{data['balance']} fen (¥{data['balance'] / 100:.2f})"
    assert "sex_name" not in rows and "card_type_name" not in rows  # the names are in the rows above
