"""Every command of docs/quickstart.md runs, in order, in an empty folder, and prints what the
page shows (times, durations, batch ids and digests, paths blurred; ``…`` elides)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.docs.markdown import ROOT
from tests.docs.transcript import Step, blur, matches, run, steps

#: The page's set-up commands, done by the test itself: the suite already runs in the venv that
#: scripts/bootstrap.sh made (scripts/test.sh runs it), and works in its own empty folder with
#: $YKT set to the checkout rather than in the shared /tmp/ykt-tour.
SET_UP = {
    "bash scripts/demo.sh      # install into .venv, then run `ykt demo`",
    "bash scripts/bootstrap.sh          # or: bash scripts/bootstrap.sh pcsc  (with pyscard)\n"
    "source .venv/bin/activate",
    "export YKT=$PWD            # at the top of the checkout\n"
    "mkdir -p /tmp/ykt-tour && cd /tmp/ykt-tour",
}


def report(step: Step) -> str:
    shown = "\n".join(step.expected or [])
    return (f"docs/quickstart.md line {step.line}: $ {step.command}\n--- the page\n{shown}\n"
            f"--- printed now (rc {step.rc})\n{step.output}--- blurred\n{blur(step.output)}")


def test_every_command_prints_what_the_page_shows(tmp_path: Path) -> None:
    work = tmp_path / "ykt-tour"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("YKT_READER", "NO_COLOR")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", YKT=str(ROOT),
               YKT_STATE_DIR=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"))
    every = steps("quickstart.md")
    assert {s.command for s in every if s.command in SET_UP} == SET_UP  # the set-up is still as written
    ran, failures, rc = 0, [], 0
    for step in every:
        if step.command in SET_UP:
            continue
        run(step, work, env, rc)
        rc, ran = step.rc, ran + 1
        if step.expected is None:
            if step.rc != 0:
                failures.append(report(step))
        elif not matches(step.expected, step.output):
            failures.append(report(step))
    assert ran >= 30  # the page's commands, not a parse that found none
    assert not failures, "\n\n".join(failures)


def test_the_comparison_ignores_only_what_changes_from_run_to_run() -> None:
    page = ["batch 7F1A8F9810ED4481: 3 record(s) at 07:45:00 in /tmp/ykt-demo-2gea9had/x (0.309 ms)", "…"]
    assert matches(page, "batch 0123456789ABCDEF: 3 record(s) at 09:01:02 in /tmp/pytest-1/y (12.5 ms)\nmore\n")
    assert not matches(page, "batch 0123456789ABCDEF: 4 record(s) at 09:01:02 in /tmp/y (12.5 ms)\n")
    assert not matches(["balance 5000 fen"], "balance 5000 fen (¥50.00)\n")  # a whole line, not a prefix
    assert matches(["balance 5000…"], "balance 5000 fen (¥50.00)\n")
