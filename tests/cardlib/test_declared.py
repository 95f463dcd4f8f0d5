"""Classes whose fields are their wire format (cardlib/declared.py): every declared
class decodes its declaration's vectors into itself and encodes them back byte
for byte; fields with defaults may sit anywhere on the wire; a command's P1/P2
fields travel in its header."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from construct import Int8ub, Int16ub

from cardlib import wire as W
from cardlib.apdu import CommandAPDU
from cardlib.declared import Command, Encoded, declared, wire
from cardlib.errors import FormatError
from cardlib.pboc import files as F
from cardlib.pboc import psam
from cardlib.pboc import purse as P

H = bytes.fromhex


def _declared_classes() -> list[type[Encoded]]:
    list(W.all_declarations())  # imports every declaring module
    found, todo = [], list(Encoded.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "DECLARATION" in vars(cls) and not cls.__module__.startswith("tests."):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


CLASSES = _declared_classes()


def _header_fields(cls: type[Encoded]) -> dict[str, int]:
    wired = set(cls.DECLARATION.fields())
    return {f.name: 0 for f in dataclasses.fields(cls) if f.init and f.name not in wired}  # type: ignore[arg-type]


def test_the_records_commands_and_responses_are_declared_classes() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"PublicData", "HolderData", "ManagementData", "TransactionRecord", "TripRecord", "PsamAppData",
            "DebitForPurchase", "DebitResponse", "CreditForLoad", "GetTransactionProve", "InitSamForPurchase",
            "InitDescrypt", "ApplicationBlock", "ApplicationUnblock"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_declared_class_reads_and_writes_its_vectors(cls: type[Encoded]) -> None:
    assert cls.DECLARATION.vectors, f"{cls.__name__} has no vectors"
    for vector in cls.DECLARATION.vectors:
        value = cls.decode(vector.raw, **_header_fields(cls))
        want = {k: tuple(v) if isinstance(v, list) else v for k, v in vector.value.items()}
        assert {name: getattr(value, name) for name in want} == want, vector.source
        assert value.encode() == vector.raw, vector.source


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_declared_class_is_a_frozen_value(cls: type[Encoded]) -> None:
    value = cls.decode(cls.DECLARATION.vectors[0].raw, **_header_fields(cls))
    name = cls.DECLARATION.fields()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, getattr(value, name))
    assert hash(value) == hash(dataclasses.replace(value))  # type: ignore[type-var]


def test_a_field_with_a_default_keeps_its_place_on_the_wire() -> None:
    # 0x15: app_type and app_version (defaults) sit between issuer_id and app_serial
    pub = F.PublicData(H("01011000FFFFFFFF"), H("03105170056789012345"), date(2019, 8, 6), date(2040, 12, 31))
    assert pub.encode() == H("01011000FFFFFFFF 02 01 03105170056789012345 20190806 20401231 0000")
    with pytest.raises(TypeError):
        F.PublicData(H("01011000FFFFFFFF"), 2, 1, H("03105170056789012345"),  # type: ignore[call-arg]
                     date(2019, 8, 6), date(2040, 12, 31))


def test_a_wrong_length_names_the_format() -> None:
    with pytest.raises(FormatError, match="0x18 record: expected 23 bytes, got 22"):
        F.TransactionRecord.decode(bytes(22))
    with pytest.raises(FormatError, match="file 0x16: cannot encode: card_type 256 does not fit"):
        F.HolderData(256, "张三", "1").encode()


def test_header_fields_travel_in_p1_and_p2() -> None:
    prove = P.GetTransactionProve(0x09, 0x0100)
    assert prove.to_apdu().encode() == H("805A000902010008")  # P2 the type, data the counter
    assert P.GetTransactionProve.from_apdu(prove.to_apdu()) == prove
    descrypt = psam.InitDescrypt(0x42, 0x01, (H("5170010170907984"), H("01011000FFFFFFFF")))
    apdu = descrypt.to_apdu()
    assert apdu.encode() == H("801A420110 5170010170907984 01011000FFFFFFFF")
    assert psam.InitDescrypt.from_apdu(apdu) == descrypt  # the factors come back a tuple
    with pytest.raises(FormatError, match="psam.init_descrypt: not this command"):
        psam.InitDescrypt.from_apdu(CommandAPDU(0x80, 0xFA, 0x42, 0x01, bytes(8)))
    block = P.ApplicationBlock.from_apdu(CommandAPDU(0x84, 0x1E, 0x00, 0x01, H("0A0B0C0D")))
    assert block.permanent and block.mac == H("0A0B0C0D")
    with pytest.raises(FormatError, match="P2 02"):
        P.ApplicationBlock.from_apdu(CommandAPDU(0x84, 0x1E, 0x00, 0x02, H("0A0B0C0D")))


def test_a_class_declares_its_fields_in_the_order_written_then_its_rfu() -> None:
    W.REGISTRY.pop("tests.load_limit", None)
    try:
        @declared("tests.load_limit", cite="own: a command made up for this test", rfu=2, vectors=(
            W.Vector(H("0001 86A0 07 0000"), {"limit": 1, "ceiling": 0x86A0, "kind": 7}, "own: packed by hand"),
        ))
        class LoadLimit(Command, header=(0x80, 0x5E, "p1", 0x00), le=2):
            p1: int
            limit: int = wire(Int16ub)
            ceiling: int = wire(Int16ub, default=0xFFFF, kw_only=True)
            kind: int = wire(Int8ub)
            note: str = dataclasses.field(default="", compare=False)  # neither wire nor header

        assert LoadLimit.DECLARATION.fields() == ("limit", "ceiling", "kind")
        assert LoadLimit.SIZE == 7 and LoadLimit.DECLARATION.construct.subcons[-1].sizeof() == 2
        value = LoadLimit(0x03, 1, 7, ceiling=0x86A0, note="kept out of the bytes")
        apdu = value.to_apdu()
        assert apdu.encode() == H("805E0300 07 000186A0070000 02")
        assert LoadLimit.from_apdu(apdu) == value
        assert LoadLimit.decode(H("0001 FFFF 07 0000"), p1=0) == LoadLimit(0, 1, 7)
    finally:
        W.REGISTRY.pop("tests.load_limit", None)
