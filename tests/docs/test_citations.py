"""Code and pages cite what a reader can open (docs/protocol.md, "Standards and profiles the
code cites"): never the project's internal protocol notes, which are not in the repository."""

from __future__ import annotations

import re
import subprocess

from tests.docs.markdown import ROOT

INTERNAL = re.compile(r"reference(?:'s)? §|shared/reference|cited as §")


def test_no_file_cites_the_internal_notes() -> None:
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    assert len(files) > 100
    found = [f"{name}:{number}: {line.strip()}" for name in files if not name.startswith("tests/")
             for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1)
             if INTERNAL.search(line)]
    assert found == []
