"""A running terminal keeps its last good deny list; a terminal without one does not start unless told to."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from terminal.current_denylist import CurrentDenyList
from terminal.denylist import HEADER, DenyListError, build_denylist

LISTED = [bytes.fromhex(f"3303{i:016d}") for i in range(0, 7000, 7)]  # 1000 entries: an 8-bit index


def zeroed_index(path: Path) -> None:
    """The list at ``path`` with every bucket but the last emptied (the attack format 2 let through)."""
    data = bytearray(path.read_bytes())
    count = struct.unpack_from("<Q", data, 56)[0]
    struct.pack_into("<257I", data, HEADER.size, *([0] * 256 + [count]))
    path.write_bytes(data)


def replace(path: Path, serials: list[bytes], version: int, tamper: bool = False) -> None:
    """Deliver a new list the way a terminal receives one: written aside, renamed over the old."""
    aside = path.with_suffix(".new")
    build_denylist(serials, aside, version)
    if tamper:
        zeroed_index(aside)
    os.replace(aside, path)


def test_a_bad_replacement_is_refused_and_the_previous_list_kept(tmp_path: Path) -> None:
    path = tmp_path / "deny.bin"
    build_denylist(LISTED, path, 7)
    said: list[str] = []
    current = CurrentDenyList(path, said.append)
    assert said == [f"deny list: version 7, 1000 serial(s) from {path}"]
    assert current.refresh() is False and len(said) == 1  # unchanged: nothing to do, nothing said

    replace(path, LISTED, 8, tamper=True)
    assert current.refresh() is False
    assert current.version == 7 and all(s in current for s in LISTED)
    assert said[1] == (f"deny list replacement refused: {path}: SHA-256 does not match the file (altered or "
                       f"damaged); keeping list version 7")
    assert current.problem is not None and "SHA-256" in current.problem
    assert current.refresh() is False and len(said) == 2  # the same bad file is reported once

    replace(path, LISTED[:10], 9)
    assert current.refresh() is True and current.version == 9 and current.problem is None
    assert LISTED[0] in current and LISTED[500] not in current
    assert said[2] == f"deny list: version 9, 10 serial(s) from {path}"

    path.unlink()  # a list taken away is a bad replacement too
    assert current.refresh() is False and current.version == 9 and "cannot open" in said[3]
    current.close()


def test_no_good_list_at_start_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "deny.bin"
    build_denylist(LISTED, path, 7)
    zeroed_index(path)
    with pytest.raises(DenyListError, match="SHA-256 does not match the file .*; no good deny list, the terminal "
                                            r"does not start \(denylist.start_without = true runs without one\)"):
        CurrentDenyList(path, print)
    with pytest.raises(DenyListError, match="cannot open deny list"):
        CurrentDenyList(tmp_path / "missing.bin", print)


def test_start_without_a_list_when_configured_and_take_the_first_good_one(tmp_path: Path) -> None:
    path = tmp_path / "deny.bin"
    said: list[str] = []
    current = CurrentDenyList(path, said.append, start_without=True)
    assert current.list is None and LISTED[0] not in current
    assert said == [f"deny list refused: {path}: cannot open deny list: No such file or directory; running "
                    f"WITHOUT a deny list until a good one arrives"]
    replace(path, LISTED, 3, tamper=True)
    assert current.refresh() is False and current.list is None
    assert said[1].endswith("; still running WITHOUT a deny list")
    replace(path, LISTED, 4)
    assert current.refresh() is True and LISTED[0] in current and current.version == 4
    current.close()
