"""The `ykt` group: commands listed without importing them, helps that match."""

from __future__ import annotations

import inspect
import subprocess
import sys

import click
import pytest

from cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_help_is_the_commands_own_first_sentence(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    first = " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())
    assert COMMANDS[name][1] == first


def test_help_lists_every_command_without_importing_one() -> None:
    code = ("import sys\nfrom cli.main import cli\n"
            "try:\n    cli(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith(('cli.', 'terminal', 'simulators'))"
            " and m != 'cli.main'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines()[-1] == "LOADED []"
    listing = out.stdout
    for name, (_, short) in COMMANDS.items():
        assert f"  {name} " in listing
        assert short.split()[0] in listing


def test_version_reads_the_metadata_only_when_asked() -> None:
    code = ("import sys\nfrom cli.main import cli\nprint('importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
    version = subprocess.run([sys.executable, "-m", "cli.main", "--version"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert version.returncode == 0 and version.stdout.startswith("ykt ")
