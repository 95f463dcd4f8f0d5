"""Answer-to-Reset parsing, ISO/IEC 7816-3 §8 (and PC/SC part 3 pseudo-ATRs).

Bytes from a reader are already logical values: TS only tells which
convention the card used on the wire; nothing is inverted here. What the
historical bytes say is decoded in cardlib/atr_history.py (ISO/IEC 7816-4
§8.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import xor

from cardlib.atr_history import HistoricalBytes, decode_historical
from cardlib.errors import FormatError

# ISO 7816-3 Table 7 and 8: Fi / f(max) by TA1 high nibble, Di by low nibble.
_FI: dict[int, tuple[int, float]] = {
    0: (372, 4.0), 1: (372, 5.0), 2: (558, 6.0), 3: (744, 8.0), 4: (1116, 12.0),
    5: (1488, 16.0), 6: (1860, 20.0), 9: (512, 5.0), 10: (768, 7.5), 11: (1024, 10.0),
    12: (1536, 15.0), 13: (2048, 20.0),
}
_DI: dict[int, int] = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 6: 32, 7: 64, 8: 12, 9: 20}
MAX_ATR = 33


@dataclass(frozen=True)
class InterfaceGroup:
    """TAi, TBi, TCi, TDi of group i (1-based); None where absent."""

    index: int
    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None

    @property
    def protocol(self) -> int | None:
        """The protocol TDi indicates for the next group."""
        return None if self.td is None else self.td & 0x0F


@dataclass(frozen=True)
class Atr:
    raw: bytes
    convention: str
    t0: int
    groups: tuple[InterfaceGroup, ...]
    historical_bytes: bytes
    tck: int | None
    protocols: tuple[int, ...] = field(default=(0,))

    @property
    def tck_present(self) -> bool:
        return self.tck is not None

    @property
    def tck_valid(self) -> bool | None:
        """None when absent; a wrong TCK is reported here, not refused."""
        if self.tck is None:
            return None
        return reduce(xor, self.raw[1:], 0) == 0

    @property
    def ta1(self) -> int | None:
        return self.groups[0].ta if self.groups else None

    @property
    def fi(self) -> int:
        return _FI.get((self.ta1 or 0x11) >> 4, (0, 0.0))[0]

    @property
    def f_max_mhz(self) -> float:
        return _FI.get((self.ta1 or 0x11) >> 4, (0, 0.0))[1]

    @property
    def di(self) -> int:
        return _DI.get((self.ta1 or 0x11) & 0x0F, 0)

    @property
    def guard_time(self) -> int:
        """Extra guard time N from TC1 (0 when absent)."""
        return (self.groups[0].tc or 0) if self.groups else 0

    @property
    def transmission_protocol(self) -> int:
        """The protocol a PC/SC reader runs with this card: TA2's in specific mode
        (ISO 7816-3 §8.2.3), else T=1 when offered (pcsc-lite prefers it), else T=0.
        A contactless pseudo-ATR offers T=1 (PC/SC part 3)."""
        ta2 = self.groups[1].ta if len(self.groups) > 1 else None
        if ta2 is not None:
            return ta2 & 0x0F
        return 1 if 1 in self.protocols else 0

    @property
    def contactless(self) -> bool:
        """PC/SC part 3 pseudo-ATR: 3B 8n 80 01 …"""
        r = self.raw
        return len(r) >= 5 and r[0] == 0x3B and r[1] & 0xF0 == 0x80 and r[2] == 0x80 and r[3] == 0x01

    @property
    def history(self) -> HistoricalBytes:
        """The historical bytes decoded (category, compact-TLV objects, PC/SC storage card)."""
        return decode_historical(self.historical_bytes)

    def describe(self) -> list[tuple[str, str]]:
        """Rows for a human table."""
        rows = [
            ("ATR", self.raw.hex(" ").upper()),
            ("TS", f"{self.raw[0]:02X} ({self.convention} convention)"),
            ("T0", f"{self.t0:02X} (Y1={self.t0 >> 4:X}, K={self.t0 & 0x0F} historical bytes)"),
        ]
        for g in self.groups:
            for name in ("ta", "tb", "tc", "td"):
                value = getattr(g, name)
                if value is not None:
                    rows.append((f"{name.upper()}{g.index}", f"{value:02X}"))
        rows.append(("protocols", ", ".join(f"T={p}" for p in self.protocols)))
        if self.ta1 is not None:
            rows.append(("Fi/Di", f"Fi={self.fi} Di={self.di} (f max {self.f_max_mhz:g} MHz)"))
        rows.append(("historical bytes", self.historical_bytes.hex(" ").upper() or "(none)"))
        rows += [(f"  {key}" if key else "", value) for key, value in self.history.rows()]
        if self.tck is None:
            rows.append(("TCK", "absent (T=0 only)"))
        else:
            rows.append(("TCK", f"{self.tck:02X} ({'valid' if self.tck_valid else 'INVALID'})"))
        if self.contactless:
            rows.append(("contactless", "PC/SC part 3 pseudo-ATR"))
        return rows


def parse_atr(data: bytes) -> Atr:
    """Parse an ATR; FormatError names what is wrong, never anything else."""
    raw = bytes(data)
    if len(raw) < 2:
        raise FormatError(f"ATR too short: {len(raw)} byte(s), needs at least TS and T0")
    if len(raw) > MAX_ATR:
        raise FormatError(f"ATR too long: {len(raw)} bytes, at most {MAX_ATR}")
    conventions = {0x3B: "direct", 0x3F: "inverse"}
    if raw[0] not in conventions:
        raise FormatError(f"bad TS {raw[0]:02X}: expected 3B (direct) or 3F (inverse)")
    t0 = raw[1]
    k = t0 & 0x0F
    groups, pos = _interface_groups(raw, t0 >> 4)
    offered = [g.td & 0x0F for g in groups if g.td is not None]
    if pos + k > len(raw):
        raise FormatError(f"ATR truncated: {k} historical bytes announced, {len(raw) - pos} left")
    historical = raw[pos : pos + k]
    pos += k
    # TCK is absent only when T=0 alone is indicated (§8.2.5).
    tck: int | None = None
    if any(p != 0 for p in offered):
        if pos >= len(raw):
            raise FormatError("ATR truncated: TCK required (protocol other than T=0) but missing")
        tck = raw[pos]
        pos += 1
    if pos != len(raw):
        raise FormatError(f"ATR has {len(raw) - pos} trailing byte(s) after the last field")
    protocols = tuple(sorted({p for p in offered if p != 15})) or (0,)
    return Atr(raw, conventions[raw[0]], t0, tuple(groups), historical, tck, protocols)


def _interface_groups(raw: bytes, y: int) -> tuple[list[InterfaceGroup], int]:
    """The interface bytes TAi TBi TCi TDi from offset 2, each group announced by the
    previous TD's high nibble (``y`` for the first, from T0); and the offset after them."""
    pos = 2
    groups: list[InterfaceGroup] = []
    while True:
        index = len(groups) + 1
        values: dict[str, int | None] = {"ta": None, "tb": None, "tc": None, "td": None}
        for bit, name in ((0x1, "ta"), (0x2, "tb"), (0x4, "tc"), (0x8, "td")):
            if y & bit:
                if pos >= len(raw):
                    raise FormatError(f"ATR truncated: {name.upper()}{index} announced but missing")
                values[name] = raw[pos]
                pos += 1
        group = InterfaceGroup(index, values["ta"], values["tb"], values["tc"], values["td"])
        groups.append(group)
        if group.td is None:
            return groups, pos
        y = group.td >> 4


def build_contactless_atr(historical: bytes) -> bytes:
    """The PC/SC part 3 pseudo-ATR of an ISO 14443-4 card: 3B 8n 80 01 hist TCK."""
    if len(historical) > 15:
        raise FormatError(f"at most 15 historical bytes fit an ATR, got {len(historical)}")
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + bytes(historical)
    return b"\x3b" + body + bytes((reduce(xor, body, 0),))


def speaks_t0(atr: bytes) -> bool:
    """Whether a reader talks T=0 to the card of ``atr`` (False for an ATR that does not parse)."""
    try:
        return parse_atr(atr).transmission_protocol == 0
    except FormatError:
        return False
