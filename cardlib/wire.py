"""Wire formats declared once: a construct, its vectors and its source.

Every file record, command data field and response of the card's language is a
:class:`Declaration` (the way osmocom pySim declares its files): ``build`` and
``parse`` come from the construct, a value that does not fit is a FormatError,
and the vectors beside it are bytes with the values they mean — public bytes
with the source named, or vectors marked *own* that independent code computed.
``tests/cardlib/test_declarations.py`` walks every declaration both ways, with
the compiled and the interpreted construct.

Why compiled: construct's interpreter costs about 11 µs per record, its
compiled form about 3.5 µs, and a purchase reads and writes a dozen of them.
But compiled ``build`` does not check a byte string's length (``Bytes(2)``
given one byte writes one byte), so :func:`compiled` checks each field the
declaration sizes — byte strings and integers — before it builds, and the
whole length after. A declaration whose fields it cannot size is built by the
interpreter, which checks them itself. This is the one place that knows it.

The transaction path packs command data, responses and MAC/TAC inputs about
twenty times a purchase, so a declaration of fixed-size fields also has
``pack(*values)`` and ``unpack(raw)``: the fields in declaration order, one
``struct`` call and the byte strings' lengths checked (under 1 µs, where a
``build`` from a dict takes about 3). A typed class whose fields carry their
construct (cardlib/declared.py) is declared through :func:`declare` too.
"""


from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from construct import (
    Adapter,
    Bytes,
    BytesInteger,
    Const,
    Construct,
    ConstructError,
    Container,
    FormatField,
    GreedyRange,
    Padded,
    Renamed,
    SizeofError,
    Struct,
)

from cardlib.errors import FormatError

#: The modules that declare wire formats; the walk test imports them all.
#: A module that declares is added here.
DECLARING_MODULES: tuple[str, ...] = (
    "cardlib.pboc.capp",
    "cardlib.pboc.fci",
    "cardlib.pboc.files",
    "cardlib.ssse.files",
    "cardlib.pboc.purse",
    "cardlib.pboc.macs",
    "cardlib.pboc.psam",
    "cardlib.ssse.commands",
)

_BUILD_ERRORS = (ConstructError, struct.error, TypeError, ValueError, KeyError, AttributeError)


@dataclass(frozen=True)
class Vector:
    """Bytes and the value they mean. ``source`` starts with "public:" (where the
    bytes were published) or "own:" (how independent code computed them)."""

    raw: bytes
    value: Mapping[str, Any]
    source: str

    def __post_init__(self) -> None:
        if not self.source.startswith(("public:", "own:")):
            raise ValueError(f"vector source must start with 'public:' or 'own:', got {self.source!r}")


def _fixed_size(con: Construct) -> int | None:
    try:
        return int(con.sizeof())
    except (SizeofError, ConstructError):
        return None


def _field_check(name: str, con: Construct) -> Callable[[Any], str | None] | None:
    """A check of one field's value, derived from its construct; None when the
    construct is not one of the plain kinds (byte string, integer) nor a sized adapter."""
    if isinstance(con, Adapter) and _fixed_size(con) is not None:
        # compiled construct emits no code for an adapter: it calls the adapter, whose
        # encoding checks the value and whose sized subcon checks the length
        return _present
    if isinstance(con, GreedyRange) and isinstance(con.subcon, Bytes) and isinstance(con.subcon.length, int):
        item = _field_check(f"each of {name}", con.subcon)
        assert item is not None

        def check_items(value: Any) -> str | None:
            if not isinstance(value, (list, tuple)):
                return f"{name} is not a sequence"
            return next((problem for problem in map(item, value) if problem is not None), None)

        return check_items
    if isinstance(con, Bytes) and isinstance(con.length, int):
        return _bytes_check(name, con.length)
    bits_signed = _integer_size(con)
    if bits_signed is None:
        return None
    return _integer_check(name, *bits_signed)


def _integer_size(con: Construct) -> tuple[int, bool] | None:
    """Bits and signedness of a fixed-size integer construct, None for anything else."""
    if isinstance(con, FormatField):
        if con.fmtstr[-1] not in "BHILQbhilq":
            return None
        return 8 * struct.calcsize(con.fmtstr), con.fmtstr[-1].islower()
    if isinstance(con, BytesInteger) and isinstance(con.length, int):
        return 8 * con.length, bool(con.signed)
    return None


def _bytes_check(name: str, size: int) -> Callable[[Any], str | None]:
    def check_bytes(value: Any) -> str | None:
        if not isinstance(value, (bytes, bytearray)):
            return f"{name} is not bytes"
        if len(value) != size:
            return f"{name} must be {size} bytes, got {len(value)}"
        return None

    return check_bytes


def _integer_check(name: str, bits: int, signed: bool) -> Callable[[Any], str | None]:
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    def check_int(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name} is not an integer"
        if not low <= value <= high:
            return f"{name} {value} does not fit in {bits // 8} byte(s)"
        return None

    return check_int


class Declaration:
    """One wire format: ``build(value)`` → bytes, ``parse(bytes)`` → dict of fields."""

    def __init__(self, name: str, construct: Construct, *, cite: str,
                 vectors: tuple[Vector, ...] = (), compile: bool = True) -> None:
        self.name = name
        self.construct = construct
        self.cite = cite
        self.vectors = vectors
        self.size = _fixed_size(construct)
        self._names = tuple(sub.name for sub in getattr(construct, "subcons", ())
                            if isinstance(sub, Renamed) and sub.name)
        # compiled parsing does not check that a read got all it asked for (a length prefix
        # larger than the bytes left reads short): only a fixed size, checked first, makes it safe
        self.fast = compiled(construct) if compile and self.size is not None else construct
        self._checks = _struct_checks(construct)
        self._flat = _FlatCodec.of(name, construct) if compile and self._checks is not None else None
        if self._flat is not None and self._flat.positional:
            self._flat.explain = self._explain
            self.pack = self._flat.pack  # type: ignore[method-assign]  # one call less on the transaction path
            self.unpack = self._flat.unpack  # type: ignore[method-assign]

    def pack(self, *values: Any) -> bytes:
        """``build`` with the fields given in declaration order (constants and padding left out)."""
        return self.build(dict(zip(self.fields(), values, strict=True)))

    def unpack(self, raw: bytes) -> tuple[Any, ...]:
        """``parse`` as a tuple in declaration order, a repeated field as a tuple too."""
        fields = self.parse(raw)
        return tuple(tuple(value) if isinstance(value, list) else value
                     for value in (fields[name] for name in self.fields()))

    def fields(self) -> tuple[str, ...]:
        """The names ``pack`` takes, in order."""
        return self._names

    def shifts(self) -> dict[str, int]:
        """Each field's place as a left shift in bits of the bytes read as one big-endian
        number (for code that builds that number from the fields directly); fixed size only."""
        if self.size is None:
            raise TypeError(f"{self.name}: not of a fixed size")
        subcons = self.construct.subcons
        sizes = [sub.sizeof() for sub in subcons]
        return {sub.name: 8 * sum(sizes[at + 1 :]) for at, sub in enumerate(subcons)
                if isinstance(sub, Renamed) and sub.name}

    def _explain(self, values: tuple[Any, ...]) -> FormatError:
        """The error ``build`` gives for ``values`` (once ``pack`` failed)."""
        obj = dict(zip(self.fields(), values, strict=False))  # pack may have been given too few
        for key, check in self._checks or ():
            problem = check(obj[key]) if key in obj else f"{key} is missing"
            if problem is not None:
                return FormatError(f"{self.name}: cannot encode: {problem}")
        return FormatError(f"{self.name}: cannot encode {values!r}")

    def build(self, value: Mapping[str, Any] | None = None, **fields: Any) -> bytes:
        """The bytes of ``value`` (or the keyword fields); FormatError if a field does not fit."""
        obj = dict(value or (), **fields)
        if self._checks is None:  # not all fields sized: the interpreter checks them
            return self._build(self.construct, obj)
        for key, check in self._checks:
            if key not in obj:
                raise FormatError(f"{self.name}: cannot encode: {key} is missing")
            problem = check(obj[key])
            if problem is not None:
                raise FormatError(f"{self.name}: cannot encode: {problem}")
        if self._flat is not None:
            return self._flat.build(obj)
        raw = self._build(self.fast, obj)
        if self.size is not None and len(raw) != self.size:  # a guard; the checks above prevent it
            raise FormatError(f"{self.name}: encoded {len(raw)} bytes, the format holds {self.size}")
        return raw

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The fields of ``raw``; FormatError if it is too short or too long."""
        if self._flat is not None:
            return self._flat.parse(raw)
        return self._parse(self.fast, raw)

    def build_interpreted(self, value: Mapping[str, Any]) -> bytes:
        """``build`` by construct's interpreter alone (for the walk test)."""
        return self._build(self.construct, dict(value))

    def parse_interpreted(self, raw: bytes) -> dict[str, Any]:
        """``parse`` by construct's interpreter alone (for the walk test)."""
        return self._parse(self.construct, raw)

    def _build(self, con: Construct, obj: dict[str, Any]) -> bytes:
        try:
            return bytes(con.build(obj))
        except _BUILD_ERRORS as exc:
            raise FormatError(f"{self.name}: cannot encode: {_reason(exc)}") from None

    def _parse(self, con: Construct, raw: bytes) -> dict[str, Any]:
        if self.size is not None and len(raw) != self.size:
            raise FormatError(f"{self.name}: expected {self.size} bytes, got {len(raw)}")
        stream = io.BytesIO(raw)
        try:
            value = con.parse_stream(stream)
        except (ConstructError, struct.error, ValueError) as exc:
            raise FormatError(f"{self.name}: {_reason(exc)}") from None
        if stream.tell() != len(raw):
            raise FormatError(f"{self.name}: {len(raw) - stream.tell()} byte(s) left over")
        fields: dict[str, Any] = plain(value)
        return fields

    def __repr__(self) -> str:
        return f"Declaration({self.name!r}, size={self.size})"


def _present(value: Any) -> str | None:
    return None


def _struct_checks(con: Construct) -> tuple[tuple[str, Callable[[Any], str | None]], ...] | None:
    if not isinstance(con, Struct):
        return None
    checks = []
    for sub in con.subcons:
        if isinstance(sub, (Padded, Const)) and _fixed_size(sub) is not None:
            continue  # RFU bytes and fixed tags: nothing of the value's to check
        if not isinstance(sub, Renamed) or sub.name is None:
            return None
        check = _field_check(sub.name, sub.subcon)
        if check is None:
            return None
        checks.append((sub.name, check))
    return tuple(checks)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def plain(value: Any) -> Any:
    """A parsed value without construct's bookkeeping (``_io`` and friends)."""
    if isinstance(value, Container):
        return {key: plain(item) for key, item in value.items() if not key.startswith("_")}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def compiled(con: Construct) -> Construct:
    """``con`` compiled by construct to Python code: the one place declarations are compiled."""
    return con.compile()


class _FlatCodec:
    """The fast path of a record of fixed-size fields — integers, byte strings, sized
    adapters, RFU padding, constant bytes — as one ``struct`` format: about 1–3 µs a
    record where construct's compiled code takes 10–20 µs. Only after the field checks
    of :meth:`Declaration.build`; the walk test checks it against the interpreter."""

    def __init__(self, name: str, fmt: str, fields: list[tuple[str, str, Any]], tail: tuple[str, int] | None = None,
                 ) -> None:
        self.name = name
        self.struct = struct.Struct(fmt)
        self.fields = fields  # (name, kind, detail): kind "v" as is, "i" n-byte integer, "a" adapter, "c" constant
        self.plain = all(kind == "v" for _, kind, _ in fields)
        self.tail = tail  # a last field of N byte strings of one size: (name, size)
        # pack and unpack by position: every kind but adapters (their codes need the dict path)
        self.positional = all(kind != "a" for _, kind, _ in fields)
        args = [key for key, kind, _ in fields if kind != "c"]
        self.sized = [(args.index(key), detail) for key, kind, detail in fields if kind == "v" and detail]
        self.odd = [(args.index(key), *detail) for key, kind, detail in fields if kind == "i"]
        self.consts = [(at, detail) for at, (_, kind, detail) in enumerate(fields) if kind == "c"]
        self.explain: Callable[[tuple[Any, ...]], FormatError] = lambda values: FormatError(f"cannot encode {values}")
        if tail is None:  # one call less on the transaction path
            self.pack = self._pack  # type: ignore[method-assign]
            self.unpack = self._unpack  # type: ignore[method-assign]

    @classmethod
    def of(cls, name: str, con: Construct) -> _FlatCodec | None:
        if not isinstance(con, Struct):
            return None
        subcons = list(con.subcons)
        tail = _tail(subcons[-1]) if subcons else None
        if tail is not None:
            subcons.pop()
        fmt, fields = ">", list[tuple[str, str, Any]]()
        for sub in subcons:
            piece = _flat_piece(sub)
            if piece is None:
                return None
            fmt += piece[0]
            if piece[1] is not None:
                fields.append(piece[1])
        return cls(name, fmt, fields, tail)

    def build(self, obj: Mapping[str, Any]) -> bytes:
        if self.tail is not None:
            return self._pack(*[obj[key] for key, kind, _ in self.fields if kind != "c"]) + b"".join(obj[self.tail[0]])
        try:
            if self.plain:
                return self.struct.pack(*[obj[key] for key, _, _ in self.fields])
            values = []
            for key, kind, detail in self.fields:
                if kind == "v":
                    values.append(obj[key])
                elif kind == "i":
                    values.append(obj[key].to_bytes(detail[0], "big", signed=detail[1]))
                elif kind == "c":
                    values.append(detail)
                else:
                    raw = detail[0]._encode(obj[key], None, key)
                    if not isinstance(raw, bytes) or len(raw) != detail[1]:
                        raise ValueError(f"{key} must be {detail[1]} bytes")
                    values.append(raw)
            return self.struct.pack(*values)
        except _BUILD_ERRORS as exc:
            raise FormatError(f"{self.name}: cannot encode: {_reason(exc)}") from None

    def parse(self, raw: bytes) -> dict[str, Any]:
        if self.tail is not None:
            *head, items = self.unpack(raw)
            out = dict(zip([key for key, kind, _ in self.fields if kind != "c"], head, strict=True))
            out[self.tail[0]] = list(items)  # a list, as construct gives it
            return out
        if len(raw) != self.struct.size:
            raise FormatError(f"{self.name}: expected {self.struct.size} bytes, got {len(raw)}")
        values = self.struct.unpack(raw)
        out = {}
        try:
            for (key, kind, detail), value in zip(self.fields, values, strict=True):
                if kind == "v":
                    out[key] = value
                elif kind == "i":
                    out[key] = int.from_bytes(value, "big", signed=detail[1])
                elif kind == "c":
                    if value != detail:
                        raise ValueError(f"expected {detail.hex().upper()}, got {value.hex().upper()}")
                else:
                    out[key] = detail[0]._decode(value, None, key)
        except (ValueError, struct.error) as exc:
            raise FormatError(f"{self.name}: {_reason(exc)}") from None
        return out

    def pack(self, *values: Any) -> bytes:
        """The bytes of the fields given in order, the last one the tail's items."""
        assert self.tail is not None
        items = values[-1]
        if not isinstance(items, (list, tuple)) or any(len(item) != self.tail[1] for item in items):
            raise self.explain(values)
        return self._pack(*values[:-1]) + b"".join(items)

    def _pack(self, *values: Any) -> bytes:
        try:
            for index, size in self.sized:
                if len(values[index]) != size:
                    raise self.explain(values)
            if self.plain:
                return self.struct.pack(*values)
            items = list(values)
            for index, size, signed in self.odd:
                items[index] = items[index].to_bytes(size, "big", signed=signed)
            for place, value in self.consts:
                items.insert(place, value)
            return self.struct.pack(*items)
        except (struct.error, TypeError, OverflowError, AttributeError, IndexError):
            raise self.explain(values) from None

    def unpack(self, raw: bytes) -> tuple[Any, ...]:
        """The fields of ``raw`` in order, the last one the tail's items."""
        assert self.tail is not None
        size, n = self.struct.size, self.tail[1]
        if len(raw) < size or (len(raw) - size) % n:
            raise FormatError(f"{self.name}: {len(raw)} bytes is not {size} + {n}·N")
        items = tuple(bytes(raw[at : at + n]) for at in range(size, len(raw), n))
        return (*self._unpack(raw[:size]), items)

    def _unpack(self, raw: bytes) -> tuple[Any, ...]:
        try:
            values = self.struct.unpack(raw)
        except struct.error:
            raise FormatError(f"{self.name}: expected {self.struct.size} bytes, got {len(raw)}") from None
        if self.plain:
            return values
        items = list(values)
        for place, value in reversed(self.consts):
            if items.pop(place) != value:
                raise FormatError(f"{self.name}: expected {value.hex().upper()}, got {items[place].hex().upper()}")
        for index, _size, signed in self.odd:
            items[index] = int.from_bytes(items[index], "big", signed=signed)
        return tuple(items)


def _tail(sub: Construct) -> tuple[str, int] | None:
    """(name, item size) of a last field of N byte strings of one size, else None."""
    inner = getattr(sub, "subcon", None)
    if (isinstance(sub, Renamed) and isinstance(inner, GreedyRange) and isinstance(inner.subcon, Bytes)
            and isinstance(inner.subcon.length, int) and inner.subcon.length > 0):
        return str(sub.name), inner.subcon.length
    return None


def _flat_piece(sub: Construct) -> tuple[str, tuple[str, str, Any] | None] | None:
    """One field's struct code and its entry (None for RFU padding); None when it is
    not of a fixed size or not a kind the struct path knows."""
    size = _fixed_size(sub)
    if size is None:
        return None
    if isinstance(sub, Padded) and not isinstance(sub, Renamed):
        return f"{size}x", None
    if isinstance(sub, Const) and isinstance(sub.value, bytes):
        return f"{size}s", ("", "c", sub.value)
    if not isinstance(sub, Renamed):
        return None
    inner = sub.subcon
    if isinstance(inner, FormatField) and inner.fmtstr[0] == ">" and inner.fmtstr[-1] in "BHILQbhilq":
        return inner.fmtstr[1:], (sub.name, "v", None)
    if isinstance(inner, BytesInteger) and isinstance(inner.length, int) and inner.swapped is False:
        return f"{size}s", (sub.name, "i", (size, bool(inner.signed)))
    if isinstance(inner, Bytes) and isinstance(inner.length, int):
        return f"{size}s", (sub.name, "v", size)  # struct pads a short one: pack checks the size
    if isinstance(inner, Adapter) and isinstance(inner.subcon, Bytes):
        return f"{size}s", (sub.name, "a", (inner, size))
    return None


REGISTRY: dict[str, Declaration] = {}


def declare(name: str, construct: Construct, *, cite: str,
            vectors: tuple[Vector, ...] = (), compile: bool = True) -> Declaration:
    """Declare and register a wire format. ``cite`` names the public standard and
    section or the public field code it follows, or says "project profile"."""
    if name in REGISTRY:
        raise ValueError(f"wire format {name!r} is declared twice")
    declaration = Declaration(name, construct, cite=cite, vectors=vectors, compile=compile)
    REGISTRY[name] = declaration
    return declaration


def all_declarations() -> Iterator[Declaration]:
    """Every declaration of the declaring modules, imported first."""
    for module in DECLARING_MODULES:
        import_module(module)
    yield from REGISTRY.values()
