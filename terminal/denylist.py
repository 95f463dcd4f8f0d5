"""The deny list: a mapped binary file of application serials, searched in place.

The project's profile fixes what the file must carry (10-byte serials, a
header with format version, list version, entry count and a SHA-256 that
covers the header fields, the index and the entries); the layout is this
project's (docs/configuration.md, "Deny list file"), all integers
little-endian, format 3:

* header, 64 bytes: magic ``YKTDENY\\0``, format version u16, 6 zero bytes,
  SHA-256 (32 bytes) of every other byte of the file, index bits u8, 3 zero
  bytes, list version u32, entry count u64;
* the prefix index: 2**bits + 1 u32 offsets, where bucket ``b``'s entries are
  ``index[b] .. index[b+1]``;
* the entries, 10 bytes each, sorted by (bucket, serial), no duplicates.

The bucket of a serial is a multiplicative hash of its bytes, not its leading
bytes: real serials share issuer and region prefixes and are often decimal
digits in BCD, so raw bytes would fill a few buckets and leave the rest
empty. The index has about one bucket per 16–32 entries (a quarter of a
byte an entry), so a lookup scans a few dozen entries with one ``find`` in C.

A list fails closed: opening checks the size, the SHA-256, the index's bounds
and order and that sampled entries sit in their bucket, and refuses the file
(:class:`DenyListError`) when any check fails. An index that does not match
the entries would make a listed card look unlisted.
"""

from __future__ import annotations

import hashlib
import mmap
import operator
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
FORMAT_VERSION = 3
SERIAL = 10
HEADER = struct.Struct("<8sH6x32sB3xIQ")  # 64 bytes
DIGEST = slice(16, 48)  # the SHA-256 field; the digest covers every other byte of the file
MIN_BITS, MAX_BITS = 8, 24
SAMPLES = 4096  # entries checked against their bucket on open
_K = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd: a multiplicative hash
_M64 = (1 << 64) - 1
_HEX20 = re.compile(r"[0-9A-Fa-f]{20}")


class DenyListError(FormatError):
    """A deny list file that is not a good list: refused as a whole, never searched."""


def _bits_for(count: int) -> int:
    """About one bucket per 16–32 entries, within [MIN_BITS, MAX_BITS].

    Opening checks the whole index in Python (about 40 ns an offset), so its
    size is the open time's other half beside the SHA-256; a lookup's ``find``
    over 20-odd entries (200 bytes) costs about what it did over 5.
    """
    return max(MIN_BITS, min(MAX_BITS, (count // 16).bit_length() - 1))


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


def _gathered(serials: Iterable[bytes]) -> bytearray:
    """The serials one after the other, each checked for its size."""
    raw = bytearray()
    for n, serial in enumerate(serials, 1):
        if len(serial) != SERIAL:
            raise FormatError(f"serial {n}: an application serial has {SERIAL} bytes, got {len(serial)}")
        raw += serial
    return raw


def _grouped(raw: bytearray, bits: int) -> list[bytearray]:
    """The 13-byte sort keys (bucket ‖ serial) in 256 groups by the bucket's top byte."""
    shift = 64 - bits
    groups = [bytearray() for _ in range(256)]
    for i in range(0, len(raw), SERIAL):
        serial = bytes(raw[i : i + SERIAL])
        b = ((int.from_bytes(serial, "big") * _K) & _M64) >> shift
        groups[b >> (bits - 8)] += b.to_bytes(3, "big") + serial
    return groups


def _sorted(groups: list[bytearray], bits: int) -> tuple[array[int], list[bytes]]:
    """Each group sorted without duplicates (emptied as it goes): the count of serials in
    each bucket (shifted by one, for the running sum) and the serials of each group."""
    counts = array("I", bytes(4 * ((1 << bits) + 1)))
    chunks: list[bytes] = []
    for gi in range(256):
        raw = groups[gi]
        keys = sorted({bytes(raw[i : i + 13]) for i in range(0, len(raw), 13)})
        groups[gi] = bytearray()
        chunks.append(b"".join(k[3:] for k in keys))
        for k in keys:
            counts[int.from_bytes(k[:3], "big") + 1] += 1
    return counts, chunks


def build_denylist(serials: Iterable[bytes], out_path: str | os.PathLike[str], list_version: int) -> int:
    """Write the binary deny list atomically (temporary file, fsync, rename).

    Returns the number of distinct serials. The serials are gathered as
    bytes, then in 256 coarse groups of 13-byte sort keys (bucket ‖ serial),
    each group sorted on its own: no Python object lives per entry longer
    than its group's sort. The sorted groups are kept as bytes until the
    index is known, because the SHA-256 covers the header and the index,
    which come before the entries in the file.
    """
    if not 0 <= list_version <= 0xFFFFFFFF:
        raise FormatError(f"list version must be 0..4294967295, got {list_version}")
    raw = _gathered(serials)
    bits = _bits_for(len(raw) // SERIAL)
    groups = _grouped(raw, bits)
    del raw
    counts, chunks = _sorted(groups, bits)
    for i in range(1, len(counts)):
        counts[i] += counts[i - 1]
    total = counts[-1]
    if sys.byteorder != "little":
        counts.byteswap()
    header = bytearray(HEADER.pack(MAGIC, FORMAT_VERSION, bytes(32), bits, list_version, total))
    digest = hashlib.sha256(header[: DIGEST.start])
    digest.update(header[DIGEST.stop :])
    digest.update(counts)
    for chunk in chunks:
        digest.update(chunk)
    header[DIGEST] = digest.digest()
    target = os.fspath(out_path)
    try:
        with atomic_write(target, "deny list", 0o644) as fh:
            fh.write(header)
            fh.write(counts.tobytes())
            for chunk in chunks:
                fh.write(chunk)
    except OSError as exc:
        raise FormatError(f"cannot write deny list {target!r}: {exc.strerror}") from None
    return total


class DenyList:
    """A mapped deny list; ``serial in deny_list`` searches the file in place.

    Opening refuses a file that fails any check (:class:`DenyListError`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            fh = open_regular(self.path, "deny list")  # a FIFO or a folder is refused, not waited on
        except OSError as exc:
            raise DenyListError(f"{self.path}: cannot open deny list: {exc.strerror}") from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size < HEADER.size:
                raise DenyListError(f"{self.path}: too short for a deny list ({size} bytes)")
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._index: memoryview | array[int] = array("I")
        try:
            self._open(size)
        except BaseException:
            self.close()
            raise

    def _open(self, size: int) -> None:
        magic, fmt, digest, bits, version, count = HEADER.unpack_from(self._mm, 0)
        if magic != MAGIC:
            raise DenyListError(f"{self.path}: not a deny list (bad magic)")
        if fmt == 2:
            raise DenyListError(f"{self.path}: deny list format 2, whose SHA-256 covers the entries only; "
                                f"rebuild it with 'ykt denylist build' (format {FORMAT_VERSION})")
        if fmt != FORMAT_VERSION:
            raise DenyListError(f"{self.path}: deny list format {fmt} not supported (known: {FORMAT_VERSION})")
        if not MIN_BITS <= bits <= MAX_BITS:
            raise DenyListError(f"{self.path}: index of {bits} bits is out of range")
        self._data = HEADER.size + 4 * ((1 << bits) + 1)
        if size != self._data + count * SERIAL:
            raise DenyListError(f"{self.path}: size {size} does not match {count} entries")
        mm = memoryview(self._mm)
        check = hashlib.sha256(mm[: DIGEST.start])
        check.update(mm[DIGEST.stop :])
        mm.release()
        if check.digest() != digest:
            raise DenyListError(f"{self.path}: SHA-256 does not match the file (altered or damaged)")
        self.header = DenyListHeader(fmt, bits, version, count, digest)
        self._shift = 64 - bits
        if sys.byteorder == "little":
            self._index = memoryview(self._mm)[HEADER.size : self._data].cast("I")
        else:
            self._index = array("I", self._mm[HEADER.size : self._data])
            self._index.byteswap()
        self._check_index()

    def _check_index(self) -> None:
        """Bounds and order of the index, then a sample of entries each in its bucket's range.

        The SHA-256 shows the file is as its builder wrote it; these show the
        builder wrote an index that finds every entry (a wrong one would make
        listed cards look unlisted).
        """
        index, count = self._index, self.header.count
        if index[0] != 0 or index[-1] != count:
            raise DenyListError(f"{self.path}: prefix index out of bounds (first {index[0]}, last {index[-1]}, "
                                f"{count} entries)")
        rest = index[1:]
        try:
            ordered = all(map(operator.le, index, rest))
        finally:
            if isinstance(rest, memoryview):
                rest.release()  # a view of the map: the map cannot close while it lives
        if not ordered:
            raise DenyListError(f"{self.path}: prefix index out of order")
        for i in range(0, count, max(1, count // SAMPLES)):
            off = self._data + i * SERIAL
            b = bucket_of(self._mm[off : off + SERIAL], self.header.index_bits)
            if not index[b] <= i < index[b + 1]:
                raise DenyListError(f"{self.path}: entry {i} is outside its bucket {b} of the prefix index")

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DenyList:
        return cls(path)

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
