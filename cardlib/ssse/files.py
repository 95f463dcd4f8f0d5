"""The social security application's records (社会保障(个人)卡规范 of the Ministry of
Human Resources and Social Security, "SSSE"), declared once (cardlib/wire.py).

EF05 (issuer data) and EF06 (holder data) are files of SIMPLE-TLV records
(ISO/IEC 7816-4 §5.2): tag(1) ‖ length(1) ‖ value. Public readers select the
EF by file identifier and read its records by number; record n of EF05 is
tag n, record n of EF06 is tag n + 7 (:data:`RECORD_NUMBERS`). ``EF05`` and
``EF06`` declare each file as its records in order; the card-type codes are
the project's profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from construct import Const, Construct, FocusedSeq, GreedyBytes, Int8ub, Prefixed, Struct

from cardlib.errors import FormatError
from cardlib.pboc.fields import BcdDate, GbkName, Text
from cardlib.wire import Vector, declare

SSSE_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")  # "sx1.sh." + GBK 社会保障
EF_ISSUER = 0xEF05
EF_HOLDER = 0xEF06
SFI_ISSUER = 0x05
SFI_HOLDER = 0x06
RID = bytes.fromhex("D156000005")

# EF05 card type byte (also the 0x16 card-type flag of the purse), this project's profile
CARD_TYPES = {"adult": 0x01, "student": 0x02, "elder": 0x03, "child": 0x04, "disabled": 0x05, "staff": 0x06}
#: the names of the card type codes
CARD_TYPE_NAMES = {code: name for name, code in CARD_TYPES.items()}

# EF05 tags
T_CARD_ID, T_CARD_TYPE, T_SPEC_VERSION, T_ORG, T_ISSUE_DATE, T_EXPIRY, T_CARD_NUMBER = range(1, 8)
# EF06 tags
T_SSN, T_NAME, T_SEX, T_ETHNICITY, T_BIRTHPLACE, T_BIRTH_DATE = range(8, 14)

#: EF05 tag 04, the initialising organisation: 12 bytes in the one public reader found
ORG_SIZE = 12

#: which file holds a tag, and its record number there (records in tag order)
RECORD_NUMBERS: dict[int, tuple[int, int]] = {
    **{tag: (EF_ISSUER, tag) for tag in range(T_CARD_ID, T_CARD_NUMBER + 1)},
    **{tag: (EF_HOLDER, tag - T_CARD_NUMBER) for tag in range(T_SSN, T_BIRTH_DATE + 1)},
}
SFI_OF = {EF_ISSUER: SFI_ISSUER, EF_HOLDER: SFI_HOLDER}

RECORD = declare("SSSE record", Struct(
    "tag" / Int8ub,
    "value" / Prefixed(Int8ub, GreedyBytes),
), cite="ISO/IEC 7816-4 §5.2 SIMPLE-TLV, the records of the SSSE's EF05 and EF06", vectors=(
    Vector(bytes.fromhex("02 01 03"), {"tag": 2, "value": b"\x03"}, "own: packed by hand, EF05 record 02"),
    Vector(bytes.fromhex("07 00"), {"tag": 7, "value": b""}, "own: packed by hand, an empty record"),
))


def record(tag: int, value: bytes) -> bytes:
    """One TLV record: tag ‖ length ‖ value."""
    if len(value) > 0xFF:
        raise FormatError(f"record {tag:02X}: value of {len(value)} bytes too long")
    return RECORD.build({"tag": tag, "value": value})


def parse_record(raw: bytes, tag: int | None = None) -> bytes:
    """The value of one record; FormatError if malformed or of another tag."""
    try:
        fields = RECORD.parse(raw)
    except FormatError:
        raise FormatError(f"malformed SSSE record {raw.hex().upper()}") from None
    if tag is not None and fields["tag"] != tag:
        raise FormatError(f"expected record {tag:02X}, got {fields['tag']:02X}")
    value: bytes = fields["value"]
    return value


def _in_record(tag: int, value: Construct) -> Construct:
    """A field kept in the record ``tag`` of a file."""
    return FocusedSeq("value", Const(bytes((tag,))), "value" / Prefixed(Int8ub, value))


def _records(raw: bytes) -> list[bytes]:
    """A file's bytes cut into its records (each tag ‖ length ‖ value)."""
    out, at = [], 0
    while at < len(raw):
        end = at + 2 + raw[at + 1]
        out.append(raw[at:end])
        at = end
    return out


_SSSE = "社会保障(个人)卡规范 (MOHRSS)"
EF05 = declare("SSSE EF05", Struct(
    # a record is as long as its length byte says: the sizes of this project's cards are in the
    # comments (public readers show 16, 4 and 12), other cards' are read as they come
    "card_id" / _in_record(T_CARD_ID, GreedyBytes),  # 16
    "card_type" / _in_record(T_CARD_TYPE, Int8ub),
    "spec_version" / _in_record(T_SPEC_VERSION, Text(None)),  # 4, "3.00"
    "organisation" / _in_record(T_ORG, GreedyBytes),  # ORG_SIZE
    "issue_date" / _in_record(T_ISSUE_DATE, BcdDate),
    "expiry_date" / _in_record(T_EXPIRY, BcdDate),
    "card_number" / _in_record(T_CARD_NUMBER, Text(None)),
), cite=f"{_SSSE}, EF05 issuer data, records 01..07; tag 04 of 12 bytes as the one public reader found",
    vectors=(
    Vector(bytes.fromhex("01 10 330300 D156000005 99110145FFFFFFFF" "02 01 03" "03 04 332E3030"
                         "04 0C 330300010000000000000000" "05 04 20240301" "06 04 20340228"
                         "07 09 333330303030303031"),
           {"card_id": bytes.fromhex("330300D15600000599110145FFFFFFFF"), "card_type": 3, "spec_version": "3.00",
            "organisation": bytes.fromhex("330300010000000000000000"), "issue_date": date(2024, 3, 1),
            "expiry_date": date(2034, 2, 28), "card_number": "330000001"},
           "own: packed by hand; the card identifier as a public reader shows one (330300 D156000005 "
           "99110145FFFFFFFF)"),
))
EF06 = declare("SSSE EF06", Struct(
    "ssn" / _in_record(T_SSN, Text(None)),
    "name" / _in_record(T_NAME, GbkName(30)),
    "sex" / _in_record(T_SEX, Int8ub),
    "ethnicity" / _in_record(T_ETHNICITY, Int8ub),
    "birthplace" / _in_record(T_BIRTHPLACE, GreedyBytes),
    "birth_date" / _in_record(T_BIRTH_DATE, BcdDate),
), cite=f"{_SSSE}, EF06 holder data, records 08..0D (sex: GB/T 2261.1)", vectors=(
    Vector(bytes.fromhex("08 12 333330333032313939303031303131323334" "09 1E D5C5C8FD" + "00" * 26
                         + "0A 01 01" "0B 01 01" "0C 03 330302" "0D 04 19900101"),
           {"ssn": "330302199001011234", "name": "张三", "sex": 1, "ethnicity": 1,
            "birthplace": bytes.fromhex("330302"), "birth_date": date(1990, 1, 1)},
           "own: packed by hand, the name in GBK (D5C5 C8FD) 00-padded to 30 bytes"),
))


def _from_values(declaration: Any, tags: range, values: dict[int, bytes]) -> dict[str, Any]:
    missing = [tag for tag in tags if tag not in values]
    if missing:
        raise FormatError(f"{declaration.name.removeprefix('SSSE ')} incomplete: missing record {missing[0]}")
    fields: dict[str, Any] = declaration.parse(b"".join(record(tag, values[tag]) for tag in tags))
    return fields


def card_identifier(region: str, serial: int) -> bytes:
    """Region (6 digits, BCD) ‖ RID D156000005 ‖ 8-byte serial (the SSSE card identifier).

    The serial is BCD, at least 12 digits, F-padded on the right to 16 nibbles
    as public readers show it (``330300 D156000005 99110145FFFFFFFF``): serial
    1 gives ``000000000001FFFF``.
    """
    if len(region) != 6 or not region.isdigit() or not region.isascii():
        raise FormatError(f"region must be 6 digits, got {region!r}")
    if not 0 <= serial < 10**16:
        raise FormatError(f"card serial must have at most 16 digits, got {serial}")
    return bytes.fromhex(region) + RID + bytes.fromhex(f"{serial:012d}".ljust(16, "F"))


def card_serial(card_id: bytes) -> int:
    """The serial number inside a card identifier (inverse of :func:`card_identifier`); the
    F padding is taken off either side (images written before it moved right keep theirs)."""
    digits = card_id[8:].hex().upper().strip("F")
    if len(card_id) != 16 or card_id[3:8] != RID or not digits.isdigit():
        raise FormatError(f"not a card identifier: {card_id.hex().upper()}")
    return int(digits)


@dataclass(frozen=True)
class IssuerRecords:
    """EF05: issuer data (readable without PIN)."""

    card_id: bytes
    card_type: int
    spec_version: str
    organisation: bytes
    issue_date: date
    expiry_date: date
    card_number: str

    def records(self) -> list[bytes]:
        """The records in order; a shorter organisation is 00-padded to tag 04's 12 bytes, a longer one cut."""
        organisation = self.organisation[:ORG_SIZE].ljust(ORG_SIZE, b"\x00")
        return _records(EF05.build({**vars(self), "organisation": organisation}))

    @property
    def region(self) -> str:
        return self.card_id[:3].hex()

    @classmethod
    def from_records(cls, values: dict[int, bytes]) -> IssuerRecords:
        return cls(**_from_values(EF05, range(T_CARD_ID, T_CARD_NUMBER + 1), values))


@dataclass(frozen=True)
class HolderRecords:
    """EF06: holder data (personal data: mask in logs)."""

    ssn: str
    name: str
    sex: int  # 1 male, 2 female (GB/T 2261.1)
    ethnicity: int
    birthplace: bytes
    birth_date: date

    def records(self) -> list[bytes]:
        return _records(EF06.build(vars(self)))

    def masked(self) -> str:
        """For logs: the surname's first character and the SSN's region only."""
        return f"{self.name[:1]}** {self.ssn[:6]}************"

    @classmethod
    def from_records(cls, values: dict[int, bytes]) -> HolderRecords:
        return cls(**_from_values(EF06, range(T_SSN, T_BIRTH_DATE + 1), values))


def ssn_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident identity number."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]
