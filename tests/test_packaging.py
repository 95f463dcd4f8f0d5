"""The package as users get it: a wheel built from this tree, installed into a
fresh venv without the pcsc extra (so without pyscard and libpcsclite), runs
`ykt --version` from the package metadata, the demo, and says how to get PC/SC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding only the wheel and its required dependencies."""
    base = tmp_path_factory.mktemp("pkg")
    built = _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(base / "wheels")])
    assert built.returncode == 0, built.stderr
    venv = base / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    (wheel,) = (base / "wheels").glob("yikatong-*.whl")
    done = _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)])
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"installing the wheel failed: {done.stderr}")
        pytest.skip(f"cannot install the wheel's dependencies here (no package index?): {done.stderr[-200:]}")
    return venv / "bin"


def test_the_wheel_carries_types_data_and_entry_points(installed: Path) -> None:
    (wheel,) = (installed.parent.parent / "wheels").glob("yikatong-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for must in ("cardlib/py.typed", "terminal/py.typed", "simulators/py.typed", "cli/py.typed",
                 "cardlib/data/test_issuer.json", "cardlib/data/test_issuer_city_b.json"):
        assert must in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ykt = cli.main:cli" in text and "[yikatong.readers]" in text


def test_the_readers_resolve_through_the_entry_points(installed: Path) -> None:
    """cardlib's registry names no simulator: ``sim:`` comes from the distribution's entry point."""
    code = ("from cardlib.readers.registry import find_backend\n"
            "print(find_backend('sim').__module__, find_backend('pn532').__module__)")
    out = _run([str(installed / "python"), "-c", code], cwd=str(installed))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["simulators.reader", "cardlib.readers.pn532"]


def test_version_comes_from_the_package_metadata(installed: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = _run([str(installed / "ykt"), "--version"])
    assert out.returncode == 0 and out.stdout.strip() == f"ykt {version}"


def test_runs_without_pyscard_and_says_how_to_get_pcsc(installed: Path, tmp_path: Path) -> None:
    assert _run([str(installed / "python"), "-c", "import smartcard"]).returncode != 0  # really not there
    demo = _run([str(installed / "ykt"), "demo", "--json", "--out", str(tmp_path / "demo")])
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout)["settlement"]["balanced"]
    listing = _run([str(installed / "ykt"), "readers"])
    assert listing.returncode == 0 and "pip install 'yikatong[pcsc]'" in listing.stdout
    pcsc = _run([str(installed / "ykt"), "apdu", "--reader", "pcsc", "00A4040000"])
    assert pcsc.returncode == 3 and pcsc.stderr.count("\n") == 1 and "yikatong[pcsc]" in pcsc.stderr


def test_the_sdist_carries_license_tests_docs_and_examples(tmp_path: Path) -> None:
    code = ("import sys\nfrom setuptools import build_meta\n"
            "print(build_meta.build_sdist(sys.argv[1]))")
    built = _run([sys.executable, "-c", code, str(tmp_path)], cwd=str(ROOT))
    assert built.returncode == 0, built.stderr[-2000:]
    import tarfile

    (sdist,) = tmp_path.glob("yikatong-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("/PKG-INFO")))
        assert pkg_info is not None
        metadata = pkg_info.read().decode()
    for must in ("LICENSE", "README.md", "pyproject.toml", "tests/conftest.py", "tests/bench/__main__.py",
                 "docs/quickstart.md", "examples/bus-validator.toml", "scripts/test.sh", ".ci/run",
                 "cardlib/data/test_issuer.json"):
        assert must in names, must
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "License-Expression: Apache-2.0" in metadata and "Apache License" in (ROOT / "LICENSE").read_text()
    assert "Classifier: Typing :: Typed" in metadata
