"""ykt denylist build | check | show on real files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from terminal.denylist import DenyList

LISTED = ["33030000000000000001", "33030000000000000002", "31000000000000012345"]


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def build(tmp_path: Path) -> Path:
    src = tmp_path / "serials.csv"
    src.write_text("app_serial,reason\n" + "\n".join(f"{s},lost" for s in LISTED) + "\n# end\n" + LISTED[0] + "\n")
    out = tmp_path / "deny.bin"
    code, stdout, err = run("denylist", "build", str(src), "--out", str(out), "--list-version", "7")
    assert (code, err) == (0, "") and stdout.strip() == f"{out}: 3 serial(s), list version 7"
    return out


def test_build_from_csv_and_stdin(tmp_path: Path) -> None:
    out = build(tmp_path)
    with DenyList(out) as deny:
        assert (len(deny), deny.version) == (3, 7)
    code, stdout, _ = run("denylist", "build", "-", "--out", str(tmp_path / "b.bin"), "--list-version", "1", "--json",
                          stdin=LISTED[2] + "\n")
    assert code == 0 and json.loads(stdout) == {"file": str(tmp_path / "b.bin"), "count": 1, "list_version": 1}


def test_build_errors(tmp_path: Path) -> None:
    src = tmp_path / "bad.txt"
    src.write_text(f"{LISTED[0]}\n{LISTED[1]}\n3303xyz\n")
    code, _, err = run("denylist", "build", str(src), "--out", str(tmp_path / "d.bin"), "--list-version", "1")
    assert code == 2 and err.strip() == f"error: {src}: line 3: '3303xyz' is not an application serial (20 hex digits)"
    assert not (tmp_path / "d.bin").exists()
    code, _, err = run("denylist", "build", str(tmp_path / "none.txt"), "--out", str(tmp_path / "d.bin"),
                       "--list-version", "1")
    assert code == 2 and "cannot read" in err
    code, _, _ = run("denylist", "build", str(src), "--out", str(tmp_path / "d.bin"), "--list-version", "-1")
    assert code == 2
    code, _, _ = run("denylist", "build", str(src), "--out", str(tmp_path / "d.bin"))
    assert code == 2  # --list-version is required


def test_check(tmp_path: Path) -> None:
    out = build(tmp_path)
    code, stdout, err = run("denylist", "check", str(out), "33030000000000000003", LISTED[2].lower())
    assert code == 1
    assert stdout.splitlines() == ["33030000000000000003  not listed", f"{LISTED[2]}  LISTED"]
    assert err.strip() == "error: 1 of 2 serial(s) deny-listed (list version 7)"
    code, stdout, _ = run("denylist", "check", str(out), "33030000000000000003", "--json")
    assert code == 0 and json.loads(stdout) == {
        "list_version": 7, "results": [{"serial": "33030000000000000003", "listed": False}]}
    code, _, err = run("denylist", "check", str(out), "3303")
    assert code == 2 and "20 hex digits" in err
    code, _, err = run("denylist", "check", str(tmp_path / "none.bin"), LISTED[0])
    assert code == 2 and "cannot open deny list" in err


def test_show(tmp_path: Path) -> None:
    out = build(tmp_path)
    code, stdout, _ = run("denylist", "show", str(out), "--json")
    obj = json.loads(stdout)
    assert code == 0 and (obj["count"], obj["list_version"], obj["format_version"], obj["sha256_ok"]) == (3, 7, 3, True)
    assert len(obj["sha256"]) == 64 and obj["sha256"] == obj["sha256"].upper()
    code, stdout, _ = run("denylist", "show", str(out))
    assert code == 0 and "list_version    7" in stdout.splitlines()
    data = bytearray(out.read_bytes())
    data[-1] ^= 0xFF
    out.write_bytes(bytes(data))
    code, _, err = run("denylist", "show", str(out))
    assert code == 2 and "SHA-256" in err
