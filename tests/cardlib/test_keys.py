"""Key files, derivation order, TAC verification, and keys never shown."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm, diversify, tdes_encrypt
from cardlib.errors import ConfigError, FormatError
from cardlib.keys import (
    IssuerKeys,
    default_issuer,
    derive_card_keys,
    load_issuer_keys,
    purse_factors,
    verify_tac,
)
from cardlib.pboc import macs

SERIAL = bytes.fromhex("33030000000000000001")
CARD_ID = bytes.fromhex("330300D156000005FFFF000000000001")


def test_builtin_issuer_is_marked_test_only() -> None:
    issuer = default_issuer()
    assert issuer.test_only and "TEST ONLY" in issuer.name
    assert load_issuer_keys(None) is issuer
    assert IssuerKeys.from_json(issuer.to_json()) == issuer


def test_derivation_order_issuer_first() -> None:
    issuer = default_issuer()
    keys = derive_card_keys(issuer, SERIAL, CARD_ID)
    level1 = diversify(issuer.mpk.key, issuer.issuer_id)
    assert keys.dpk.key == diversify(level1, SERIAL[2:])
    assert purse_factors(issuer.issuer_id, SERIAL) == (issuer.issuer_id, SERIAL[2:])
    assert keys.damk.key == diversify(issuer.mamk.key, SERIAL[2:])
    assert keys.cak.key == diversify(issuer.ssse_iak.key, CARD_ID[8:])
    # the DIV formula of §3, by hand
    f = issuer.issuer_id
    assert level1 == tdes_encrypt(issuer.mpk.key, f) + tdes_encrypt(issuer.mpk.key, bytes(b ^ 0xFF for b in f))


@pytest.mark.parametrize("alg", [Algorithm.TDES, Algorithm.SM4])
def test_verify_tac(alg: Algorithm) -> None:
    issuer = default_issuer()
    keys = derive_card_keys(issuer, SERIAL, CARD_ID, alg)
    date, time = macs.bcd_datetime(datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING))
    fields = macs.TacFields(macs.TX_EP_PURCHASE, 200, bytes.fromhex("000000000001"), date, time, terminal_seq=7)
    tac = macs.compute_tac(keys.dtk.key, fields, alg)
    assert verify_tac(issuer, SERIAL, fields, tac, alg)
    assert not verify_tac(issuer, SERIAL, fields, bytes(a ^ 1 for a in tac), alg)
    other = macs.TacFields(macs.TX_EP_PURCHASE, 201, fields.terminal_id, date, time, terminal_seq=7)
    assert not verify_tac(issuer, SERIAL, other, tac, alg)


def _write(tmp_path: Path, obj: object) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("format"), "format must be"),
        (lambda o: o.update(version=9), "unsupported version"),
        (lambda o: o["keys"].pop("mpk"), "keys.mpk: missing"),
        (lambda o: o["keys"]["mlk"].update(key="zz"), "keys.mlk.key: not hex"),
        (lambda o: o["keys"]["mlk"].update(key="00" * 8), "must be 16 bytes"),
        (lambda o: o["keys"]["mtk"].update(algorithm="aes"), "keys.mtk.algorithm"),
        (lambda o: o["keys"]["mtk"].update(key_index=300), "keys.mtk.key_index"),
        (lambda o: o.update(issuer_id="0102"), "issuer_id: must be 8 bytes"),
    ],
)
def test_broken_key_files(tmp_path: Path, mutate: object, message: str) -> None:
    obj = default_issuer().to_json()
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message):
        load_issuer_keys(_write(tmp_path, obj))


def test_unreadable_key_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such key file"):
        load_issuer_keys(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_issuer_keys(_write(tmp_path, "{"))


def test_keys_never_shown() -> None:
    issuer = default_issuer()
    keys = derive_card_keys(issuer, SERIAL, CARD_ID)
    text = repr(issuer) + str(keys) + repr(keys.dpk)
    for entry in (issuer.mpk, issuer.mtk, keys.dpk, keys.dtk):
        assert entry.key.hex() not in text.lower()
        assert entry.key.hex().upper() not in text


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_bcd_datetime_round_trip(dt: datetime) -> None:
    dt = dt.replace(microsecond=0, tzinfo=BEIJING)
    assert macs.parse_bcd_datetime(*macs.bcd_datetime(dt)) == dt


def test_bad_bcd() -> None:
    with pytest.raises(FormatError):
        macs.parse_bcd_datetime(bytes.fromhex("2026AB01"), bytes(3))
    with pytest.raises(FormatError):
        macs.parse_bcd_datetime(bytes.fromhex("20261301"), bytes(3))
    with pytest.raises(FormatError):
        macs.amount4(-1)
