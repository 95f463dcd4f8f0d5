"""docs/library.md runs as written, type-checks under mypy --strict from outside the project
(the editable install made by scripts/bootstrap.sh), and the package roots offer what the page
says: ``__all__`` resolves, ``__version__`` is the distribution's, nothing loads before use."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from importlib import import_module, metadata
from pathlib import Path

import pytest

from tests.docs.markdown import DOCS, ROOT, code_blocks

ROOTS = ("cardlib", "terminal", "simulators")
EXAMPLES = code_blocks("library.md", "python")


def test_the_page_has_its_four_examples() -> None:
    assert len(EXAMPLES) == 4  # reading, purchase with a journal, a gate role, a reader backend


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_each_example_runs_as_a_script_in_an_empty_folder(index: int, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(EXAMPLES[index], encoding="utf-8")
    env = {**os.environ, "YKT_STATE_DIR": str(tmp_path / "state")}
    env.pop("PYTHONPATH", None)  # the installed packages, not the test run's path
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_the_examples_pass_mypy_strict_from_outside_the_project(tmp_path: Path) -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy (the lint extra) is not installed")
    for index, code in enumerate(EXAMPLES):
        (tmp_path / f"example_{index}.py").write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    done = subprocess.run([mypy, "--strict", "--no-incremental", "--cache-dir", os.devnull,
                           *sorted(p.name for p in tmp_path.glob("example_*.py"))],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "cardlib").exists()  # found through the install, not beside the script


@pytest.mark.parametrize("package", ROOTS)
def test_every_exported_name_resolves_and_is_typed_for_checkers(package: str) -> None:
    module = import_module(package)
    exported = set(module.__all__)
    for name in exported:
        assert getattr(module, name) is not None, name
    assert set(dir(module)) >= exported
    # the names a type checker sees (the TYPE_CHECKING imports) are the names offered at run time
    tree = ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {alias.asname or alias.name: f"{node.module}:{alias.name}"
            for node in guarded.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert set(seen) == exported - {"__version__"}
    for name, where in seen.items():
        module_name, _, attr = where.partition(":")
        assert getattr(module, name) is getattr(import_module(module_name), attr), name
    text = (DOCS / "library.md").read_text(encoding="utf-8")
    assert [name for name in sorted(exported - {"__version__"}) if f"`{name}`" not in text] == []  # listed


@pytest.mark.parametrize("package", (*ROOTS, "cli", "clearing"))
def test_version_is_the_distributions(package: str) -> None:
    assert import_module(package).__version__ == metadata.version("yikatong")


def test_importing_a_root_loads_nothing_until_a_name_is_used() -> None:
    code = ("import sys, cardlib, terminal, simulators\n"
            "before = sorted(m for m in sys.modules if m.split('.')[0] in ('cardlib', 'terminal', 'simulators'))\n"
            "from cardlib import Channel\n"
            "print(' '.join(before), '|', 'cardlib.channel' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded, _, after = done.stdout.partition("|")
    assert set(loaded.split()) == {"cardlib", "cardlib.exports", "terminal", "simulators"}
    assert after.strip() == "True"


def test_an_unknown_name_is_an_attribute_error() -> None:
    import cardlib

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        cardlib.nothing_here  # noqa: B018
