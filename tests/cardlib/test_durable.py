"""cardlib.durable: a replaced file is synced, renamed, and its directory synced after,
by every writer that replaces a file (deny lists, card images, settlement batches)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cardlib.durable import replace_durably


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """What each fsync was given, in order: 'dir' for ``folder``, 'file' for a file, else 'other'."""
    seen: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            seen.append("dir" if os.path.samestat(info, os.stat(folder)) else "other")
        else:
            seen.append("file")
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def test_replace_durably_renames_then_syncs_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target, tmp = tmp_path / "list.bin", tmp_path / "list.bin.tmp"
    target.write_text("old")
    tmp.write_text("new")
    seen = _record_fsyncs(monkeypatch, tmp_path)
    replace_durably(tmp, target)
    assert target.read_text() == "new" and not tmp.exists()
    assert seen == ["dir"]


def _deny_list(path: Path) -> None:
    from terminal.denylist import build_denylist

    build_denylist([bytes(10), bytes([1]) * 10], path, 1)


def _card_image(path: Path) -> None:
    from simulators.image import save_image
    from simulators.issuer import sample_card

    save_image(sample_card(), path)


@pytest.mark.parametrize("write", [_deny_list, _card_image], ids=["deny list", "card image"])
def test_writers_sync_the_file_and_then_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      write: Callable[[Path], None]) -> None:
    seen = _record_fsyncs(monkeypatch, tmp_path)
    write(tmp_path / "out")
    assert (tmp_path / "out").exists() and seen[-2:] == ["file", "dir"]
