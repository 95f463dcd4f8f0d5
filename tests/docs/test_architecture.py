"""docs/architecture.md's "Adding a record" and "Adding a command" examples work as written:
each runs in a fresh interpreter (its declarations must not join this run's registry) with
the imports its module has, and its classes read and write their own vectors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.docs.markdown import ROOT, code_blocks

EXAMPLES = [code for code in code_blocks("architecture.md", "python") if "@declared(" in code]

PRELUDE = """
from datetime import date
from construct import Bytes, Int16ub, Int32ub
from cardlib.declared import Command, Encoded, declared, wire
from cardlib.pboc.fields import BcdDate
from cardlib.wire import Vector
H = bytes.fromhex
"""

CHECK = """
import dataclasses
classes = [c for c in list(globals().values()) if isinstance(c, type) and issubclass(c, Encoded)
           and "DECLARATION" in vars(c)]
assert classes
for cls in classes:
    others = {f.name: 1 for f in dataclasses.fields(cls) if f.name not in cls.DECLARATION.fields()}
    for vector in cls.DECLARATION.vectors:
        value = cls.decode(vector.raw, **others)
        assert value.encode() == vector.raw
        assert {k: getattr(value, k) for k in vector.value} == dict(vector.value)
        if issubclass(cls, Command):
            assert cls.from_apdu(value.to_apdu()) == value
    print(cls.__name__, "ok")
"""


def test_the_page_shows_a_record_and_a_command() -> None:
    assert len(EXAMPLES) == 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_an_example_declares_classes_that_keep_their_vectors(index: int) -> None:
    done = subprocess.run([sys.executable, "-c", PRELUDE + EXAMPLES[index] + CHECK], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" ok") == (1 if index == 0 else 2)
