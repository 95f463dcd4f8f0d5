"""docs/cli.md is generated from the click commands and kept in step with them; the common
options parse on the subcommand (which of them each offers: tests/cli/test_options.py); shell
completion works."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cli.main import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python scripts/gen_cli_doc.py"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_cli_doc", ROOT / "scripts" / "gen_cli_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaves() -> list[tuple[str, click.Command]]:
    gen = _generator()
    root = gen._root(cli)
    return [(ctx.command_path, cmd) for ctx, cmd in gen.walk(cli, root) if not isinstance(cmd, click.Group)]


def test_cli_doc_is_up_to_date() -> None:
    expected = _generator().render(cli)
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == expected, f"docs/cli.md differs from the commands: regenerate it with `{REGENERATE}`"


def test_cli_doc_names_every_command() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"## `ykt {name}`" in text, f"ykt {name} missing: run `{REGENERATE}`"
    assert len(_leaves()) > len(COMMANDS) // 2


def test_design_commands_are_all_there() -> None:
    """DESIGN.md's list of commands is the CLI's list."""
    design = ["atr", "tlv", "apdu", "script", "readers", "watch", "trace", "card", "purse", "gate",
              "validator", "denylist", "journal", "sim", "demo", "bench", "shell",
              "clear", "station"]
    assert sorted(design) == sorted(COMMANDS)


def test_common_options_parse_on_a_subcommand() -> None:
    """Accepted after the subcommand, and --json changes the output."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["purse", "load", "--amount", "1", "--json", "--debug", "--now",
                                      "2026-11-28T08:00:00", "--reader", "sim", "--psam", "sim?kind=psam",
                                      "--trace", os.devnull])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("{")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_script_completes_subcommands(tmp_path: Path) -> None:
    """README: eval "$(_YKT_COMPLETE=bash_source ykt)" gives working completion."""
    ykt = shutil.which("ykt", path=os.path.dirname(sys.executable)) or shutil.which("ykt")
    if ykt is None:
        pytest.skip("the ykt console script is not installed")
    env = {**os.environ, "_YKT_COMPLETE": "bash_source"}
    source = subprocess.run([ykt], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "complete " in source and "_ykt_completion" in source
    script = tmp_path / "complete.sh"
    script.write_text(
        source
        + '\nCOMP_WORDS=(ykt jour); COMP_CWORD=1; COMPREPLY=(); _ykt_completion ykt; printf "%s\\n" "${COMPREPLY[@]}"'
        + '\nCOMP_WORDS=(ykt journal ex); COMP_CWORD=2; COMPREPLY=(); _ykt_completion ykt; printf "%s\\n" "${COMPREPLY[@]}"'
        + '\nCOMP_WORDS=(ykt atr --js); COMP_CWORD=2; COMPREPLY=(); _ykt_completion ykt; printf "%s\\n" "${COMPREPLY[@]}"\n',
        encoding="utf-8",
    )
    path = os.path.dirname(ykt) + os.pathsep + os.environ.get("PATH", "")
    out = subprocess.run(["bash", str(script)], env={**os.environ, "PATH": path}, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["journal", "export", "--json"], out.stdout
