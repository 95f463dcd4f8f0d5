"""What an ATR's historical bytes say: ISO/IEC 7816-4 §8.1.1 and PC/SC part 3 storage cards.

* ISO/IEC 7816-4 §8.1.1 (tables from the 2005 edition): the category
  indicator (first byte) — ``00`` compact-TLV objects then a mandatory
  3-byte status indicator (LCS, SW1 SW2), ``80`` compact-TLV objects (a
  status indicator, tag 8, may be among them), ``10`` a DIR data reference
  byte, ``81``–``8F`` RFU, anything else proprietary. A compact-TLV object is
  one byte, tag (high nibble) and length (low nibble), then its value: 1
  country code, 2 issuer identification number, 3 card service data
  (Table 85), 4 initial access data, 5 card issuer's data, 6 pre-issuing
  data, 7 card capabilities (Tables 86–88), 8 status indicator (LCS of
  Table 13, SW), F application identifier.
* PC/SC part 3 (supplement, contactless storage cards): a reader builds
  ``3B 8F 80 01 80 4F 0C <RID A0 00 00 03 06> <standard> <card name, 2
  bytes> 00 00 00 00 TCK``; here ``4F 0C`` is the application identifier
  presence indicator, not a compact-TLV object. The names of the standard
  and card-name bytes below are those of that supplement as pcsc-tools'
  smartcard_list.txt spells them.

A malformed object is reported (``problems``), never raised: the ATR itself
was valid, and a technician wants to see what is there.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardlib.sw import describe

PCSC_RID = bytes.fromhex("A000000306")

PCSC_STANDARDS: dict[int, str] = {
    0x00: "no information given", 0x01: "ISO 14443 A, part 1", 0x02: "ISO 14443 A, part 2",
    0x03: "ISO 14443 A, part 3", 0x05: "ISO 14443 B, part 1", 0x06: "ISO 14443 B, part 2",
    0x07: "ISO 14443 B, part 3", 0x09: "ISO 15693, part 1", 0x0A: "ISO 15693, part 2",
    0x0B: "ISO 15693, part 3", 0x0C: "ISO 15693, part 4", 0x0D: "contact (7816-10) I2C",
    0x0E: "contact (7816-10) extended I2C", 0x0F: "contact (7816-10) 2WBP", 0x10: "contact (7816-10) 3WBP",
    0x11: "FeliCa", 0x40: "low frequency contactless (< 135 kHz)",
}

PCSC_CARD_NAMES: dict[int, str] = {
    0x0000: "card name not given", 0x0001: "MIFARE Classic 1K", 0x0002: "MIFARE Classic 4K",
    0x0003: "MIFARE Ultralight", 0x0004: "SLE55R_XXXX", 0x0006: "SR176", 0x0007: "SRI X4K",
    0x0008: "AT88RF020", 0x0009: "AT88SC0204CRF", 0x000A: "AT88SC0808CRF", 0x000B: "AT88SC1616CRF",
    0x000C: "AT88SC3216CRF", 0x000D: "AT88SC6416CRF", 0x000E: "SRF55V10P", 0x000F: "SRF55V02P",
    0x0010: "SRF55V10S", 0x0011: "SRF55V02S", 0x0012: "TAG_IT", 0x0013: "LRI512", 0x0014: "ICODESLI",
    0x0015: "TEMPSENS", 0x0016: "I.CODE1", 0x0017: "PicoPass 2K", 0x0018: "PicoPass 2KS",
    0x0019: "PicoPass 16K", 0x001A: "PicoPass 16Ks", 0x001B: "PicoPass 16K(8x2)", 0x001C: "PicoPass 16KS(8x2)",
    0x001D: "PicoPass 32KS(16+16)", 0x001E: "PicoPass 32KS(16+8x2)", 0x001F: "PicoPass 32KS(8x2+16)",
    0x0020: "PicoPass 32KS(8x2+8x2)", 0x0021: "LRI64", 0x0022: "I.CODE UID", 0x0023: "I.CODE EPC",
    0x0024: "LRI12", 0x0025: "LRI128", 0x0026: "MIFARE Mini", 0x0027: "my-d move (SLE 66R01P)",
    0x0028: "my-d NFC (SLE 66RxxP)", 0x0029: "my-d proximity 2 (SLE 66RxxS)",
    0x002A: "my-d proximity enhanced (SLE 55RxxE)", 0x002B: "my-d light (SRF 55V01P)",
    0x002C: "PJM Stack Tag (SRF 66V10ST)", 0x002D: "PJM Item Tag (SRF 66V10IT)", 0x002E: "PJM Light (SRF 66V01ST)",
    0x002F: "Jewel Tag", 0x0030: "Topaz NFC Tag", 0x0031: "AT88SC0104CRF", 0x0032: "AT88SC0404CRF",
    0x0033: "AT88RF01C", 0x0034: "AT88RF04C", 0x0035: "i-Code SL2", 0x0036: "MIFARE Plus SL1 2K",
    0x0037: "MIFARE Plus SL1 4K", 0x0038: "MIFARE Plus SL2 2K", 0x0039: "MIFARE Plus SL2 4K",
    0x003A: "MIFARE Ultralight C", 0x003B: "FeliCa", 0x003C: "Melexis Sensor Tag (MLX90129)",
    0x003D: "MIFARE Ultralight EV1",
}

TAG_NAMES = {
    0x1: "country code", 0x2: "issuer identification number", 0x3: "card service data",
    0x4: "initial access data", 0x5: "card issuer's data", 0x6: "pre-issuing data", 0x7: "card capabilities",
    0x8: "status indicator", 0xF: "application identifier",
}


def life_cycle(lcs: int) -> str:
    """ISO/IEC 7816-4 Table 13, the life cycle status byte."""
    if lcs >= 0x10:
        return "proprietary"
    if lcs == 0x00:
        return "no information given"
    if lcs == 0x01:
        return "creation state"
    if lcs == 0x03:
        return "initialisation state"
    if lcs in (0x05, 0x07):
        return "operational state (activated)"
    if lcs in (0x04, 0x06):
        return "operational state (deactivated)"
    if lcs >= 0x0C:
        return "termination state"
    return "RFU"


def _bits(byte: int, names: tuple[str, ...]) -> list[str]:
    """The names of the bits set, b8 first."""
    return [name for i, name in enumerate(names) if name and byte & (0x80 >> i)]


def card_service_data(b: int) -> list[str]:
    """ISO/IEC 7816-4 Table 85."""
    out = _bits(b, ("application selection by full DF name", "application selection by partial DF name",
                    "BER-TLV data objects in EF.DIR", "BER-TLV data objects in EF.ATR"))
    access = {0b100: "READ BINARY", 0b000: "READ RECORD(S)", 0b010: "GET DATA"}.get((b >> 1) & 0b111)
    out.append(f"EF.DIR and EF.ATR read by {access}" if access else "EF.DIR and EF.ATR access: RFU")
    out.append("card without MF" if b & 0x01 else "card with MF")
    return out


def card_capabilities(value: bytes) -> list[str]:
    """ISO/IEC 7816-4 Tables 86 (selection methods), 87 (data coding), 88 (chaining, lengths, channels)."""
    selection = _bits(value[0], ("full DF name", "partial DF name", "path", "file identifier", "implicit DF",
                                 "short EF identifier", "record number", "record identifier"))
    out = [f"selection: {', '.join(selection) or 'none given'}"]
    if len(value) >= 2:
        dc = value[1]
        write = ("one-time write", "proprietary", "write OR", "write AND")[(dc >> 5) & 0b11]
        out.append(f"data coding: {'EFs of TLV structure, ' if dc & 0x80 else ''}write functions {write}, "
                   f"'FF' {'valid' if dc & 0x10 else 'invalid'} as first tag byte, "
                   f"data unit {2 ** (dc & 0x0F)} quartet(s)")
    if len(value) >= 3:
        cc = value[2]
        parts = _bits(cc, ("command chaining", "extended Lc and Le fields", "extended length information in EF.ATR/INFO (7816-4:2013)"))
        assign = {0b00: "no logical channels", 0b01: "logical channels assigned by the interface device",
                  0b10: "logical channels assigned by the card",
                  0b11: "logical channels assigned by the card and the interface device"}[(cc >> 3) & 0b11]
        parts += [assign, f"at most {(cc & 0x07) + 1} logical channel(s)"]
        out.append("; ".join(parts))
    return out


def status_indicator(value: bytes) -> list[str]:
    """Tag 8 (or category 00's last three bytes): LCS; SW1 SW2; or LCS, SW1 SW2."""
    out = []
    if len(value) in (1, 3):
        out.append(f"LCS {value[0]:02X} ({life_cycle(value[0])})")
    if len(value) in (2, 3):
        sw = int.from_bytes(value[-2:], "big")
        out.append(f"SW {sw:04X} ({describe(sw)})")
    return out


def _text(value: bytes) -> str:
    shown = value.hex(" ").upper()
    if value and all(0x20 <= c < 0x7F for c in value):
        shown += f' "{value.decode("ascii")}"'
    return shown


def _digits(value: bytes) -> str:
    return value.hex().upper()


@dataclass(frozen=True)
class CompactObject:
    """One compact-TLV object: tag and length nibbles, then the value."""

    tag: int
    value: bytes

    @property
    def name(self) -> str:
        return TAG_NAMES.get(self.tag, f"tag {self.tag:X} (RFU)")

    def meaning(self) -> list[str]:
        v = self.value
        if self.tag == 0x1 and v:
            return [f"country {_digits(v)[:3]} (ISO 3166-1 numeric), national data {_digits(v)[3:] or 'none'}"]
        if self.tag == 0x2:
            return [f"IIN {_digits(v)} (ISO/IEC 7812-1)"]
        if self.tag == 0x3 and len(v) == 1:
            return card_service_data(v[0])
        if self.tag == 0x7 and 1 <= len(v) <= 3:
            return card_capabilities(v)
        if self.tag == 0x8 and 1 <= len(v) <= 3:
            return status_indicator(v)
        return [_text(v)] if v else []

    def to_json(self) -> dict[str, object]:
        return {"tag": f"{self.tag:X}", "name": self.name, "value": self.value.hex().upper(),
                "meaning": self.meaning()}


@dataclass(frozen=True)
class StorageCard:
    """PC/SC part 3 pseudo-ATR of a contactless storage card."""

    rid: bytes
    standard: int
    card_name: int
    rfu: bytes

    @property
    def standard_name(self) -> str:
        return PCSC_STANDARDS.get(self.standard, "RFU")

    @property
    def card(self) -> str:
        return PCSC_CARD_NAMES.get(self.card_name, "not in PC/SC part 3's table")

    def rows(self) -> list[tuple[str, str]]:
        return [("RID", f"{self.rid.hex(' ').upper()} (PC/SC Workgroup)"),
                ("standard", f"{self.standard:02X} ({self.standard_name})"),
                ("card name", f"{self.card_name:04X} ({self.card})")]

    def to_json(self) -> dict[str, object]:
        return {"rid": self.rid.hex().upper(), "standard": self.standard, "standard_name": self.standard_name,
                "card_name": f"{self.card_name:04X}", "card": self.card, "rfu": self.rfu.hex().upper()}


@dataclass(frozen=True)
class HistoricalBytes:
    raw: bytes
    category: int | None
    kind: str
    objects: tuple[CompactObject, ...] = ()
    status: bytes | None = None  # category 00's mandatory status indicator
    dir_reference: int | None = None
    storage_card: StorageCard | None = None
    problems: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        """Rows for a human table, after the ATR's own."""
        if self.category is None:
            return []
        rows = [("category", f"{self.category:02X} ({self.kind})")]
        if self.storage_card is not None:
            rows += self.storage_card.rows()
        for obj in self.objects:
            head = f"{obj.tag:X}{len(obj.value):X} {obj.name}"
            lines = obj.meaning() or ["(empty)"]
            rows.append((head, lines[0]))
            rows += [("", line) for line in lines[1:]]
        if self.status is not None:
            lines = status_indicator(self.status)
            rows.append(("status indicator", lines[0]))
            rows += [("", line) for line in lines[1:]]
        if self.dir_reference is not None:
            rows.append(("DIR data reference", f"{self.dir_reference:02X}"))
        if self.kind == "proprietary":
            rows.append(("proprietary data", _text(self.raw)))
        rows += [("problem", p) for p in self.problems]
        return rows

    def to_json(self) -> dict[str, object]:
        return {"category": None if self.category is None else f"{self.category:02X}", "kind": self.kind,
                "objects": [o.to_json() for o in self.objects],
                "status_indicator": None if self.status is None else {
                    "value": self.status.hex().upper(), "meaning": status_indicator(self.status)},
                "dir_reference": self.dir_reference,
                "pcsc_storage_card": None if self.storage_card is None else self.storage_card.to_json(),
                "problems": list(self.problems)}


def _compact_tlv(data: bytes) -> tuple[list[CompactObject], list[str]]:
    objects: list[CompactObject] = []
    problems: list[str] = []
    pos = 0
    while pos < len(data):
        head = data[pos]
        tag, length = head >> 4, head & 0x0F
        value = data[pos + 1 : pos + 1 + length]
        if len(value) < length:
            problems.append(f"compact-TLV object {head:02X} announces {length} byte(s), {len(value)} left")
        objects.append(CompactObject(tag, value))
        pos += 1 + length
    return objects, problems


def decode_historical(data: bytes) -> HistoricalBytes:
    """Decode historical bytes (ISO/IEC 7816-4 §8.1.1; PC/SC part 3 storage cards)."""
    raw = bytes(data)
    if not raw:
        return HistoricalBytes(raw, None, "none")
    category = raw[0]
    if (category == 0x80 and len(raw) == 15 and raw[1] == 0x4F and raw[2] == 0x0C and raw[3:8] == PCSC_RID):
        card = StorageCard(raw[3:8], raw[8], int.from_bytes(raw[9:11], "big"), raw[11:15])
        return HistoricalBytes(raw, category, "PC/SC part 3 contactless storage card", storage_card=card)
    if category == 0x00:
        if len(raw) < 4:
            return HistoricalBytes(raw, category, "compact-TLV, status indicator last",
                                   problems=(f"category 00 needs a 3-byte status indicator, {len(raw) - 1} "
                                             f"byte(s) follow",))
        objects, problems = _compact_tlv(raw[1:-3])
        return HistoricalBytes(raw, category, "compact-TLV, status indicator last", tuple(objects), raw[-3:],
                               problems=tuple(problems))
    if category == 0x80:
        objects, problems = _compact_tlv(raw[1:])
        return HistoricalBytes(raw, category, "compact-TLV", tuple(objects), problems=tuple(problems))
    if category == 0x10:
        if len(raw) != 2:
            return HistoricalBytes(raw, category, "DIR data reference",
                                   problems=(f"category 10 is followed by one byte, got {len(raw) - 1}",))
        return HistoricalBytes(raw, category, "DIR data reference", dir_reference=raw[1])
    if 0x81 <= category <= 0x8F:
        return HistoricalBytes(raw, category, "RFU")
    return HistoricalBytes(raw, category, "proprietary")
