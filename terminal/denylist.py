"""The deny list: a compact sorted binary file of application serials, searched in place.

Layout (reference §8; docs/configuration.md): a 64-byte header — magic
``YKTDENY\\0``, format version (u16), list version (u32), entry count (u64),
SHA-256 of the entries — then a prefix index of 65,537 u32 entry offsets,
then the entries: 10-byte serials stored byte-reversed and sorted. Real
serials share their leading (issuer, region) bytes; their last bytes vary,
so the reversed form spreads evenly over the index and a lookup bisects a
bucket of a few hundred entries. About 10 bytes an entry on disk and in
memory (the file is mapped, not read).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cardlib.errors import FormatError

MAGIC = b"YKTDENY\x00"
FORMAT_VERSION = 1
SERIAL = 10
HEADER = struct.Struct(">8sHIQ32s10x")  # 64 bytes
BUCKETS = 1 << 16
INDEX = struct.Struct(f"={BUCKETS + 1}I")  # native order: the index is mapped with memoryview.cast
DATA_OFFSET = HEADER.size + INDEX.size


def parse_serial_lines(lines: Iterable[str]) -> Iterator[bytes]:
    """Serials from text or CSV: first column, 20 hex digits; '#' comments, a header line."""
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        first = text.split(",", 1)[0].strip().strip('"')
        try:
            serial = bytes.fromhex(first)
        except ValueError:
            if number == 1:
                continue  # a CSV header
            raise FormatError(f"line {number}: {first[:30]!r} is not a 20-hex-digit application serial") from None
        if len(serial) != SERIAL:
            raise FormatError(f"line {number}: a serial has 20 hex digits, got {len(first)}")
        yield serial


def build_denylist(serials: Iterable[bytes], out_path: str | os.PathLike[str], list_version: int) -> int:
    """Write the binary deny list atomically; returns the number of distinct entries."""
    keys = sorted({bytes(s[::-1]) for s in serials if len(s) == SERIAL})
    entries = b"".join(keys)
    index = [0] * (BUCKETS + 1)
    for k in keys:
        index[((k[0] << 8) | k[1]) + 1] += 1
    for i in range(1, BUCKETS + 1):
        index[i] += index[i - 1]
    header = HEADER.pack(MAGIC, FORMAT_VERSION, list_version, len(keys), hashlib.sha256(entries).digest())
    tmp = f"{os.fspath(out_path)}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(header)
        fh.write(INDEX.pack(*index))
        fh.write(entries)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out_path)
    return len(keys)


@dataclass(frozen=True)
class DenyListHeader:
    format_version: int
    list_version: int
    count: int
    sha256: bytes


class DenyList:
    """A mapped deny list; ``serial in deny_list`` searches the file in place."""

    def __init__(self, path: str | os.PathLike[str], verify: bool = False) -> None:
        self.path = os.fspath(path)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise FormatError(f"{self.path}: cannot open deny list: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if size < DATA_OFFSET:
                raise FormatError(f"{self.path}: too short for a deny list ({size} bytes)")
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        magic, fmt, version, count, digest = HEADER.unpack_from(self._mm, 0)
        if magic != MAGIC:
            raise FormatError(f"{self.path}: not a deny list (bad magic)")
        if fmt != FORMAT_VERSION:
            raise FormatError(f"{self.path}: deny list format {fmt} not supported (known: {FORMAT_VERSION})")
        if size != DATA_OFFSET + count * SERIAL:
            raise FormatError(f"{self.path}: size {size} does not match {count} entries")
        self.header = DenyListHeader(fmt, version, count, digest)
        self._index = memoryview(self._mm)[HEADER.size:DATA_OFFSET].cast("I")
        if self._index[BUCKETS] != count:
            raise FormatError(f"{self.path}: prefix index does not match the entries")
        if verify and hashlib.sha256(self._mm[DATA_OFFSET:]).digest() != digest:
            raise FormatError(f"{self.path}: SHA-256 of the entries does not match the header")

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = False) -> DenyList:
        return cls(path, verify)

    @property
    def version(self) -> int:
        return self.header.list_version

    def __len__(self) -> int:
        return self.header.count

    def __contains__(self, serial: object) -> bool:
        return isinstance(serial, (bytes, bytearray)) and self.contains(bytes(serial))

    def contains(self, serial: bytes) -> bool:
        if len(serial) != SERIAL:
            return False
        key = serial[::-1]
        b = (key[0] << 8) | key[1]
        lo, hi = self._index[b], self._index[b + 1]
        mm = self._mm
        while lo < hi:
            mid = (lo + hi) >> 1
            off = DATA_OFFSET + mid * SERIAL
            probe = mm[off : off + SERIAL]
            if probe < key:
                lo = mid + 1
            elif probe > key:
                hi = mid
            else:
                return True
        return False

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.header.count):
            off = DATA_OFFSET + i * SERIAL
            yield self._mm[off : off + SERIAL][::-1]

    def close(self) -> None:
        self._index.release()
        self._mm.close()
