"""cardlib/safefiles.py: what an existing file is, inputs as regular files, outputs beside their target."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cardlib.errors import FormatError
from cardlib.safefiles import atomic_write, check_output, identify, read_regular


def test_identify_tells_each_kind_by_its_first_bytes_through_links(tmp_path: Path) -> None:
    files = {
        "journal": b"SQLite format 3\x00" + bytes(100),
        "deny list": b"YKTDENY\x00" + bytes(56),
        "card image": b'{\n "format": "yikatong-card-image",\n "version": 1\n}\n',
        "key file": b'{\n  "format": "yikatong-issuer-keys"\n}\n',
        "batch": b'{"type": "header", "batch_id": "X"}\n',
        "trace": b'{"atr": "3B00", "reader": "r"}\n',
        "empty": b"",
        "file": b"[terminal]\nrole = 'bus_validator'\n",
    }
    for kind, data in files.items():
        path = tmp_path / kind.replace(" ", "_")
        path.write_bytes(data)
        link = tmp_path / f"link-{path.name}"
        link.symlink_to(path)
        assert identify(path) == identify(link) == kind
    long_line = tmp_path / "long.jsonl"  # a first exchange longer than the bytes looked at
    long_line.write_text(json.dumps({"t": "x", "command": "00" * 4000, "response": "9000"}) + "\n")
    assert identify(long_line) == "trace"
    assert identify(tmp_path / "none") is None and identify(tmp_path) == "directory"


def test_an_input_is_read_only_from_a_regular_file_within_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "in"
    path.write_bytes(b"12345")
    assert read_regular(path, "thing", 5) == b"12345"
    with pytest.raises(FormatError, match="5 bytes, over the limit of 4"):
        read_regular(path, "thing", 4)
    with pytest.raises(FormatError, match="it is a directory"):
        read_regular(tmp_path, "thing", 4)


def test_an_output_replaces_through_a_link_the_file_it_names_and_leaves_no_temporary(tmp_path: Path) -> None:
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with atomic_write(link, "thing", 0o644) as fh:
        fh.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new" and (real.stat().st_mode & 0o777) == 0o644
    with pytest.raises(FormatError, match="boom"), atomic_write(real, "thing") as fh:
        fh.write(b"half")
        raise FormatError("boom")
    assert real.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["link.bin", "real.bin"]
    assert check_output(tmp_path / "fresh.bin", "thing") == str(tmp_path / "fresh.bin")
