"""The deny list: a mapped binary file of application serials, searched in place.

Transit-purse reference §8 fixes what the file must carry (10-byte serials, a
header with format version, list version, entry count and the SHA-256 of the
entries); the layout is this project's (docs/configuration.md, "Deny list
file"), all integers little-endian:

* header, 64 bytes: magic ``YKTDENY\\0``, format version u16, index bits u8,
  a zero byte, list version u32, entry count u64, SHA-256 of the entries
  (32 bytes), 8 zero bytes;
* the prefix index: 2**bits + 1 u32 offsets, where bucket ``b``'s entries are
  ``index[b] .. index[b+1]``;
* the entries, 10 bytes each, sorted by (bucket, serial), no duplicates.

The bucket of a serial is a multiplicative hash of its bytes, not its leading
bytes: real serials share issuer and region prefixes and are often decimal
digits in BCD, so raw bytes would fill a few buckets and leave the rest
empty. The index has about one bucket per 4–8 entries (under 1 byte an
entry), so a lookup scans a handful of entries with one ``find`` in C.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cardlib.errors import FormatError
from cardlib.safefiles import atomic_write, open_regular

MAGIC = b"YKTDENY\x00"
FORMAT_VERSION = 2
SERIAL = 10
HEADER = struct.Struct("<8sHBxIQ32s8x")  # 64 bytes
MIN_BITS, MAX_BITS = 8, 24
_K = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd: a multiplicative hash
_M64 = (1 << 64) - 1
_HEX20 = re.compile(r"[0-9A-Fa-f]{20}")


def _bits_for(count: int) -> int:
    """About one bucket per 4–8 entries, within [MIN_BITS, MAX_BITS]."""
    return max(MIN_BITS, min(MAX_BITS, (count // 4).bit_length() - 1))


def bucket_of(serial: bytes, bits: int) -> int:
    """The index bucket of a serial (stable across processes and machines)."""
    return ((int.from_bytes(serial, "big") * _K) & _M64) >> (64 - bits)


def parse_serial_lines(lines: Iterable[str]) -> Iterator[bytes]:
    """Serials from text or CSV: the first column, 20 hex digits.

    '#' starts a comment, blank lines are skipped, and the first line with
    content may be a header (it is skipped when it is not a serial). Any
    other bad line is a FormatError naming its number.
    """
    seen_content = False
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        first = text.split(",", 1)[0].split(";", 1)[0].strip().strip('"').strip()
        if _HEX20.fullmatch(first):
            seen_content = True
            yield bytes.fromhex(first)
            continue
        if not seen_content and not re.fullmatch(r"[0-9A-Fa-f\s]+", first):
            seen_content = True
            continue  # a header line
        raise FormatError(f"line {number}: {first[:30]!r} is not an application serial (20 hex digits)")


@dataclass(frozen=True)
class DenyListHeader:
    format_version: int
    index_bits: int
    list_version: int
    count: int
    sha256: bytes

    def to_json(self) -> dict[str, object]:
        return {"format_version": self.format_version, "list_version": self.list_version, "count": self.count,
                "index_bits": self.index_bits, "sha256": self.sha256.hex().upper()}


def build_denylist(serials: Iterable[bytes], out_path: str | os.PathLike[str], list_version: int) -> int:
    """Write the binary deny list atomically (temporary file, fsync, rename).

    Returns the number of distinct serials. The serials are gathered as
    bytes, then in 256 coarse groups of 13-byte sort keys (bucket ‖ serial),
    each group sorted on its own: no Python object lives per entry longer
    than its group's sort.
    """
    if not 0 <= list_version <= 0xFFFFFFFF:
        raise FormatError(f"list version must be 0..4294967295, got {list_version}")
    raw = bytearray()
    for n, serial in enumerate(serials, 1):
        if len(serial) != SERIAL:
            raise FormatError(f"serial {n}: an application serial has {SERIAL} bytes, got {len(serial)}")
        raw += serial
    bits = _bits_for(len(raw) // SERIAL)
    shift = 64 - bits
    groups = [bytearray() for _ in range(256)]
    for i in range(0, len(raw), SERIAL):
        serial = bytes(raw[i : i + SERIAL])
        b = ((int.from_bytes(serial, "big") * _K) & _M64) >> shift
        groups[b >> (bits - 8)] += b.to_bytes(3, "big") + serial
    del raw
    counts = array("I", bytes(4 * ((1 << bits) + 1)))
    digest = hashlib.sha256()
    total = 0
    target = os.fspath(out_path)
    data_offset = HEADER.size + 4 * ((1 << bits) + 1)
    try:
        with atomic_write(target, "deny list", 0o644) as fh:
            fh.seek(data_offset)
            for gi in range(256):
                raw = groups[gi]
                keys = sorted({bytes(raw[i : i + 13]) for i in range(0, len(raw), 13)})
                groups[gi] = bytearray()
                chunk = b"".join(k[3:] for k in keys)
                for k in keys:
                    counts[int.from_bytes(k[:3], "big") + 1] += 1
                fh.write(chunk)
                digest.update(chunk)
                total += len(keys)
            for i in range(1, len(counts)):
                counts[i] += counts[i - 1]
            if sys.byteorder != "little":
                counts.byteswap()
            fh.seek(0)
            fh.write(HEADER.pack(MAGIC, FORMAT_VERSION, bits, list_version, total, digest.digest()))
            fh.write(counts.tobytes())
    except OSError as exc:
        raise FormatError(f"cannot write deny list {target!r}: {exc.strerror}") from None
    return total


class DenyList:
    """A mapped deny list; ``serial in deny_list`` searches the file in place."""

    def __init__(self, path: str | os.PathLike[str], verify: bool = False) -> None:
        self.path = os.fspath(path)
        try:
            fh = open_regular(self.path, "deny list")  # a FIFO or a folder is refused, not waited on
        except OSError as exc:
            raise FormatError(f"{self.path}: cannot open deny list: {exc.strerror}") from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size < HEADER.size:
                raise FormatError(f"{self.path}: too short for a deny list ({size} bytes)")
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._index: memoryview | array[int] = array("I")
        try:
            self._open(size, verify)
        except BaseException:
            self.close()
            raise

    def _open(self, size: int, verify: bool) -> None:
        magic, fmt, bits, version, count, digest = HEADER.unpack_from(self._mm, 0)
        if magic != MAGIC:
            raise FormatError(f"{self.path}: not a deny list (bad magic)")
        if fmt != FORMAT_VERSION:
            raise FormatError(f"{self.path}: deny list format {fmt} not supported (known: {FORMAT_VERSION})")
        if not MIN_BITS <= bits <= MAX_BITS:
            raise FormatError(f"{self.path}: index of {bits} bits is out of range")
        self._data = HEADER.size + 4 * ((1 << bits) + 1)
        if size != self._data + count * SERIAL:
            raise FormatError(f"{self.path}: size {size} does not match {count} entries")
        self.header = DenyListHeader(fmt, bits, version, count, digest)
        self._shift = 64 - bits
        if sys.byteorder == "little":
            self._index = memoryview(self._mm)[HEADER.size : self._data].cast("I")
        else:
            self._index = array("I", self._mm[HEADER.size : self._data])
            self._index.byteswap()
        if self._index[0] != 0 or self._index[1 << bits] != count:
            raise FormatError(f"{self.path}: prefix index does not match the entries")
        if verify and hashlib.sha256(memoryview(self._mm)[self._data :]).digest() != digest:
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
        """Whether the serial is listed: one bucket of the index, then a find within it."""
        if len(serial) != SERIAL:
            return False
        b = ((int.from_bytes(serial, "big") * _K) & _M64) >> self._shift
        index = self._index
        start = self._data + index[b] * SERIAL
        end = self._data + index[b + 1] * SERIAL
        mm = self._mm
        pos = mm.find(serial, start, end)
        while pos >= 0:
            if (pos - start) % SERIAL == 0:
                return True
            pos = mm.find(serial, pos + 1, end)  # matched across two entries: look on
        return False

    def __iter__(self) -> Iterator[bytes]:
        """Entries in file order (by bucket), not in serial order."""
        for i in range(self.header.count):
            off = self._data + i * SERIAL
            yield self._mm[off : off + SERIAL]

    def close(self) -> None:
        if isinstance(self._index, memoryview):
            self._index.release()
        self._mm.close()

    def __enter__(self) -> DenyList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
