"""Reading and authenticating the social security card (reference §6, §8).

Issuer and holder data as typed values, validity checks, internal
authentication of the card and external authentication of the terminal
through the SAM, and the PIN. PINs are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from cardlib import sw as SW
from cardlib.channel import Channel
from cardlib.clock import Clock
from cardlib.crypto import constant_time_equal
from cardlib.errors import AuthenticationError, RefusedError
from cardlib.iso import get_challenge, read_record_by_id, select_aid
from cardlib.keys import ssse_factor
from cardlib.pboc import psam as W
from cardlib.ssse import commands as C
from cardlib.ssse.files import (
    SFI_HOLDER,
    SFI_ISSUER,
    SSSE_AID,
    HolderRecords,
    IssuerRecords,
    parse_record,
)
from terminal.psam import PsamClient


class CardRefusedError(RefusedError):
    """A rule refused the card; ``reason`` is the decision's reason code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


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


def _read_records(channel: Channel, sfi: int, tags: range) -> dict[int, bytes]:
    out = {}
    for tag in tags:
        r = channel.transmit(read_record_by_id(tag, sfi=sfi))
        if r.sw == SW.SW_RECORD_NOT_FOUND:
            continue
        r.check(f"READ RECORD {tag:02X}")
        out[tag] = parse_record(r.data, tag)
    return out


def read_card(channel: Channel) -> CardInfo:
    """SELECT the SSSE application and read EF05 and EF06."""
    channel.send(select_aid(SSSE_AID), what="SELECT SSSE")
    issuer = IssuerRecords.from_records(_read_records(channel, SFI_ISSUER, range(1, 8)))
    holder = HolderRecords.from_records(_read_records(channel, SFI_HOLDER, range(8, 14)))
    return CardInfo(issuer, holder)


def check_validity(info: CardInfo, clock: Clock) -> None:
    """The card's validity is EF05's issue and expiry dates (reference §8)."""
    today = clock.now().date()
    if today < info.issuer.issue_date:
        raise CardRefusedError("card_not_yet_valid", f"card valid from {info.issuer.issue_date}")
    if today > info.issuer.expiry_date:
        raise CardRefusedError("card_expired", f"card expired on {info.issuer.expiry_date}")


def internal_authenticate(channel: Channel, psam: PsamClient, info: CardInfo, challenge: bytes) -> None:
    """The card proves it is genuine: its answer must equal the SAM's (usage 0x27)."""
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    answer = channel.transmit(C.internal_authenticate(challenge))
    if not answer.ok:
        raise AuthenticationError(f"card refused internal authentication ({answer.sw:04X})")
    psam.start_session_key(W.USAGE_SSSE_INTERNAL, (ssse_factor(info.card_id),))
    expected = psam.encrypt(challenge)
    if not constant_time_equal(expected, answer.data):
        raise AuthenticationError("card failed internal authentication: not a card of this issuer")


def external_authenticate(channel: Channel, psam: PsamClient, info: CardInfo) -> None:
    """The terminal proves itself to the card (opens protected writes)."""
    challenge = channel.send(get_challenge(8), what="GET CHALLENGE").data
    psam.start_session_key(W.USAGE_SSSE_EXTERNAL, (ssse_factor(info.card_id),))
    response = channel.transmit(C.external_authenticate(psam.encrypt(challenge)))
    if not response.ok:
        raise AuthenticationError(f"card refused the terminal's authentication ({response.sw:04X})")


def _pin_result(sw: int, what: str, secret: str = "PIN") -> None:
    """The card's answer about ``secret`` (the PIN, or the PUK that UNBLOCK checks)."""
    if sw == SW.SW_OK:
        return
    if sw == SW.SW_AUTH_BLOCKED:
        raise PinError(f"{what}: {secret} blocked", 0)
    tries = SW.retries(sw)
    if tries is not None:
        raise PinError(f"{what}: wrong {secret}, {tries} tries left", tries)
    raise PinError(f"{what}: card answered {sw:04X}", None)


def verify_pin(channel: Channel, pin: str) -> None:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    _pin_result(channel.transmit(C.verify_pin(pin)).sw, "VERIFY")


def pin_tries_left(channel: Channel) -> int:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    sw = channel.transmit(C.pin_query()).sw
    if sw == SW.SW_AUTH_BLOCKED:
        return 0
    return SW.retries(sw) or 0


def change_pin(channel: Channel, old: str, new: str) -> None:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    _pin_result(channel.transmit(C.change_pin(old, new)).sw, "CHANGE PIN")


def unblock_pin(channel: Channel, puk: str, new: str) -> None:
    channel.send(select_aid(SSSE_AID, fci=False), what="SELECT SSSE")
    _pin_result(channel.transmit(C.unblock_pin(puk, new)).sw, "UNBLOCK PIN", "PUK")
