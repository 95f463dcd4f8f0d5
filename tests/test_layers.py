"""The import layers of DESIGN.md: cli → terminal → cardlib; simulators → cardlib;
clearing → cardlib; cardlib imports nothing of ours. Read from the source, every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cardlib", "terminal", "simulators", "clearing", "cli")
ALLOWED = {
    "cardlib": {"cardlib"},
    "terminal": {"terminal", "cardlib"},
    "simulators": {"simulators", "cardlib"},
    "clearing": {"clearing", "cardlib"},
    "cli": set(PACKAGES),
}


#: a module named in a string, as an entry point or ``import_module`` spells it (``pkg.mod:attr``)
MODULE_TEXT = re.compile(r"^([a-z_]+)(\.[a-z_0-9]+)+(:[A-Za-z_0-9]+)?$")


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages a module imports, at the top or inside a function, or names in a
    string it could import by (a registry's ``"simulators.reader:open_sim_reader"``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_TEXT.match(node.value):
            names = [node.value]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES)
    return found


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in imported_packages(path) - ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from terminal.journal import Journal\n    import clearing.engine\n")
    assert imported_packages(module) == {"terminal", "clearing"}
    module.write_text('BACKENDS = {"sim": "simulators.reader:open_sim_reader"}\n')
    assert imported_packages(module) == {"simulators"}
