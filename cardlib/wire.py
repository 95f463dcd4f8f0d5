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

A struct of fixed-size big-endian integers, byte strings and constants — the
command data fields, responses and MAC/TAC inputs — :func:`compiled` turns
into one :class:`struct.Struct` instead (:class:`Packed`, about 1 µs where
construct's compiled code takes 10 on a loaded machine): ``pack(*values)``
and ``unpack(raw)`` take and give the fields in declaration order, for the
transaction path; ``build`` and ``parse`` use it too, so the walk test holds
it to the interpreter on every vector.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from operator import attrgetter
from typing import Any, ClassVar, Self

from construct import (
    Bytes,
    BytesInteger,
    Const,
    Construct,
    ConstructError,
    Container,
    FormatField,
    GreedyRange,
    Renamed,
    SizeofError,
    Struct,
)

from cardlib.errors import FormatError

#: The modules that declare wire formats; the walk test imports them all.
#: A module that declares is added here.
DECLARING_MODULES: tuple[str, ...] = (
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
    construct is not one of the plain kinds (byte string, integer, constant)."""
    if isinstance(con, Const) and isinstance(con.value, bytes):
        return _no_check
    if isinstance(con, GreedyRange) and isinstance(con.subcon, Bytes) and isinstance(con.subcon.length, int):
        item = _field_check(f"each of {name}", con.subcon)
        assert item is not None

        def check_items(value: Any) -> str | None:
            if not isinstance(value, (list, tuple)):
                return f"{name} is not a sequence"
            return next((problem for problem in map(item, value) if problem is not None), None)

        return check_items
    if isinstance(con, Bytes) and isinstance(con.length, int):
        size = con.length

        def check_bytes(value: Any) -> str | None:
            if not isinstance(value, (bytes, bytearray)):
                return f"{name} is not bytes"
            if len(value) != size:
                return f"{name} must be {size} bytes, got {len(value)}"
            return None

        return check_bytes
    if isinstance(con, (FormatField, BytesInteger)):
        if isinstance(con, FormatField):
            if con.fmtstr[-1] not in "BHILQbhilq":
                return None
            bits = 8 * struct.calcsize(con.fmtstr)
            signed = con.fmtstr[-1].islower()
        else:
            if not isinstance(con.length, int):
                return None
            bits, signed = 8 * con.length, bool(con.signed)
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

        def check_int(value: Any) -> str | None:
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{name} is not an integer"
            if not low <= value <= high:
                return f"{name} {value} does not fit in {bits // 8} byte(s)"
            return None

        return check_int
    return None


def _no_check(value: Any) -> str | None:
    return None


class Declaration:
    """One wire format: ``build(value)`` → bytes, ``parse(bytes)`` → dict of fields."""

    def __init__(self, name: str, construct: Construct, *, cite: str,
                 vectors: tuple[Vector, ...] = (), compile: bool = True) -> None:
        self.name = name
        self.construct = construct
        self.cite = cite
        self.vectors = vectors
        self.size = _fixed_size(construct)
        fast = compiled(construct, name) if compile else construct
        self.packed: Packed | None = fast if isinstance(fast, Packed) else None
        self.fast: Construct = construct if isinstance(fast, Packed) else fast
        self._checks = _struct_checks(construct)
        if self.packed is not None:
            self.packed.explain = self._explain
            self.pack = self.packed.pack  # type: ignore[method-assign]  # one call less on the transaction path
            self.unpack = self.packed.unpack  # type: ignore[method-assign]

    def pack(self, *values: Any) -> bytes:
        """``build`` with the fields given in declaration order (constants left out)."""
        if self.packed is not None:
            return self.packed.pack(*values)
        return self.build(dict(zip(self.fields(), values, strict=True)))

    def unpack(self, raw: bytes) -> tuple[Any, ...]:
        """``parse`` as a tuple in declaration order (constants left out)."""
        if self.packed is not None:
            return self.packed.unpack(raw)
        fields = self.parse(raw)
        return tuple(fields[name] for name in self.fields())

    def shifts(self) -> dict[str, int]:
        """Each field's place as a left shift in bits of the input read as one big-endian
        number (for code that builds the number from the fields directly); fixed-size only."""
        if self.packed is None or self.packed.tail:
            raise TypeError(f"{self.name}: not a fixed-size struct")
        sizes = [sub.subcon.sizeof() for sub in self.construct.subcons]
        ends = [sum(sizes[at + 1 :]) for at in range(len(sizes))]
        return {sub.name: 8 * end for sub, end in zip(self.construct.subcons, ends, strict=True)}

    def fields(self) -> tuple[str, ...]:
        """The names ``pack`` takes, in order."""
        if self.packed is not None:
            return self.packed.args
        return tuple(sub.name for sub in getattr(self.construct, "subcons", ())
                     if sub.name and not isinstance(getattr(sub, "subcon", None), Const))

    def _explain(self, values: tuple[Any, ...]) -> FormatError:
        """The error ``build`` gives for ``values`` (called once ``pack`` failed)."""
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
        if self.packed is not None:
            return self.packed.pack(*[obj[key] for key in self.packed.args])
        raw = self._build(self.fast, obj)
        if self.size is not None and len(raw) != self.size:  # a guard; the checks above prevent it
            raise FormatError(f"{self.name}: encoded {len(raw)} bytes, the format holds {self.size}")
        return raw

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The fields of ``raw``; FormatError if it is too short or too long."""
        if self.packed is not None:
            return self.packed.parse(raw)
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


def _struct_checks(con: Construct) -> tuple[tuple[str, Callable[[Any], str | None]], ...] | None:
    if not isinstance(con, Struct):
        return None
    checks = []
    for sub in con.subcons:
        if not isinstance(sub, Renamed) or sub.name is None:
            return None
        check = _field_check(sub.name, sub.subcon)
        if check is None:
            return None
        if check is not _no_check:  # a constant is built without a value
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


_STRUCT_INTS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class Packed:
    """A struct of fixed-size big-endian integers, byte strings and constants as one
    :class:`struct.Struct`. Byte strings are checked for their length (``struct``
    pads them); integers by ``struct`` itself, or by ``int.to_bytes`` for the sizes
    it has no code for (3 bytes). ``explain`` gives the error message when a value
    does not fit (the declaration's field checks)."""

    def __init__(self, con: Struct, name: str = "") -> None:
        self.name = name
        fmt = ">"
        names: list[str] = []  # every field, as parse gives them
        args: list[str] = []  # the fields pack takes (no constants)
        self.sized: list[tuple[int, int]] = []  # (argument, length) of the byte strings
        self.odd: list[tuple[int, int, bool]] = []  # (argument, length, signed) of 3-, 5-… byte integers
        self.consts: list[tuple[int, bytes]] = []  # (place among the fields, value)
        self.tail = 0  # the item size of a last field of N fixed-size byte strings, 0 when none
        for at, sub in enumerate(con.subcons):
            if not isinstance(sub, Renamed) or sub.name is None:
                raise TypeError("unnamed field")
            inner = sub.subcon
            if (at == len(con.subcons) - 1 and isinstance(inner, GreedyRange) and isinstance(inner.subcon, Bytes)
                    and isinstance(inner.subcon.length, int) and inner.subcon.length > 0):
                self.tail = inner.subcon.length
                names.append(sub.name)
                args.append(sub.name)
                continue
            if isinstance(inner, Const) and isinstance(inner.value, bytes):
                self.consts.append((len(names), inner.value))
                fmt += f"{len(inner.value)}s"
                names.append(sub.name)
                continue
            if isinstance(inner, Bytes) and isinstance(inner.length, int):
                self.sized.append((len(args), inner.length))
                fmt += f"{inner.length}s"
            elif (isinstance(inner, FormatField) and len(inner.fmtstr) == 2 and inner.fmtstr[0] in ">!"
                  and inner.fmtstr[1] in "BHILQbhilq"):
                fmt += inner.fmtstr[1:]
            elif (isinstance(inner, BytesInteger) and isinstance(inner.length, int) and not inner.swapped
                  and isinstance(inner.signed, bool)):
                code = _STRUCT_INTS.get(inner.length)
                if code is None:
                    self.odd.append((len(args), inner.length, inner.signed))
                    fmt += f"{inner.length}s"
                else:
                    fmt += code.lower() if inner.signed else code
            else:
                raise TypeError(f"{sub.name}: not a fixed-size integer, byte string or constant")
            names.append(sub.name)
            args.append(sub.name)
        self.struct = struct.Struct(fmt)
        self.names, self.args = tuple(names), tuple(args)
        self.explain: Callable[[tuple[Any, ...]], FormatError] = lambda values: FormatError(f"cannot encode {values}")
        if not self.tail:  # one call less on the transaction path
            self.pack = self._pack  # type: ignore[method-assign]
            self.unpack = self._unpack  # type: ignore[method-assign]

    def pack(self, *values: Any) -> bytes:
        """The bytes of the fields given in order (constants left out)."""
        items = values[-1]
        if not isinstance(items, (list, tuple)) or any(len(item) != self.tail for item in items):
            raise self.explain(values)
        return self._pack(*values[:-1]) + b"".join(items)

    def _pack(self, *values: Any) -> bytes:
        try:
            for index, size in self.sized:
                if len(values[index]) != size:
                    raise self.explain(values)
            if self.odd or self.consts:
                items = list(values)
                for index, size, signed in self.odd:
                    items[index] = items[index].to_bytes(size, "big", signed=signed)
                for place, value in self.consts:
                    items.insert(place, value)
                return self.struct.pack(*items)
            return self.struct.pack(*values)
        except (struct.error, TypeError, OverflowError, AttributeError, IndexError):
            raise self.explain(values) from None

    def unpack(self, raw: bytes) -> tuple[Any, ...]:
        """The fields of ``raw`` in order (constants checked and left out)."""
        size, n = self.struct.size, self.tail
        if len(raw) < size or (len(raw) - size) % n:
            raise FormatError(f"{self.name}: {len(raw)} bytes is not {size} + {n}·N")
        items = tuple(bytes(raw[at : at + n]) for at in range(size, len(raw), n))
        return (*self._unpack(raw[:size]), items)

    def _unpack(self, raw: bytes) -> tuple[Any, ...]:
        try:
            values = self.struct.unpack(raw)
        except struct.error:
            raise FormatError(f"{self.name}: expected {self.struct.size} bytes, got {len(raw)}") from None
        if not (self.odd or self.consts):
            return values
        items = list(values)
        for place, value in reversed(self.consts):
            if items.pop(place) != value:
                raise FormatError(f"{self.name}: {self.names[place]} must be {value.hex().upper()}")
        for index, _size, signed in self.odd:
            items[index] = int.from_bytes(items[index], "big", signed=signed)
        return tuple(items)

    def parse(self, raw: bytes) -> dict[str, Any]:
        fields = dict(zip(self.args, self.unpack(raw), strict=True))
        if self.tail:  # a list, as construct gives it
            fields[self.args[-1]] = list(fields[self.args[-1]])
        if self.consts:  # construct gives a constant's value as a field too, in its place
            fields.update((self.names[place], value) for place, value in self.consts)
            return {name: fields[name] for name in self.names}
        return fields


def compiled(con: Construct, name: str = "") -> Construct | Packed:
    """``con`` compiled: one :class:`Packed` struct where its fields allow, else
    construct's compiled Python code. The one place declarations are compiled."""
    if isinstance(con, Struct):
        try:
            return Packed(con, name)
        except TypeError:
            pass
    return con.compile()


class Encoded:
    """A frozen dataclass whose fields are its declaration's (``FORMAT``), in order:
    ``encode`` and ``decode`` come from the declaration."""

    FORMAT: ClassVar[Declaration]
    _values: ClassVar[Any]  # the fields in the declaration's order, as a tuple (attrgetter)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = cls.FORMAT.fields()
        get = attrgetter(*names)
        cls._values = get if len(names) > 1 else staticmethod(lambda obj: (get(obj),))

    def encode(self) -> bytes:
        return self.FORMAT.pack(*self._values(self))

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        make: Any = cls  # the dataclass's fields, which this base does not know
        value: Self = make(*cls.FORMAT.unpack(raw))
        return value


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
