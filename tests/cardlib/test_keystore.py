"""The key store (cardlib/keystore.py, docs/keys.md): issuers chosen by issuer id and key version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardlib.errors import ConfigError
from cardlib.keys import test_issuer
from cardlib.keystore import KeyStore, builtin_store


def test_the_builtin_store_holds_two_test_only_issuers_with_their_own_keys() -> None:
    store = builtin_store()
    ids = [i.issuer_id.hex().upper() for i in store.issuers]
    assert ids == ["99990000FFFFFFFF", "99990002FFFFFFFF"]
    first, second = store.issuers
    assert all(i.test_only and "TEST ONLY" in i.name for i in store.issuers)
    assert first == test_issuer() and first.mtk.key != second.mtk.key and first.mpk.key != second.mpk.key
    assert store.get(bytes.fromhex("99990002FFFFFFFF"), 1) == second


def test_an_unknown_issuer_or_version_is_a_clear_error() -> None:
    store = builtin_store()
    assert store.find(bytes.fromhex("99990002FFFFFFFF"), 2) is None
    with pytest.raises(ConfigError, match="no keys for issuer 1122334455667788 version 1"):
        store.get(bytes.fromhex("1122334455667788"), 1)


def test_a_store_reads_files_and_folders_and_refuses_two_key_sets_for_one_version(tmp_path: Path) -> None:
    obj = test_issuer().to_json()
    (tmp_path / "a.json").write_text(json.dumps(obj))
    assert KeyStore.load([tmp_path]).issuers == [test_issuer()]
    other = json.loads(json.dumps(obj))
    other["keys"]["mtk"]["key"] = "00" * 16
    (tmp_path / "b.json").write_text(json.dumps(other))
    with pytest.raises(ConfigError, match="two key sets for issuer 99990000FFFFFFFF version 1"):
        KeyStore.load([tmp_path])
    newer = json.loads(json.dumps(other))
    for entry in newer["keys"].values():
        entry["version"] = 2
    (tmp_path / "b.json").write_text(json.dumps(newer))
    store = KeyStore.load([tmp_path / "a.json", tmp_path / "b.json"])
    assert store.get(test_issuer().issuer_id, 2).mtk.key == bytes(16)
    with pytest.raises(ConfigError, match="no key files"):
        KeyStore.load([tmp_path / "empty"]) if (tmp_path / "empty").mkdir() is None else None
