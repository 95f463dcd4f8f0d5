"""Personalisation: deterministic cards, identifiers and serials, keys from the
masters, holder data that decodes and checks, profile errors."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from cardlib.crypto import Algorithm
from cardlib.errors import FormatError
from cardlib.keys import IssuerKeys, KeyEntry, default_issuer, derive_card_keys
from cardlib.pboc.files import HolderData, ManagementData, PublicData
from cardlib.ssse.files import CARD_TYPES, ssn_check_digit
from simulators.image import card_to_json
from simulators.issuer import CardProfile, issue_card, sample_card
from simulators.ssc import SocialSecurityCard

ELDER = CardProfile(name="吕庆军", birth_date=date(1958, 3, 2), card_type="elder", region="341800",
                    balance=1234, valid_until=date(2030, 6, 30))


def purse_file(card: SocialSecurityCard, sfi: int) -> bytes:
    return bytes(card._purse_ef(sfi).data)


def test_same_seed_and_profile_same_card_other_seed_other_card() -> None:
    assert card_to_json(issue_card(ELDER, seed=5)) == card_to_json(issue_card(ELDER, seed=5))
    assert card_to_json(sample_card(3)) == card_to_json(sample_card(3))
    a, b = issue_card(ELDER, seed=5), issue_card(ELDER, seed=6)
    assert a.app_serial != b.app_serial and a.issuer_records().card_id != b.issuer_records().card_id
    assert a.keys.dpk.key != b.keys.dpk.key


def test_identifiers_serials_and_region() -> None:
    card = issue_card(ELDER, seed=7)
    ef05 = card.issuer_records()
    assert ef05.card_id[:8] == bytes.fromhex("341800D156000005")
    serial_digits = ef05.card_id[8:].hex().upper()
    assert serial_digits.endswith("FFFF") and serial_digits[:12].isdigit()  # F-padded on the right
    assert card.app_serial.hex().upper() == "3418" + serial_digits[:12].rjust(16, "0")
    assert ef05.card_type == CARD_TYPES["elder"] == 0x03 and ef05.spec_version == "3.00"
    assert (ef05.issue_date, ef05.expiry_date) == (date(2024, 1, 1), date(2030, 6, 30))
    assert len(ef05.card_number) == 9 and ef05.card_number.startswith("34")
    public = PublicData.decode(purse_file(card, 0x15))
    assert public.app_serial == card.app_serial and public.issuer_id == default_issuer().issuer_id
    assert (public.valid_from, public.valid_until) == (date(2024, 1, 1), date(2030, 6, 30))
    mgmt = ManagementData.decode(purse_file(card, 0x17))
    assert (mgmt.province, mgmt.city) == (bytes.fromhex("3400"), bytes.fromhex("3418"))
    holder = HolderData.decode(purse_file(card, 0x16))
    assert holder.card_type == 0x03 and holder.name == "吕庆军" and holder.id_number == card.holder_records().ssn
    assert card.balance == 1234 and card.meta["test_only"] is True


def test_keys_are_derived_from_the_masters() -> None:
    for algorithm in ("3des", "sm4"):
        card = issue_card(dataclasses.replace(ELDER, algorithm=algorithm), seed=8)
        expected = derive_card_keys(default_issuer(), card.app_serial, card.issuer_records().card_id,
                                    Algorithm.parse(algorithm))
        assert card.keys == expected
        assert {e.index for e in (card.keys.dlk, card.keys.dpk, card.keys.dtk, card.keys.damk)} == {1}


def test_another_issuer_gives_other_keys_for_the_same_card() -> None:
    base = default_issuer()
    masters = {name: KeyEntry(bytes((i + 1,)) * 16) for i, name in enumerate(
        ("mlk", "mpk", "mtk", "mamk", "ssse_iak", "ssse_eak"))}
    other = IssuerKeys.from_json({**base.to_json(), "name": "another issuer", "test_only": False,
                                  "keys": {k: v.to_json() for k, v in masters.items()}}, "test")
    ours, theirs = issue_card(ELDER, seed=9), issue_card(ELDER, other, seed=9)
    assert ours.app_serial == theirs.app_serial  # the seed varies data, the issuer the keys
    assert ours.keys.dpk.key != theirs.keys.dpk.key
    assert theirs.meta == {**ours.meta, "issuer": "another issuer", "test_only": False}


def test_sample_holders_have_valid_ssns_and_gbk_names() -> None:
    for seed in range(40):
        holder = sample_card(seed).holder_records()
        assert len(holder.ssn) == 18 and ssn_check_digit(holder.ssn[:17]) == holder.ssn[17]
        assert holder.ssn[6:14] == f"{holder.birth_date:%Y%m%d}"
        assert int(holder.ssn[16]) % 2 == (1 if holder.sex == 1 else 0)  # 17th digit: odd for men
        assert 2 <= len(holder.name) <= 3 and len(holder.name.encode("gbk")) == 2 * len(holder.name)


def test_profile_errors_name_the_field() -> None:
    bad = {
        "card type": CardProfile(card_type="vip"),
        "region": CardProfile(region="3303"),
        "balance": CardProfile(balance=-1),
        "valid until": CardProfile(valid_until=date(2020, 1, 1)),
        "PIN": CardProfile(pin="12ab56"),
        "GBK": CardProfile(name="Ωmega\u0e01"),
        "bytes in GBK": CardProfile(name="欧阳" * 6),
        "social security number": CardProfile(ssn="110105194912310021"),
        "sex": CardProfile(sex=3),
    }
    for words, profile in bad.items():
        with pytest.raises(FormatError, match=words):
            issue_card(profile)
    with pytest.raises(FormatError):
        issue_card(CardProfile(algorithm="des"))
