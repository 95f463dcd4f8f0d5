"""BER-TLV as used by ISO/IEC 7816-4 §5.2 and EMV Book 3 Annex B.

Multi-byte tags, definite lengths up to four length bytes, constructed
nesting. Strict parsing refuses padding and trailing bytes; lenient parsing
skips the 00/FF padding some cards put between objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cardlib.errors import FormatError

TAG_NAMES: dict[int, str] = {
    0x4F: "application identifier (AID)",
    0x50: "application label",
    0x61: "application template",
    0x62: "file control parameters (FCP)",
    0x6F: "file control information (FCI)",
    0x80: "file size / data",
    0x82: "file descriptor",
    0x83: "file identifier",
    0x84: "DF name",
    0x85: "proprietary information",
    0x87: "application priority indicator",
    0x88: "short file identifier (SFI)",
    0x8A: "life cycle status",
    0x8C: "security attributes",
    0xA5: "FCI proprietary template",
    0xBF0C: "FCI issuer discretionary data",
    0x5F2D: "language preference",
    0x9F08: "application version number",
    0x9F0C: "issuer discretionary data (PBOC: file 0x15)",
    0x9F4D: "log entry",
}


def tag_name(tag: int) -> str:
    return TAG_NAMES.get(tag, "")


def tag_bytes(tag: int) -> bytes:
    """The tag's encoding (1 to 4 bytes)."""
    if tag < 0:
        raise FormatError(f"negative tag {tag}")
    length = max(1, (tag.bit_length() + 7) // 8)
    raw = tag.to_bytes(length, "big")
    _check_tag_encoding(raw)
    return raw


def _check_tag_encoding(raw: bytes) -> None:
    first_multi = raw[0] & 0x1F == 0x1F
    if len(raw) == 1:
        if first_multi:
            raise FormatError(f"tag {raw.hex().upper()} announces more tag bytes")
        return
    if not first_multi:
        raise FormatError(f"tag {raw.hex().upper()}: first byte does not announce more bytes")
    for i, b in enumerate(raw[1:], 1):
        last = i == len(raw) - 1
        if bool(b & 0x80) == last:
            raise FormatError(f"tag {raw.hex().upper()}: bad continuation bits")


def is_constructed(tag: int) -> bool:
    first = tag_bytes(tag)[0]
    return bool(first & 0x20)


def encode_length(n: int) -> bytes:
    if n < 0:
        raise FormatError(f"negative length {n}")
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    if size > 4:
        raise FormatError(f"length {n} too large for BER-TLV")
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


@dataclass(frozen=True)
class Tlv:
    """One data object; ``children`` is set for constructed tags."""

    tag: int
    value: bytes = b""
    children: tuple[Tlv, ...] | None = None

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    @property
    def name(self) -> str:
        return tag_name(self.tag)

    def content(self) -> bytes:
        if self.children is not None:
            return b"".join([c.encode() for c in self.children])
        return self.value

    def encode(self) -> bytes:
        body = self.content()
        return tag_bytes(self.tag) + encode_length(len(body)) + body

    def walk(self) -> Iterator[Tlv]:
        yield self
        for child in self.children or ():
            yield from child.walk()

    def find(self, tag: int) -> Tlv | None:
        """First object with ``tag``, depth-first, self included (the order of :meth:`walk`)."""
        if self.tag == tag:
            return self
        for child in self.children or ():
            found = child.find(tag)
            if found is not None:
                return found
        return None

    def find_all(self, tag: int) -> list[Tlv]:
        return [t for t in self.walk() if t.tag == tag]


def build(tag: int, value: bytes | Sequence[Tlv]) -> Tlv:
    """A primitive object from bytes, or a constructed one from children."""
    if isinstance(value, (bytes, bytearray)):
        return Tlv(tag, bytes(value))
    return Tlv(tag, b"", tuple(value))


def _read_tag(data: bytes, pos: int, base: int) -> tuple[int, int]:
    """Tag at ``pos``; ``base`` is the offset of ``data`` in the whole input, for messages."""
    start = pos
    if pos >= len(data):
        raise FormatError(f"truncated tag at offset {base + start}")
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise FormatError(f"truncated multi-byte tag at offset {base + start}")
            b = data[pos]
            pos += 1
            if pos - start > 4:
                raise FormatError(f"tag longer than 4 bytes at offset {base + start}")
            if not b & 0x80:
                break
    return int.from_bytes(data[start:pos], "big"), pos


def _read_length(data: bytes, pos: int, base: int) -> tuple[int, int]:
    start = pos
    if pos >= len(data):
        raise FormatError(f"truncated length at offset {base + start}")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    if first == 0x80:
        raise FormatError(f"indefinite length (80) not allowed at offset {base + start}")
    size = first & 0x7F
    if size > 4:
        raise FormatError(f"length field of {size} bytes too long at offset {base + start}")
    if pos + size > len(data):
        raise FormatError(f"truncated length at offset {base + start}")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def _parse(data: bytes, base: int, strict: bool, depth: int) -> list[Tlv]:
    if depth > 32:
        raise FormatError(f"TLV nested too deeply at offset {base}")
    out: list[Tlv] = []
    pos = 0
    size = len(data)
    while pos < size:
        first = data[pos]
        if first == 0x00 or first == 0xFF:
            if strict:
                raise FormatError(f"padding byte {first:02X} at offset {base + pos} (strict mode)")
            pos += 1
            continue
        tag_start = pos
        tag, pos = _read_tag(data, pos, base)
        length, pos = _read_length(data, pos, base)
        end = pos + length
        if end > size:
            raise FormatError(
                f"tag {tag:X} at offset {base + tag_start}: length {length} beyond the "
                f"{size - pos} bytes left"
            )
        if first & 0x20:
            out.append(Tlv(tag, b"", tuple(_parse(data[pos:end], base + pos, strict, depth + 1))))
        else:
            out.append(Tlv(tag, data[pos:end]))
        pos = end
    return out


def parse(data: bytes, *, strict: bool = True) -> list[Tlv]:
    """Parse a sequence of BER-TLV objects; FormatError names problem and offset."""
    return _parse(bytes(data), 0, strict, 0)


def parse_one(data: bytes, *, strict: bool = True) -> Tlv:
    """Parse exactly one object."""
    objs = parse(data, strict=strict)
    if len(objs) != 1:
        raise FormatError(f"expected one TLV object, found {len(objs)}")
    return objs[0]


def to_json(obj: Tlv) -> dict[str, object]:
    """The `ykt tlv --json` shape: tag, length, value or children."""
    out: dict[str, object] = {"tag": tag_bytes(obj.tag).hex().upper(), "length": len(obj.content())}
    if obj.children is not None:
        out["children"] = [to_json(c) for c in obj.children]
    else:
        out["value"] = obj.value.hex().upper()
    if obj.name:
        out["name"] = obj.name
    return out
