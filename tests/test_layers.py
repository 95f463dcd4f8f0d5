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


def code_builders(path: Path) -> list[str]:
    """Calls of exec, eval or compile in a module: code built from text at run time."""
    return [f"{path.name}:{node.lineno} {node.func.id}"
            for node in ast.walk(ast.parse(path.read_text("utf-8")))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("exec", "eval", "compile")]


def test_no_module_of_the_core_builds_code_from_text() -> None:
    """cardlib, terminal and simulators are read as written: no generated __init__ or the like."""
    found = [hit for package in ("cardlib", "terminal", "simulators")
             for path in sorted((ROOT / package).rglob("*.py")) for hit in code_builders(path)]
    assert found == []
    assert not (ROOT / "cardlib" / "frozen.py").exists()


def test_the_code_builder_check_sees_exec(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("env = {}\nexec('def f(): pass', env)\n")
    assert code_builders(module) == ["m.py:2 exec"]
