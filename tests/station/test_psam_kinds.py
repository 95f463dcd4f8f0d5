"""PSAMs of two kinds on the key store (the project's profile, docs/station.md): which PSAM and key
index serve which card, the interoperable key file, and the journal's terminal sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cardlib.clock import Clock
from cardlib.errors import ConfigError
from cardlib.keys import default_issuer
from cardlib.keystore import (
    TUNION_KEY_INDEX,
    InteropKeys,
    KeyRoute,
    PsamKind,
    builtin_interop,
    psam_keys,
    route_card,
)
from terminal.journal import Journal
from terminal.journal_check import check_journal
from tests.station.helpers import NOON, city_a, city_b

A, B = city_a().issuer_id, city_b().issuer_id
BOTH = (PsamKind.LOCAL, PsamKind.TUNION)


@pytest.mark.parametrize("issuer, interoperable, kinds, route", [
    (A, False, BOTH, KeyRoute(PsamKind.LOCAL, 1)),  # the local card: local keys, whatever its flag
    (A, True, BOTH, KeyRoute(PsamKind.LOCAL, 1)),
    (B, True, BOTH, KeyRoute(PsamKind.TUNION, TUNION_KEY_INDEX)),  # a visitor: the T-Union PSAM
    (B, False, BOTH, None),  # another city's card that is not interoperable: no PSAM serves it
    (B, True, (PsamKind.LOCAL,), None),  # a station without a T-Union PSAM refuses visitors
    (A, False, (PsamKind.TUNION,), None),  # ... and one without a local PSAM its own cards
])
def test_route_by_issuer_and_interoperability(issuer: bytes, interoperable: bool, kinds: Any,
                                              route: KeyRoute | None) -> None:
    assert route_card(issuer, interoperable, A, 1, kinds) == route


def test_a_tunion_psam_holds_the_interoperable_master_and_the_local_issuers_other_keys() -> None:
    local = default_issuer()
    tunion = psam_keys(PsamKind.TUNION, local)
    assert tunion.mpk == builtin_interop().mpk and tunion.mpk.index == TUNION_KEY_INDEX
    assert (tunion.mamk, tunion.mtk, tunion.issuer_id) == (local.mamk, local.mtk, local.issuer_id)
    assert psam_keys(PsamKind.LOCAL, local) is local
    assert builtin_interop().test_only


def test_a_visitors_key_is_the_interoperable_master_diversified_as_the_issuers_own() -> None:
    from cardlib.crypto import diversify_levels
    from cardlib.keys import purse_factors

    serial = bytes.fromhex("33010000000000001234")
    key = builtin_interop().card_purchase_key(B, serial)
    assert key.index == TUNION_KEY_INDEX
    assert key.key == diversify_levels(builtin_interop().mpk.key, purse_factors(B, serial), key.algorithm)
    assert key.key != builtin_interop().card_purchase_key(A, serial).key  # per issuer, per card


@pytest.mark.parametrize("change, message", [
    ({"format": "yikatong-issuer-keys"}, "format must be"), ({"version": 2}, "unsupported version"),
    ({"mpk": {"key": "00" * 16, "index": 0}}, "mpk.index must be 1..255"), ({"test_only": "yes"}, "test_only"),
])
def test_a_bad_interop_key_file_is_a_config_error(change: dict[str, Any], message: str) -> None:
    obj = json.loads((Path(__file__).resolve().parents[2] / "cardlib/data/test_tunion_interop.json").read_text())
    with pytest.raises(ConfigError, match=message):
        InteropKeys.from_json({**obj, **change})


def _record(journal: Journal, terminal: bytes, seq: int, card_seq: int) -> None:
    from cardlib.crypto import Algorithm

    r = journal.begin(kind="purchase", tx_type=6, app_serial=bytes(10), card_seq=card_seq, amount=200,
                      balance_before=1000, terminal_id=terminal, tx_time=NOON, algorithm=Algorithm.TDES,
                      key_version=1, key_index=1, test=True, terminal_seq=seq)
    journal.complete(r.id, tac=bytes(4), mac2=bytes(4), balance_after=800, mac2_verified=True)


def test_terminal_sequence_gaps_are_normal_and_repeats_are_errors(tmp_path: Path) -> None:
    """Two PSAMs in one journal: each one's sequence may skip (8070 counts before the journal writes),
    the same (terminal, sequence) twice is an error."""
    journal = Journal(tmp_path / "j.db", Clock.fixed(NOON))
    one, two = bytes.fromhex("000000000501"), bytes.fromhex("000000000502")
    _record(journal, one, 0, 0)
    _record(journal, one, 3, 1)  # a gap: INIT SAM answered, the tap went no further
    _record(journal, two, 0, 2)  # the other PSAM's own numbering
    assert not [e for e in check_journal(journal).errors if "sequence" in e]
    _record(journal, one, 3, 3)
    errors = [e for e in check_journal(journal).errors if "sequence" in e]
    assert errors == [f"records 2, 4: terminal {one.hex().upper()} sequence 3 used twice"]
    journal.close()
