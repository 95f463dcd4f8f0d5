"""Key files, derivation order, TAC verification, and keys never shown."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.clock import BEIJING
from cardlib.crypto import Algorithm, diversify, tdes_encrypt
from cardlib.errors import ConfigError, FormatError
from cardlib.keys import (
    MASTER_NAMES,
    CardKeys,
    IssuerKeys,
    KeyEntry,
    default_issuer,
    derive_card_keys,
    load_issuer_keys,
    purse_factors,
    test_issuer,
    verify_tac,
)
from cardlib.pboc import macs

SERIAL = bytes.fromhex("33030000000000000001")
CARD_ID = bytes.fromhex("330300D156000005FFFF000000000001")
TERM = bytes.fromhex("000000000001")


def test_builtin_issuer_is_marked_test_only() -> None:
    issuer = test_issuer()
    assert issuer.test_only and "TEST ONLY" in issuer.name and "never use in production" in issuer.name
    assert issuer.issuer_id == bytes.fromhex("99990000FFFFFFFF")
    assert test_issuer() is issuer and load_issuer_keys(None) is issuer and default_issuer() is issuer
    assert IssuerKeys.from_json(issuer.to_json()) == issuer
    assert not hasattr(test_issuer, "__test__")  # cardlib knows nothing of pytest: tests/conftest.py collects only what a test module defines


def test_builtin_keys_are_the_documented_test_values() -> None:
    issuer = test_issuer()
    for name in MASTER_NAMES:
        entry: KeyEntry = getattr(issuer, name)
        assert entry.key == hashlib.sha256(f"yikatong TEST ONLY {name}".encode()).digest()[:16]
        assert (entry.index, entry.version, entry.algorithm) == (1, 1, Algorithm.TDES)


def test_derivation_order_issuer_first() -> None:
    issuer = test_issuer()
    keys = derive_card_keys(issuer, SERIAL, CARD_ID)
    level1 = diversify(issuer.mpk.key, issuer.issuer_id)
    assert purse_factors(issuer.issuer_id, SERIAL) == (issuer.issuer_id, SERIAL[2:])
    assert keys.dpk.key == diversify(level1, SERIAL[2:])
    assert keys.dpk.key != diversify(diversify(issuer.mpk.key, SERIAL[2:]), issuer.issuer_id)
    assert keys.dlk.key == diversify(diversify(issuer.mlk.key, issuer.issuer_id), SERIAL[2:])
    assert keys.dtk.key == diversify(diversify(issuer.mtk.key, issuer.issuer_id), SERIAL[2:])
    assert keys.damk.key == diversify(issuer.mamk.key, SERIAL[2:])
    assert keys.cak.key == diversify(issuer.ssse_iak.key, CARD_ID[8:])
    assert keys.eak.key == diversify(issuer.ssse_eak.key, CARD_ID[8:])
    # the DIV formula of §3, by hand
    f = issuer.issuer_id
    assert level1 == tdes_encrypt(issuer.mpk.key, f) + tdes_encrypt(issuer.mpk.key, bytes(b ^ 0xFF for b in f))


def test_card_keys_carry_index_version_and_algorithm_of_their_masters() -> None:
    masters = test_issuer().to_json()
    masters["keys"]["mpk"].update(index=3, version=7)
    issuer = IssuerKeys.from_json(masters)
    keys = derive_card_keys(issuer, SERIAL, CARD_ID, Algorithm.SM4)
    assert (keys.dpk.index, keys.dpk.version) == (3, 7) and (keys.dlk.index, keys.dlk.version) == (1, 1)
    assert keys.algorithm is Algorithm.SM4 and all(
        getattr(keys, n).algorithm is Algorithm.SM4 for n in ("dlk", "dpk", "dtk", "damk", "cak", "eak")
    )
    assert keys.dpk.key == diversify(diversify(issuer.mpk.key, issuer.issuer_id, Algorithm.SM4), SERIAL[2:], Algorithm.SM4)


def test_card_keys_json_round_trip() -> None:
    keys = derive_card_keys(test_issuer(), SERIAL, CARD_ID)
    obj = keys.to_json()
    assert set(obj) == {"dlk", "dpk", "dtk", "damk", "cak", "eak"}
    assert obj["dpk"] == {"key": keys.dpk.key.hex().upper(), "index": 1, "version": 1, "algorithm": "3des"}
    assert CardKeys.from_json(json.loads(json.dumps(obj))) == keys
    # card images written before the format settled spell the index "key_index"
    legacy = {n: {"key": e["key"], "key_index": e["index"], "version": e["version"]} for n, e in obj.items()}
    assert CardKeys.from_json(legacy) == keys
    with pytest.raises(ConfigError, match=r"image: keys\.eak: missing"):
        CardKeys.from_json({k: v for k, v in obj.items() if k != "eak"}, "image: keys")


def test_bad_card_identifiers_and_serials() -> None:
    with pytest.raises(FormatError, match="application serial must be 10 bytes"):
        derive_card_keys(test_issuer(), SERIAL[:9], CARD_ID)
    with pytest.raises(FormatError, match="card identifier must be 16 bytes"):
        derive_card_keys(test_issuer(), SERIAL, CARD_ID[:15])
    with pytest.raises(FormatError, match="issuer id must be 8 bytes"):
        purse_factors(bytes(7), SERIAL)


def _fields(tx_type: int, amount: int) -> macs.TacFields:
    date, time = macs.bcd_datetime(datetime(2026, 11, 28, 8, 15, tzinfo=BEIJING))
    if tx_type in macs.LOAD_TYPES:
        return macs.TacFields(tx_type, amount, TERM, date, time, new_balance=amount + 100, online_seq=3)
    return macs.TacFields(tx_type, amount, TERM, date, time, terminal_seq=7)


@pytest.mark.parametrize("alg", [Algorithm.TDES, Algorithm.SM4])
@pytest.mark.parametrize("tx_type", [0x02, 0x06, 0x09])
def test_verify_tac(alg: Algorithm, tx_type: int) -> None:
    issuer = test_issuer()
    keys = derive_card_keys(issuer, SERIAL, CARD_ID, alg)
    fields = _fields(tx_type, 200)
    tac = macs.compute_tac(keys.dtk.key, fields, alg)
    assert verify_tac(issuer, SERIAL, fields, tac, alg)
    assert not verify_tac(issuer, SERIAL, fields, bytes(a ^ 1 for a in tac), alg)
    assert not verify_tac(issuer, SERIAL, _fields(tx_type, 201), tac, alg)
    assert not verify_tac(issuer, SERIAL[:9] + b"\x02", fields, tac, alg)
    assert not verify_tac(issuer, SERIAL, fields, tac[:3], alg)
    other = Algorithm.SM4 if alg is Algorithm.TDES else Algorithm.TDES
    assert not verify_tac(issuer, SERIAL, fields, tac, other)


@given(
    st.binary(min_size=10, max_size=10),
    st.sampled_from([0x01, 0x02, 0x05, 0x06, 0x09]),
    st.integers(0, 0xFFFFFF),
    st.sampled_from([Algorithm.TDES, Algorithm.SM4]),
    st.sampled_from(["amount", "terminal_id", "date", "time", "terminal_seq", "new_balance", "online_seq"]),
)
def test_derived_dtk_and_verify_tac_agree(
    serial: bytes, tx_type: int, amount: int, alg: Algorithm, changed: str
) -> None:
    issuer = test_issuer()
    dtk = derive_card_keys(issuer, serial, CARD_ID, alg).dtk.key
    fields = _fields(tx_type, amount)
    tac = macs.compute_tac(dtk, fields, alg)
    assert verify_tac(issuer, serial, fields, tac, alg)
    other_serial = serial[:9] + bytes([serial[9] ^ 0x80])
    assert not verify_tac(issuer, other_serial, fields, tac, alg)
    # a field the layout covers changes the TAC; one it does not cover leaves it alone
    value: Any = getattr(fields, changed)
    new: Any = bytes([value[0] ^ 0x01]) + value[1:] if isinstance(value, bytes) else value ^ 0x01
    covered = changed not in (("terminal_seq",) if tx_type in macs.LOAD_TYPES else ("new_balance", "online_seq"))
    assert verify_tac(issuer, serial, replace(fields, **{changed: new}), tac, alg) is not covered


# --- key files ------------------------------------------------------------------------------


def _write(tmp_path: Path, obj: object) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


def test_key_file_round_trip(tmp_path: Path) -> None:
    mine = IssuerKeys(
        "my test issuer", bytes.fromhex("0102030405060708"), True,
        *(KeyEntry(bytes([i]) * 16, index=i, version=2, algorithm=Algorithm.SM4) for i in range(1, 7)),
    )
    path = _write(tmp_path, mine.to_json())
    assert load_issuer_keys(path) == mine
    assert load_issuer_keys(str(path)) == mine
    text = json.loads(path.read_text())
    assert text["format"] == "yikatong-issuer-keys" and text["version"] == 1
    assert text["keys"]["mtk"] == {"key": "03" * 16, "index": 3, "version": 2, "algorithm": "sm4"}


def _set(path: str, value: Any) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            obj = obj[p]
        obj[last] = value
    return mutate


def _drop(path: str) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            obj = obj[p]
        del obj[last]
    return mutate


BROKEN = [
    (_drop("format"), "format must be 'yikatong-issuer-keys'"),
    (_set("version", 9), "unsupported version 9"),
    (_drop("keys"), "keys: missing"),
    (_set("keys", []), "keys: missing"),
    (_drop("keys.mpk"), r"keys\.mpk: missing"),
    (_set("keys.mpk", "00" * 16), r"keys\.mpk: expected an object"),
    (_drop("keys.mlk.key"), r"keys\.mlk\.key: missing"),
    (_set("keys.mlk.key", 1234), r"keys\.mlk\.key: expected hex text"),
    (_set("keys.mlk.key", "Z1" + "00" * 15), r"keys\.mlk\.key: not hex"),
    (_set("keys.mlk.key", "00" * 8), r"keys\.mlk\.key: must be 16 bytes \(32 hex digits\), got 8"),
    (_set("keys.mtk.algorithm", "aes"), r"keys\.mtk\.algorithm: unknown algorithm"),
    (_set("keys.mtk.index", 300), r"keys\.mtk\.index: must be an integer 0\.\.255"),
    (_set("keys.mtk.version", "1"), r"keys\.mtk\.version: must be an integer"),
    (_set("keys.mtk.version", True), r"keys\.mtk\.version: must be an integer"),
    (_set("issuer_id", "0102"), r"issuer_id: must be 8 bytes \(16 hex digits\), got 2"),
    (_set("issuer_id", 99990000), "issuer_id: expected hex text"),
    (_set("issuer_id", "XX" * 8), "issuer_id: not hex"),
    (_drop("issuer_id"), "issuer_id: missing"),
    (_set("name", 5), "name: expected text"),
    (_set("test_only", "yes"), "test_only: expected true or false"),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN)
def test_broken_key_files(tmp_path: Path, mutate: Any, message: str) -> None:
    obj = test_issuer().to_json()
    mutate(obj)
    path = _write(tmp_path, obj)
    with pytest.raises(ConfigError, match=message) as info:
        load_issuer_keys(path)
    text = str(info.value)
    assert text.startswith(str(path))  # names the file
    for name in MASTER_NAMES:  # and never a key
        key = getattr(test_issuer(), name).key
        assert key.hex().upper() not in text and key.hex() not in text and key[:4].hex().upper() not in text


def test_wrong_length_key_is_not_echoed(tmp_path: Path) -> None:
    obj = test_issuer().to_json()
    obj["keys"]["mpk"]["key"] = "A5C3E1F0B2D49687A5C3E1F0B2D496"
    with pytest.raises(ConfigError) as info:
        load_issuer_keys(_write(tmp_path, obj))
    assert "A5C3" not in str(info.value).upper() and "got 15" in str(info.value)


def test_unreadable_key_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match=f"{missing}: no such key file"):
        load_issuer_keys(missing)
    with pytest.raises(ConfigError, match="not JSON"):
        load_issuer_keys(_write(tmp_path, "{"))
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_issuer_keys(_write(tmp_path, "[1, 2]"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_issuer_keys(tmp_path)  # a directory
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ConfigError, match="cannot read"):
        load_issuer_keys(bad)


def test_key_entry_checks() -> None:
    with pytest.raises(FormatError, match="16 bytes"):
        KeyEntry(bytes(8))
    with pytest.raises(FormatError, match="index must be a byte"):
        KeyEntry(bytes(16), index=256)


def test_keys_never_shown() -> None:
    issuer = test_issuer()
    keys = derive_card_keys(issuer, SERIAL, CARD_ID)
    text = repr(issuer) + str(issuer) + repr(keys) + str(keys) + repr(keys.dpk) + str(keys.dpk) + f"{keys.dtk}"
    assert "key=<16 bytes masked>" in repr(keys.dpk)
    for entry in (*(getattr(issuer, n) for n in MASTER_NAMES), keys.dlk, keys.dpk, keys.dtk, keys.damk, keys.cak, keys.eak):
        assert entry.key.hex() not in text.lower()
        assert entry.key[:4].hex() not in text.lower()
