"""Running the shell sessions a documentation page shows, and comparing what they print with
the page. A session is a fenced block without a language whose lines start with ``$ ``: each
such line is a command, the lines after it are what it printed (stdout and stderr as a terminal
shows them). A ``sh`` block is commands whose output the page does not show.

Compared after blurring only what differs from run to run: times, durations, batch ids and
digests, paths. A line ``…`` on the page stands for any number of lines; a line ending in ``…``
for a line that starts with the rest."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.markdown import DOCS

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_BLUR = [
    (re.compile(r"/tmp/[^\s,;:)\"']*"), "<PATH>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?"), "<TIME>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:\.\d+)?\b"), "<TIME>"),
    (re.compile(r"\(\d+\.\d+ ms"), "(<MS> ms"),
    (re.compile(r"\b[0-9A-F]{64}\b"), "<DIGEST>"),
    (re.compile(r"\b(batch(?:_id\": \"| ))[0-9A-F]{16}\b"), r"\1<ID>"),
]


@dataclass
class Step:
    """One command of the page; ``expected`` None where the page shows no output."""

    command: str
    expected: list[str] | None = None
    line: int = 0
    output: str = ""
    rc: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def steps(page: str) -> list[Step]:
    """The commands of docs/``page`` in order, with what the page says each printed."""
    text = (DOCS / page).read_text(encoding="utf-8")
    out: list[Step] = []
    for match in _FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 2
        if lang == "sh":
            out.append(Step(body.rstrip("\n"), None, line))
        elif lang == "" and body.startswith("$ "):
            for i, row in enumerate(body.rstrip("\n").split("\n")):
                if row.startswith("$ "):
                    out.append(Step(row[2:], [], line + i))
                else:
                    assert out[-1].expected is not None
                    out[-1].expected.append(row)
    return out


def blur(text: str) -> str:
    for pattern, replacement in _BLUR:
        text = pattern.sub(replacement, text)
    return text


def matches(expected: list[str], actual: str) -> bool:
    """Whether ``actual`` is what the page shows, blurred, with its ``…`` elisions."""
    parts = []
    for row in expected:
        if row == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        elif row.endswith("…"):
            parts.append(re.escape(blur(row[:-1])) + r"[^\n]*\n")
        else:
            parts.append(re.escape(blur(row)) + r"\n")
    lines = [blur(line).rstrip() for line in actual.splitlines()]
    return re.fullmatch("".join(parts), "".join(f"{line}\n" for line in lines)) is not None


def run(step: Step, cwd: Path, env: dict[str, str], last_rc: int) -> None:
    """Run one command as the shell would (``echo $?`` answers the command before it)."""
    if step.command == "echo $?":
        step.output, step.rc = f"{last_rc}\n", 0
        return
    done = subprocess.run(["bash", "-c", step.command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    step.output, step.rc = done.stdout, done.returncode
