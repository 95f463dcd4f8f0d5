"""Personalisation of virtual social security cards for an issuer.

The built-in TEST ONLY issuer by default. The same seed and profile give the
same card, byte for byte: serials, holder, randomness.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date

from cardlib.crypto import Algorithm
from cardlib.errors import FormatError
from cardlib.keys import IssuerKeys, default_issuer, derive_card_keys
from cardlib.keystore import InteropKeys, builtin_interop
from cardlib.pboc.capp import BUS_RECORD, METRO_RECORD, blank_record
from cardlib.pboc.files import (
    CAPP_SFI,
    INTEROPERABLE,
    LOCAL_CARD_TYPES,
    NOT_INTEROPERABLE,
    HolderData,
    ManagementData,
    PublicData,
)
from cardlib.ssse.commands import pin_bytes
from cardlib.ssse.files import (
    CARD_TYPES,
    ORG_SIZE,
    HolderRecords,
    IssuerRecords,
    card_identifier,
    ssn_check_digit,
)
from simulators.filesystem import DedicatedFile, RecordEF, TransparentEF
from simulators.purse import PurseState
from simulators.ssc import CARD_KINDS, DEFAULT_ATR, TUNION_ATR, SocialSecurityCard, SsseState

#: a plain T-Union card's type in 0x15 byte 28 (public bus POS code: 00 ordinary, 01 elder, 11 disabled)
TUNION_CARD_TYPES = {name: code for code, name in LOCAL_CARD_TYPES.items()}  # 0x15 byte 28

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "建华", "庆军", "晓东", "丽萍"]


@dataclass(frozen=True)
class CardProfile:
    """What a personalisation needs; None fields are drawn from the seed."""

    name: str | None = None
    ssn: str | None = None
    sex: int | None = None
    birth_date: date | None = None
    card_type: str = "adult"
    region: str = "330300"
    balance: int = 5000
    valid_from: date = date(2024, 1, 1)
    valid_until: date = date(2034, 12, 31)
    algorithm: str = "3des"
    pin: str = "123456"
    overdraft_limit: int = 0
    kind: str = "ssc"  # ssc: a social security card; tunion: a plain T-Union card (the purse alone)
    #: a card of the interoperable (T-Union) network: beside its issuer's purchase key it holds the
    #: network's, under that key's index (cardlib.keystore: the project's profile), and 0x17 says so
    interoperable: bool = False


def _ssn(rng: random.Random, region: str, birth: date, sex: int) -> str:
    # the 17th digit is odd for men, even for women (GB 11643)
    seq = rng.randrange(0, 50) * 2 + (1 if sex == 1 else 0)
    body = f"{region}{birth:%Y%m%d}{rng.randrange(0, 10)}{seq:02d}"
    return body + ssn_check_digit(body)


def _valid_ssn(ssn: str) -> bool:
    return len(ssn) == 18 and ssn[:17].isdigit() and ssn[:17].isascii() and ssn_check_digit(ssn[:17]) == ssn[17]


def complete_profile(profile: CardProfile, rng: random.Random) -> CardProfile:
    """Check the profile and draw what it leaves open from ``rng`` (FormatError names the field)."""
    _check_card(profile)
    _check_holder(profile)
    sex = profile.sex or rng.choice((1, 2))
    birth = profile.birth_date or date(rng.randrange(1950, 2005), rng.randrange(1, 13), rng.randrange(1, 29))
    name = profile.name or rng.choice(SURNAMES) + rng.choice(GIVEN)
    ssn = profile.ssn or _ssn(rng, profile.region, birth, sex)
    return replace(profile, sex=sex, birth_date=birth, name=name, ssn=ssn)


def _check_card(profile: CardProfile) -> None:
    """The card's own fields: kind, type, region, balance, validity, PIN."""
    if profile.kind not in CARD_KINDS:
        raise FormatError(f"card kind {profile.kind!r}: one of {', '.join(CARD_KINDS)}")
    if profile.kind == "tunion" and profile.card_type not in TUNION_CARD_TYPES:
        raise FormatError(f"a T-Union card's type is one of {', '.join(TUNION_CARD_TYPES)}, got {profile.card_type!r}")
    if profile.card_type not in CARD_TYPES:
        raise FormatError(f"card type {profile.card_type!r}: one of {', '.join(CARD_TYPES)}")
    if len(profile.region) != 6 or not profile.region.isdigit():
        raise FormatError(f"region must be a 6-digit code, got {profile.region!r}")
    if not 0 <= profile.balance <= 0x7FFFFFFF:
        raise FormatError(f"balance must be 0..{0x7FFFFFFF} fen, got {profile.balance}")
    if profile.valid_until < profile.valid_from:
        raise FormatError(f"valid until {profile.valid_until} is before valid from {profile.valid_from}")
    pin_bytes(profile.pin)


def _check_holder(profile: CardProfile) -> None:
    """The holder's fields the profile gives: sex, name (GBK), social security number."""
    if profile.sex not in (None, 1, 2):
        raise FormatError(f"sex must be 1 (male) or 2 (female), got {profile.sex}")
    if profile.name is not None:
        try:
            size = len(profile.name.encode("gbk"))
        except UnicodeEncodeError:
            raise FormatError(f"name {profile.name!r} cannot be written in GBK") from None
        if not 0 < size <= 20:
            raise FormatError(f"name {profile.name!r} must be 1..20 bytes in GBK, it is {size}")
    if profile.ssn is not None and not _valid_ssn(profile.ssn):
        raise FormatError(f"social security number {profile.ssn[:6]}…: 18 characters with a valid check digit")


def issue_card(profile: CardProfile | None = None, issuer: IssuerKeys | None = None, seed: int = 0,
               interop: InteropKeys | None = None) -> SocialSecurityCard:
    """Personalise a card: files, keys derived from the masters, purse state. An interoperable
    card's second purchase key comes from ``interop`` (default: the built-in TEST ONLY master)."""
    issuer = issuer or default_issuer()
    rng = random.Random(seed)
    p = complete_profile(profile or CardProfile(), rng)
    assert p.birth_date is not None and p.name is not None and p.ssn is not None and p.sex is not None
    algorithm = Algorithm.parse(p.algorithm)
    serial = rng.getrandbits(40) % 10**12  # 12 BCD digits in the card identifier
    card_id = card_identifier(p.region, serial)
    app_serial = bytes.fromhex(f"{p.region[:4]}{serial:016d}")  # BCD: city ‖ serial
    keys = derive_card_keys(issuer, app_serial, card_id, algorithm)
    if p.interoperable:
        network = (interop or builtin_interop()).card_purchase_key(issuer.issuer_id, app_serial, algorithm)
        keys = replace(keys, extra_dpk=(network,))
    ssse = SsseState(pin=p.pin, puk=f"{rng.randrange(10**6):06d}")
    purse = PurseState(balance=p.balance, keys=keys, overdraft_limit=p.overdraft_limit)
    card_rng = random.Random(rng.getrandbits(64))
    tunion = p.kind == "tunion"
    card = SocialSecurityCard(keys, purse, ssse, card_rng, TUNION_ATR if tunion else DEFAULT_ATR, meta={
        "issuer": issuer.name, "test_only": issuer.test_only, "card_type": p.card_type, "region": p.region,
    }, card_kind=p.kind)
    card_number = f"{p.region[:2]}{serial % 10**7:07d}"
    issuer_rec = IssuerRecords(card_id, CARD_TYPES[p.card_type], "3.00", bytes.fromhex(p.region[:4] + "0001").ljust(ORG_SIZE, b"\x00"),
                               p.valid_from, p.valid_until, card_number)
    holder_rec = HolderRecords(p.ssn, p.name, p.sex, 1, bytes.fromhex(p.region[:6]), p.birth_date)
    mf = card.fs.mf
    pdf = mf.children[-1]
    assert isinstance(pdf, DedicatedFile)
    if not tunion:
        sdf = mf.children[0]
        assert isinstance(sdf, DedicatedFile)
        ef05, ef06 = sdf.ef_by_sfi(5), sdf.ef_by_sfi(6)
        assert isinstance(ef05, RecordEF) and isinstance(ef06, RecordEF)
        ef05.records = issuer_rec.records()
        ef06.records = holder_rec.records()
    local_type = bytes((TUNION_CARD_TYPES[p.card_type], 0)) if tunion else b"\x00\x00"
    files = {
        0x15: PublicData(issuer.issuer_id, app_serial, p.valid_from, p.valid_until,
                         issuer_fci=local_type).encode(),
        0x16: HolderData(CARD_TYPES[p.card_type], p.name, p.ssn).encode(),
        0x17: ManagementData(bytes.fromhex(p.region[:2] + "00"), bytes.fromhex(p.region[:4]),  # 3300, 3303
                             interop=INTEROPERABLE if p.interoperable else NOT_INTEROPERABLE).encode(),
    }
    for sfi, data in files.items():
        ef = pdf.ef_by_sfi(sfi)
        assert isinstance(ef, TransparentEF)
        ef.data = bytearray(data)
    capp = pdf.ef_by_sfi(CAPP_SFI)  # the industry records gates read, modify and write back
    assert isinstance(capp, RecordEF)
    capp.records = [blank_record(METRO_RECORD), blank_record(BUS_RECORD)]
    return card


def sample_card(seed: int = 0) -> SocialSecurityCard:
    """A card of the test issuer with a holder drawn from the seed."""
    return issue_card(CardProfile(), seed=seed)
