"""Reading and authenticating the social security card (人社部 social security card
specification; its authentication is the project's profile).

Issuer and holder data as typed values, validity checks, internal
authentication of the card and external authentication of the terminal
through the SAM, and the PIN. PINs are never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from cardlib.channel import Channel
from cardlib.crypto import constant_time_equal
from cardlib.errors import AuthenticationError, FormatError, RefusedError
from cardlib.iso import get_challenge, select_aid
from cardlib.keys import ssse_factor
from cardlib.pboc import psam as psam_commands
from cardlib.pboc.files import parse_bcd_date
from cardlib.ssse import commands as ssse_commands
from cardlib.ssse.files import (
    RECORD_NUMBERS,
    SSSE_AID,
    T_BIRTH_DATE,
    T_CARD_ID,
    T_CARD_TYPE,
    T_EXPIRY,
    T_ISSUE_DATE,
    HolderRecords,
    IssuerRecords,
    parse_record,
)
from cardlib.sw import SW_AUTH_BLOCKED, SW_FILE_NOT_FOUND, SW_OK, SW_RECORD_NOT_FOUND, retries
from terminal.psam import PsamClient


class CardRefusedError(RefusedError):
    """A rule refused the card; ``reason`` is the decision's reason code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class NoSsseError(RefusedError):
    """The card has no social security application (a plain T-Union card)."""


class PinError(AuthenticationError):
    def __init__(self, message: str, tries_left: int | None) -> None:
        self.tries_left = tries_left
        super().__init__(message)


@dataclass(frozen=True)
class CardInfo:
    issuer: IssuerRecords
    holder: HolderRecords

    @property
    def card_id(self) -> bytes:
        return self.issuer.card_id

    def age_on(self, day: date) -> int:
        b = self.holder.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    def to_json(self) -> dict[str, Any]:
        return {
            "card_number": self.issuer.card_number,
            "card_id": self.issuer.card_id.hex().upper(),
            "card_type": self.issuer.card_type,
            "spec_version": self.issuer.spec_version,
            "valid_from": self.issuer.issue_date.isoformat(),
            "valid_until": self.issuer.expiry_date.isoformat(),
            "ssn": self.holder.ssn,
            "name": self.holder.name,
            "sex": self.holder.sex,
            "birth_date": self.holder.birth_date.isoformat(),
            "region": self.issuer.region,
        }


@dataclass(frozen=True)
class Identity:
    """What a tap read of the SSSE: only the records its role's decision uses (tag → value)."""

    values: dict[int, bytes]

    def value(self, tag: int) -> bytes:
        try:
            return self.values[tag]
        except KeyError:
            raise FormatError(f"SSSE record {tag:02X} was not read") from None

    @property
    def card_id(self) -> bytes:
        return self.value(T_CARD_ID)

    @property
    def card_type(self) -> int | None:
        raw = self.values.get(T_CARD_TYPE)
        return raw[0] if raw else None

    @property
    def issue_date(self) -> date:
        return parse_bcd_date(self.value(T_ISSUE_DATE))

    @property
    def expiry_date(self) -> date:
        return parse_bcd_date(self.value(T_EXPIRY))

    @property
    def region(self) -> str | None:
        return self.values[T_CARD_ID][:3].hex() if T_CARD_ID in self.values else None

    def age_on(self, day: date) -> int | None:
        if T_BIRTH_DATE not in self.values:
            return None
        b = parse_bcd_date(self.values[T_BIRTH_DATE])
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


class SsseReader:
    """Reads EF05/EF06 records by number as public readers do, remembering the current EF so
    that nothing selected is selected again: ``fid`` selects the EF (``00 A4 02 00 02 EF05``)
    and reads the current EF's records, ``sfi`` reads by short file identifier."""

    def __init__(self, channel: Channel, addressing: str = "fid") -> None:
        if addressing not in ssse_commands.ADDRESSING:
            raise ValueError(f"SSSE addressing must be one of {', '.join(ssse_commands.ADDRESSING)}")
        self.channel = channel
        self.addressing = addressing
        self.values: dict[int, bytes] = {}
        self._ef: int | None = None

    def select(self) -> bool:
        """SELECT the SSSE application; False when the card has none (a plain T-Union card)."""
        answer = self.channel.transmit(ssse_commands.select_ssse())
        if answer.sw == SW_FILE_NOT_FOUND:
            return False
        answer.check("SELECT SSSE")
        self._ef = None
        return True

    def read(self, tags: Iterable[int]) -> Identity:
        """Read the records of ``tags`` not read yet, in file and record order."""
        for tag in sorted(set(tags) - set(self.values), key=RECORD_NUMBERS.__getitem__):
            fid = RECORD_NUMBERS[tag][0]
            if self.addressing == "fid" and self._ef != fid:
                self.channel.send(ssse_commands.select_ef(fid), what=f"SELECT EF{fid:04X}")
                self._ef = fid
            r = self.channel.transmit(ssse_commands.read_by_number(tag, self.addressing))
            if r.sw == SW_RECORD_NOT_FOUND:
                continue
            r.check(f"READ RECORD {tag:02X}")
            self.values[tag] = parse_record(r.data, tag)
        return Identity(dict(self.values))


def read_card(channel: Channel, addressing: str = "fid") -> CardInfo:
    """SELECT the SSSE application and read all of EF05 and EF06."""
    reader = SsseReader(channel, addressing)
    if not reader.select():
        raise NoSsseError("no social security application on this card (a transit card only)")
    values = reader.read(RECORD_NUMBERS).values
    return CardInfo(IssuerRecords.from_records(values), HolderRecords.from_records(values))


def check_validity(valid_from: date, valid_until: date, today: date) -> None:
    """The card's validity: EF05's issue and expiry dates at identity gates, the purse's 0x15
    at transit terminals (the project's profile)."""
    if today < valid_from:
        raise CardRefusedError("card_not_yet_valid", f"card valid from {valid_from}")
    if today > valid_until:
        raise CardRefusedError("card_expired", f"card expired on {valid_until}")


def internal_authenticate(channel: Channel, psam: PsamClient, card_id: bytes, challenge: bytes,
                          select: bool = True) -> None:
    """The card proves it is genuine: its answer must equal the SAM's (usage 0x27).
    ``select`` False when the SSSE is the current application already."""
    if select:
        channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    answer = channel.transmit(ssse_commands.internal_authenticate(challenge))
    if not answer.ok:
        raise AuthenticationError(f"card refused internal authentication ({answer.sw:04X})")
    psam.start_session_key(psam_commands.USAGE_SSSE_INTERNAL, (ssse_factor(card_id),))
    expected = psam.encrypt(challenge)
    if not constant_time_equal(expected, answer.data):
        raise AuthenticationError("card failed internal authentication: not a card of this issuer")


def external_authenticate(channel: Channel, psam: PsamClient, info: CardInfo) -> None:
    """The terminal proves itself to the card (opens protected writes)."""
    challenge = channel.send(get_challenge(8), what="GET CHALLENGE").data
    psam.start_session_key(psam_commands.USAGE_SSSE_EXTERNAL, (ssse_factor(info.card_id),))
    response = channel.transmit(ssse_commands.external_authenticate(psam.encrypt(challenge)))
    if not response.ok:
        raise AuthenticationError(f"card refused the terminal's authentication ({response.sw:04X})")


def _pin_result(sw: int, what: str, secret: str = "PIN") -> None:
    """The card's answer about ``secret`` (the PIN, or the PUK that UNBLOCK checks)."""
    if sw == SW_OK:
        return
    if sw == SW_AUTH_BLOCKED:
        raise PinError(f"{what}: {secret} blocked", 0)
    tries = retries(sw)
    if tries is not None:
        raise PinError(f"{what}: wrong {secret}, {tries} tries left", tries)
    raise PinError(f"{what}: card answered {sw:04X}", None)


def verify_pin(channel: Channel, pin: str) -> None:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    _pin_result(channel.transmit(ssse_commands.verify_pin(pin)).sw, "VERIFY")


def pin_tries_left(channel: Channel, select: bool = True) -> int:
    if select:
        channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    sw = channel.transmit(ssse_commands.pin_query()).sw
    if sw == SW_AUTH_BLOCKED:
        return 0
    return retries(sw) or 0


def change_pin(channel: Channel, old: str, new: str) -> None:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    _pin_result(channel.transmit(ssse_commands.change_pin(old, new)).sw, "CHANGE PIN")


def unblock_pin(channel: Channel, puk: str, new: str) -> None:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    _pin_result(channel.transmit(ssse_commands.unblock_pin(puk, new)).sw, "UNBLOCK PIN", "PUK")
