"""The deny list file (transit-purse reference §8; layout in terminal/denylist.py)."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib.errors import FormatError
from terminal.denylist import (
    HEADER,
    MAGIC,
    SERIAL,
    DenyList,
    DenyListError,
    bucket_of,
    build_denylist,
    parse_serial_lines,
)

REGION = bytes.fromhex("33030000")  # real serials share their leading bytes


def serial(n: int) -> bytes:
    """BCD-style serials: decimal digits, a shared prefix, as issued."""
    return REGION + bytes.fromhex(f"{n:012d}")


def test_build_open_lookup(tmp_path: Path) -> None:
    listed = [serial(i) for i in range(0, 50_000, 7)]
    n = build_denylist(listed + listed[:10], tmp_path / "d.bin", 42)
    assert n == len(listed)
    with DenyList.open(tmp_path / "d.bin") as deny:
        assert deny.version == 42 and len(deny) == n
        assert all(deny.contains(s) for s in listed)
        assert not any(deny.contains(serial(i)) for i in range(1, 50_000, 7))
        assert b"short" not in deny and "text" not in deny and bytearray(listed[0]) in deny
        assert sorted(deny) == sorted(listed)
        bits = deny.header.index_bits
    size = os.path.getsize(tmp_path / "d.bin")
    assert size == 64 + 4 * ((1 << bits) + 1) + 10 * n
    assert size / n <= 12  # the bytes-per-entry target


def test_file_layout_byte_exact(tmp_path: Path) -> None:
    """Format 3: the SHA-256 at offset 16 covers every other byte: header fields, index, entries."""
    a, b = bytes.fromhex("33030000000000000001"), bytes.fromhex("33030000000000000002")
    build_denylist([b, a, b], tmp_path / "d.bin", 0x01020304)
    data = (tmp_path / "d.bin").read_bytes()
    bits = 8
    entries = b"".join(sorted([a, b], key=lambda s: (bucket_of(s, bits), s)))
    index = struct.unpack_from(f"<{(1 << bits) + 1}I", data, 64)
    for s in (a, b):
        k = bucket_of(s, bits)
        assert index[k + 1] - index[k] >= 1
    assert index[0] == 0 and index[-1] == 2 and list(index) == sorted(index)
    assert data[64 + 4 * 257 :] == entries
    head = MAGIC + struct.pack("<H6x", 3)
    tail = struct.pack("<B3xIQ", bits, 0x01020304, 2)
    digest = hashlib.sha256(head + tail + data[64:]).digest()
    assert data[:64] == head + digest + tail


def test_bcd_serials_spread_over_the_index(tmp_path: Path) -> None:
    """Serials that differ only in their last decimal digits still fill the buckets evenly."""
    listed = [serial(i) for i in range(40_000)]
    build_denylist(listed, tmp_path / "d.bin", 1)
    with DenyList(tmp_path / "d.bin") as deny:
        index = deny._index
        sizes = [index[i + 1] - index[i] for i in range(1 << deny.header.index_bits)]
    mean = len(listed) / len(sizes)
    assert 16 <= mean < 32 and max(sizes) <= 2 * mean  # never one huge bucket
    assert sum(1 for s in sizes if s < mean / 4) < len(sizes) // 100  # nor many nearly empty ones


@settings(max_examples=40)
@given(st.sets(st.binary(min_size=10, max_size=10), max_size=300), st.lists(st.binary(min_size=10, max_size=10),
                                                                           max_size=50))
def test_membership_property(tmp_path_factory: pytest.TempPathFactory, listed: set[bytes], others: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("dl") / "d.bin"
    assert build_denylist(list(listed) * 2, path, 3) == len(listed)
    with DenyList(path) as deny:
        assert all(s in deny for s in listed)
        assert all((s in deny) == (s in listed) for s in others)
        assert sorted(deny) == sorted(listed)


def test_a_match_across_two_entries_is_not_a_hit(tmp_path: Path) -> None:
    """Neighbours x, y of one bucket hold the probe x[5:] + y[:5] in their bytes; it is no entry."""
    members = [serial(i) for i in range(1000)]  # 1000 entries: an 8-bit index
    ordered = sorted(members, key=lambda s: (bucket_of(s, 8), s))
    straddling = [x[5:] + y[:5] for x, y in zip(ordered, ordered[1:], strict=False)
                  if bucket_of(x, 8) == bucket_of(y, 8) == bucket_of(x[5:] + y[:5], 8)]
    assert straddling, "the pool has no straddling probe: pick another"
    build_denylist(members, tmp_path / "d.bin", 1)
    with DenyList(tmp_path / "d.bin") as deny:
        assert deny.header.index_bits == 8
        data = bytes(deny._mm)
        for probe in straddling:
            assert probe in data and probe not in members
            assert not deny.contains(probe)
        assert all(deny.contains(s) for s in members)


def test_serial_lines() -> None:
    lines = ["# exported 2026-11-28", "app_serial,name", "33030000000000000001,x  # a comment", "",
             '"33030000000000000002";y', "  33030000000000000003  "]
    assert list(parse_serial_lines(lines)) == [bytes.fromhex(f"3303000000000000000{i}") for i in (1, 2, 3)]
    with pytest.raises(FormatError, match="line 2: 'zz'"):
        list(parse_serial_lines(["33030000000000000001", "zz"]))
    with pytest.raises(FormatError, match="line 1: '3303'"):
        list(parse_serial_lines(["3303"]))
    with pytest.raises(FormatError, match="line 3"):
        list(parse_serial_lines(["serial", "33030000000000000001", "serial"]))  # a header only first
    with pytest.raises(FormatError, match="line 1"):
        list(parse_serial_lines(["33 03 00 00 00 00 00 00 00 01"]))  # 20 digits in one piece


def test_build_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="serial 2: .* 10 bytes, got 3"):
        build_denylist([bytes(10), b"abc"], tmp_path / "d.bin", 1)
    with pytest.raises(FormatError, match="list version"):
        build_denylist([bytes(10)], tmp_path / "d.bin", -1)
    with pytest.raises(FormatError, match="cannot write"):
        build_denylist([bytes(10)], tmp_path / "missing" / "d.bin", 1)
    assert not (tmp_path / "d.bin").exists()
    assert build_denylist([], tmp_path / "empty.bin", 1) == 0
    with DenyList(tmp_path / "empty.bin") as deny:
        assert len(deny) == 0 and bytes(10) not in deny


def test_open_errors(tmp_path: Path) -> None:
    build_denylist([serial(i) for i in range(100)], tmp_path / "ok.bin", 1)
    good = (tmp_path / "ok.bin").read_bytes()

    def broken(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    with pytest.raises(DenyListError, match="bad magic"):
        DenyList(broken("magic.bin", b"X" + good[1:]))
    with pytest.raises(DenyListError, match="format 1 not supported"):
        DenyList(broken("v1.bin", good[:8] + b"\x01\x00" + good[10:]))
    with pytest.raises(DenyListError, match="does not match 100 entries"):
        DenyList(broken("cut.bin", good[:-3]))
    with pytest.raises(DenyListError, match="too short"):
        DenyList(broken("tiny.bin", good[:20]))
    with pytest.raises(DenyListError, match="cannot open"):
        DenyList(tmp_path / "none.bin")
    assert issubclass(DenyListError, FormatError)  # exit code 2, one line on the CLI


# --- tampering: a list that fails any check is refused as a whole ---------------------------------------------
# Format 2 checked only the entries' SHA-256, and only on request (`ykt denylist show`); a terminal opened every
# file below and answered "not listed" for listed serials, or believed a header nobody had signed off.

TAMPER_LISTED = [serial(i) for i in range(0, 7000, 7)]  # 1000 entries: an 8-bit index of 257 offsets
INDEX = slice(HEADER.size, HEADER.size + 4 * 257)


def _index(data: bytearray) -> list[int]:
    return list(struct.unpack_from("<257I", data, HEADER.size))


def _set_index(data: bytearray, index: list[int]) -> None:
    struct.pack_into("<257I", data, HEADER.size, *index)


def zero_index(data: bytearray) -> None:
    """Every bucket but the last made empty: the first bucket's start and the end stay right."""
    index = _index(data)
    _set_index(data, [0] * 256 + index[-1:])


def alter_list_version(data: bytearray) -> None:
    struct.pack_into("<I", data, 52, struct.unpack_from("<I", data, 52)[0] + 1)  # a newer version, same serials


def alter_reserved(data: bytearray) -> None:
    data[12] = 1


def truncate_consistently(data: bytearray) -> None:
    """The last entry cut off, the count and the index made to agree with the shorter file."""
    del data[-SERIAL:]
    count = struct.unpack_from("<Q", data, 56)[0] - 1
    struct.pack_into("<Q", data, 56, count)
    _set_index(data, [min(i, count) for i in _index(data)])


def reorder_index(data: bytearray) -> None:
    index = _index(data)
    index[10], index[200] = index[200], index[10]
    _set_index(data, index)


def change_entry(data: bytearray) -> None:
    data[INDEX.stop + 10 * 500 + 9] ^= 0x01  # entry 500, its last digit


TAMPERINGS = [zero_index, alter_list_version, alter_reserved, truncate_consistently, reorder_index, change_entry]


def reseal(data: bytearray) -> None:
    """The SHA-256 recomputed over the altered file, as anyone with the layout can."""
    data[16:48] = hashlib.sha256(bytes(data[:16]) + bytes(data[48:])).digest()


@pytest.fixture
def good_list(tmp_path: Path) -> bytes:
    build_denylist(TAMPER_LISTED, tmp_path / "good.bin", 7)
    return (tmp_path / "good.bin").read_bytes()


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_any_tampering_is_refused_by_the_sha256(tmp_path: Path, good_list: bytes, tamper) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(good_list)
    tamper(data)
    assert data != good_list
    (tmp_path / "bad.bin").write_bytes(data)
    with pytest.raises(DenyListError, match=r"bad\.bin: SHA-256 does not match the file"):
        DenyList(tmp_path / "bad.bin")


def test_zeroed_index_made_listed_serials_unlisted(tmp_path: Path, good_list: bytes) -> None:
    """Why the index is covered and checked: read past the checks, most listed serials are lost."""
    data = bytearray(good_list)
    zero_index(data)
    index = _index(data)
    lost = [s for s in TAMPER_LISTED if not index[bucket_of(s, 8)] < index[bucket_of(s, 8) + 1]]
    assert len(lost) > 900


@pytest.mark.parametrize(("tamper", "message"), [
    (zero_index, "entry 0 is outside its bucket"),
    (reorder_index, "prefix index out of order"),
    (lambda d: _set_index(d, [*_index(d)[:-1], 999]), r"prefix index out of bounds \(first 0, last 999, 1000"),
    (lambda d: _set_index(d, [5, *_index(d)[1:]]), "prefix index out of bounds"),
], ids=["zeroed", "reordered", "short end", "late start"])
def test_a_resealed_index_is_checked_for_order_bounds_and_buckets(tmp_path: Path, good_list: bytes, tamper,  # type: ignore[no-untyped-def]
                                                                   message: str) -> None:
    """A file whose SHA-256 was recomputed after the edit: the index checks still refuse it."""
    data = bytearray(good_list)
    tamper(data)
    reseal(data)
    (tmp_path / "bad.bin").write_bytes(data)
    with pytest.raises(DenyListError, match=message):
        DenyList(tmp_path / "bad.bin")


def test_a_format_2_file_is_refused_with_the_way_out(tmp_path: Path, good_list: bytes) -> None:
    """Format 2 (SHA-256 of the entries only, at offset 24) is refused, not read with a warning: rebuild it."""
    body = good_list[HEADER.size :]
    entries = body[4 * 257 :]
    old = MAGIC + struct.pack("<HBxIQ", 2, 8, 7, 1000) + hashlib.sha256(entries).digest() + bytes(8) + body
    (tmp_path / "v2.bin").write_bytes(old)
    with pytest.raises(DenyListError, match=r"format 2, whose SHA-256 covers the entries only; rebuild it with "
                                            r"'ykt denylist build' \(format 3\)"):
        DenyList(tmp_path / "v2.bin")
