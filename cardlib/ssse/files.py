"""The social security application's records (人社部 SSSE; reference §6, §8).

EF05 (issuer data) and EF06 (holder data) are files of TLV records: tag(1) ‖ length(1) ‖ value.
Public readers select the EF by file identifier and read its records by
number (reference §1, "field conventions"); record n of EF05 is tag n, record n
of EF06 is tag n + 7 (:data:`RECORD_NUMBERS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cardlib.errors import FormatError
from cardlib.pboc.files import bcd_date, gbk_field, gbk_text, parse_bcd_date, text_bytes

SSSE_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")  # "sx1.sh." + GBK 社会保障
EF_ISSUER = 0xEF05
EF_HOLDER = 0xEF06
SFI_ISSUER = 0x05
SFI_HOLDER = 0x06
RID = bytes.fromhex("D156000005")

# EF05 card type byte (also the 0x16 card-type flag of the purse), this project's profile
CARD_TYPES = {"adult": 0x01, "student": 0x02, "elder": 0x03, "child": 0x04, "disabled": 0x05, "staff": 0x06}

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



def record(tag: int, value: bytes) -> bytes:
    """One TLV record: tag ‖ length ‖ value."""
    if len(value) > 0xFF:
        raise FormatError(f"record {tag:02X}: value of {len(value)} bytes too long")
    return bytes((tag, len(value))) + value


def parse_record(raw: bytes, tag: int | None = None) -> bytes:
    """The value of one record; FormatError if malformed or of another tag."""
    if len(raw) < 2 or raw[1] != len(raw) - 2:
        raise FormatError(f"malformed SSSE record {raw.hex().upper()}")
    if tag is not None and raw[0] != tag:
        raise FormatError(f"expected record {tag:02X}, got {raw[0]:02X}")
    return raw[2:]


def card_identifier(region: str, serial: int) -> bytes:
    """Region (6 digits, BCD) ‖ RID D156000005 ‖ 8-byte serial (reference §8).

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
        return [
            record(T_CARD_ID, self.card_id),
            record(T_CARD_TYPE, bytes((self.card_type,))),
            record(T_SPEC_VERSION, text_bytes(self.spec_version)[:4].ljust(4, b"0")),
            record(T_ORG, self.organisation[:ORG_SIZE].ljust(ORG_SIZE, b"\x00")),
            record(T_ISSUE_DATE, bcd_date(self.issue_date)),
            record(T_EXPIRY, bcd_date(self.expiry_date)),
            record(T_CARD_NUMBER, text_bytes(self.card_number)),
        ]

    @property
    def region(self) -> str:
        return self.card_id[:3].hex()

    @classmethod
    def from_records(cls, values: dict[int, bytes]) -> IssuerRecords:
        try:
            return cls(
                values[T_CARD_ID], values[T_CARD_TYPE][0], values[T_SPEC_VERSION].decode("ascii", "replace"),
                values[T_ORG], parse_bcd_date(values[T_ISSUE_DATE]), parse_bcd_date(values[T_EXPIRY]),
                values[T_CARD_NUMBER].decode("ascii", "replace"),
            )
        except (KeyError, IndexError) as exc:
            raise FormatError(f"EF05 incomplete: missing record {exc}") from None


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
        return [
            record(T_SSN, text_bytes(self.ssn)),
            record(T_NAME, gbk_field(self.name, 30)),
            record(T_SEX, bytes((self.sex,))),
            record(T_ETHNICITY, bytes((self.ethnicity,))),
            record(T_BIRTHPLACE, self.birthplace),
            record(T_BIRTH_DATE, bcd_date(self.birth_date)),
        ]

    def masked(self) -> str:
        """For logs: the surname's first character and the SSN's region only."""
        return f"{self.name[:1]}** {self.ssn[:6]}************"

    @classmethod
    def from_records(cls, values: dict[int, bytes]) -> HolderRecords:
        try:
            return cls(
                values[T_SSN].decode("ascii", "replace"), gbk_text(values[T_NAME]), values[T_SEX][0],
                values[T_ETHNICITY][0], values[T_BIRTHPLACE], parse_bcd_date(values[T_BIRTH_DATE]),
            )
        except (KeyError, IndexError) as exc:
            raise FormatError(f"EF06 incomplete: missing record {exc}") from None


def ssn_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident identity number."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]
