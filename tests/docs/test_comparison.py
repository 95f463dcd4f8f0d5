"""docs/comparison.md names only `ykt` commands and options that exist: each command it names
answers ``--help``, and each option it gives a command is in that help."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.docs.markdown import DOCS

TEXT = (DOCS / "comparison.md").read_text(encoding="utf-8")
#: `ykt sub [sub] [--option]…` inside backticks, arguments in capitals or with a colon left out
NAMED = sorted({m for m in re.findall(r"`(ykt [^`]+)`", TEXT)})


def words(snippet: str) -> tuple[list[str], list[str]]:
    """The subcommand path and the options of one snippet (``ykt card info --reader pn532:PORT``)."""
    path, options = [], []
    for word in snippet.split()[1:]:
        if word.startswith("--"):
            options.append(word.split("=")[0])
        elif not options and re.fullmatch(r"[a-z]+", word):
            path.append(word)
    return path, options


def test_the_page_names_commands() -> None:
    assert len(NAMED) >= 15


@pytest.mark.parametrize("snippet", NAMED)
def test_each_named_command_and_option_exists(snippet: str) -> None:
    path, options = words(snippet)
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, f"{snippet}: {result.output}"
    for option in options:
        assert option in result.output, f"{snippet}: no {option} in `ykt {' '.join(path)} --help`"
