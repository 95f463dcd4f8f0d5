"""Typed values whose fields are their wire format: each field written once.

A record, a command's data or a response is a class of :func:`wire` fields::

    @declared("file 0x19", cite="JT/T 978 user card, file 0x19", vectors=(...), rfu=2)
    class LoadLimit(Encoded):
        limit: int = wire(Int32ub)
        valid_until: date = wire(BcdDate)

:func:`declared` makes it a frozen dataclass and declares (cardlib/wire.py)
the ``Struct`` of its wire fields in the order written, then ``rfu`` bytes of
padding: the reader sees the Python type and the bytes on one line, and the
field list is not written a second time as a construct. ``encode``, ``decode``
and ``SIZE`` come from that declaration. A field with a default takes
``kw_only=True``, so the wire order may put it anywhere. Fields without
``wire`` (a command's P1 or P2) are the class's, not the declaration's.
A :class:`Command` adds its header: ``to_apdu`` and ``from_apdu``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from operator import attrgetter
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from construct import Array, Construct, GreedyRange, Padding, Struct

from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError
from cardlib.wire import Declaration, Vector, declare

_WIRE = "wire"


def wire(construct: Construct, *, default: Any = MISSING, kw_only: bool = False) -> Any:
    """A field of a :func:`declared` class, encoded by ``construct``."""
    return dataclasses.field(default=default, kw_only=kw_only, metadata={_WIRE: construct})


class Encoded:
    """A value of a :func:`declared` class: ``encode``, ``decode`` and, where the
    format's size is fixed, ``SIZE`` come from its declaration."""

    DECLARATION: ClassVar[Declaration]
    SIZE: ClassVar[int]  # the declaration's size, where fixed
    _sequences: ClassVar[tuple[str, ...]]  # the wire fields that repeat
    _values: ClassVar[Any]  # the wire fields in order, as a tuple (attrgetter)
    _positional: ClassVar[bool]  # the constructor takes exactly the wire fields, in order

    @classmethod
    def _bind(cls, declaration: Declaration) -> None:
        cls.DECLARATION = declaration
        if declaration.size is not None:
            cls.SIZE = declaration.size
        names = declaration.fields()
        get = attrgetter(*names)
        cls._values = get if len(names) > 1 else staticmethod(lambda obj: (get(obj),))
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        init = [f for f in fields if f.init]
        cls._positional = tuple(f.name for f in init) == names and not any(f.kw_only for f in init)
        cls._sequences = tuple(f.name for f in fields if isinstance(f.metadata.get(_WIRE), (Array, GreedyRange)))

    def encode(self) -> bytes:
        return self.DECLARATION.pack(*self._values(self))

    @classmethod
    def decode(cls, raw: bytes, **others: Any) -> Self:
        """The value of ``raw``; ``others`` are the class's fields that are not on the wire."""
        make: Any = cls  # the dataclass's fields, which this base does not know
        if cls._positional and not others:  # the transaction path: by position, one call less
            value: Self = make(*cls.DECLARATION.unpack(raw))
        else:
            fields = cls.DECLARATION.parse(raw)
            for name in cls._sequences:  # parsed as a list, held as a tuple (a frozen value)
                fields[name] = tuple(fields[name])
            value = make(**fields, **others)
        return value


def expect_command(cmd: CommandAPDU, cla: int, ins: int, what: str) -> None:
    """FormatError unless ``cmd`` is the command ``what`` (its CLA and INS): a parser handed
    another command says so, naming both."""
    if cmd.cla != cla or cmd.ins != ins:
        raise FormatError(f"{what}: not this command ({cmd.cla:02X} {cmd.ins:02X})")


class Command(Encoded):
    """A command whose data is its wire fields: ``class X(Command, header=(CLA, INS, P1, P2),
    le=...)``. P1 or P2 given as a field's name is that field (a field not on the wire)."""

    HEADER: ClassVar[tuple[int, int, int | str, int | str]]
    LE: ClassVar[int | None]
    _header_fields: ClassVar[dict[str, int]]  # field name → its place in the header

    def __init_subclass__(cls, header: tuple[int, int, int | str, int | str] | None = None,
                          le: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if header is not None:
            cls.HEADER, cls.LE = header, le
            cls._header_fields = {part: at for at, part in enumerate(header) if isinstance(part, str)}

    def to_apdu(self) -> CommandAPDU:
        if not self._header_fields:  # the transaction path: DEBIT, CREDIT
            return CommandAPDU(*self.HEADER, self.encode(), self.LE)  # type: ignore[arg-type]
        cla, ins, p1, p2 = (getattr(self, part) if isinstance(part, str) else part for part in self.HEADER)
        return CommandAPDU(cla, ins, p1, p2, self.encode(), self.LE)

    @classmethod
    def from_apdu(cls, cmd: CommandAPDU) -> Self:
        expect_command(cmd, cls.HEADER[0], cls.HEADER[1], cls.DECLARATION.name)
        if not cls._header_fields:
            return cls.decode(cmd.data)
        header = cmd.header()
        return cls.decode(cmd.data, **{name: header[at] for name, at in cls._header_fields.items()})


E = TypeVar("E", bound=Encoded)


@dataclass_transform(frozen_default=True, field_specifiers=(wire,))
def declared(name: str, *, cite: str, vectors: tuple[Vector, ...] = (), rfu: int = 0,
             compile: bool = True) -> Callable[[type[E]], type[E]]:
    """Make the class a frozen dataclass and declare its wire fields, then ``rfu`` bytes
    of padding, as the format ``name`` (``cite`` and ``vectors`` as :func:`cardlib.wire.declare`)."""

    def bind(cls: type[E]) -> type[E]:
        cls = dataclass(frozen=True)(cls)
        members = [field.name / field.metadata[_WIRE] for field in dataclasses.fields(cls)  # type: ignore[arg-type]
                   if _WIRE in field.metadata]
        if rfu:
            members.append(Padding(rfu))
        cls._bind(declare(name, Struct(*members), cite=cite, vectors=vectors, compile=compile))
        return cls

    return bind
