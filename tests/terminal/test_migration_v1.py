"""Journals and card images written before the field conventions (card image version
1, journal schema 4) work after them.

The files in tests/terminal/fixtures/ were made by yikatong before this change (main
at d57e1ad): two cards each torn after DEBIT at terminal 000000000001 — a purchase of
150 fen and a composite purchase of 230 fen, both paid by the card and pending in
``v1-journal.db`` — and a card inside the metro, entered at S01 at 08:00 through the
old gate (its 2701 record in the old layout, without CRC).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.keys import default_issuer, verify_tac
from cardlib.pboc import capp
from cardlib.readers.pyhost import HostedReader
from simulators.image import VERSION, load_card, save_image
from simulators.psam import make_psam
from simulators.ssc import SocialSecurityCard
from terminal.config import parse_config
from terminal.decision import Reason
from terminal.journal import SCHEMA_VERSION, Journal
from terminal.psam import PsamClient
from terminal.recovery import recover_card
from terminal.roles import make_app
from terminal.wallet import Wallet

FIXTURES = Path(__file__).parent / "fixtures"


def _copy(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        shutil.copy(FIXTURES / name, tmp_path / name)
        out.append(tmp_path / name)
    return out


def test_a_version_1_image_migrates(tmp_path: Path) -> None:
    (path,) = _copy(tmp_path, "v1-torn-purchase.json")
    old = json.loads(path.read_text(encoding="utf-8"))
    assert old["version"] == 1 and old["purse"]["proofs"][0]["seq"] == 0
    card = load_card(path, persist=False)
    assert isinstance(card, SocialSecurityCard)
    proof = card.purse.state.last_proof
    newest = old["purse"]["proofs"][0]
    assert proof == {"type": 6, "seq": 1, "mac": newest["mac"], "tac": newest["tac"]}  # the counter after it
    records = [capp.CappRecord.decode(r) for r in card.fs.mf.children[1].ef_by_sfi(0x1A).records]  # type: ignore[union-attr]
    assert sorted(r.record_id for r in records) == [capp.METRO_RECORD, capp.BUS_RECORD]  # created, with headers
    assert all(r.crc_ok for r in records)
    save_image(card, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text(encoding="utf-8"))["version"] == VERSION == 3


def test_pending_records_of_an_old_journal_recover_on_migrated_cards(tmp_path: Path) -> None:
    journal_path, purchase_path, composite_path = _copy(
        tmp_path, "v1-journal.db", "v1-torn-purchase.json", "v1-torn-composite.json")
    clock = Clock.fixed(datetime(2026, 11, 28, 8, 15, 30, tzinfo=BEIJING))
    journal = Journal(journal_path, clock)
    assert journal._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert [(r.kind, r.state, r.card_seq) for r in journal.records()] == [("purchase", "pending", 0),
                                                                          ("composite", "pending", 0)]
    sam = HostedReader([make_psam()])
    sam.connect()
    psam = PsamClient(Channel(sam), test=True)
    for path, amount in ((purchase_path, 150), (composite_path, 230)):
        card = load_card(path)
        reader = HostedReader([card])  # type: ignore[list-item]
        reader.connect()
        (outcome,) = recover_card(Wallet(Channel(reader), psam, journal, clock))
        record = outcome.record
        assert outcome.outcome == "recovered" and outcome.within_window
        assert verify_tac(default_issuer(), record.app_serial, record.tac_fields(), record.tac)
        assert isinstance(card, SocialSecurityCard) and card.balance == 2000 - amount == record.balance_after
    assert journal.check_integrity() == []
    journal.close()


@pytest.mark.parametrize("upgraded_first", [False, True])
def test_a_rider_inside_the_metro_is_not_charged_the_no_entry_fare(tmp_path: Path, upgraded_first: bool) -> None:
    (path,) = _copy(tmp_path, "v1-inside-metro.json")
    if upgraded_first:  # the image was saved once by the new version before the exit
        save_image(load_card(path, persist=False), path)
    clock = Clock.fixed(datetime(2026, 11, 28, 8, 40, tzinfo=BEIJING))
    sam = HostedReader([make_psam(terminal_id=bytes.fromhex("0000000000A5"))])
    sam.connect()
    cfg = parse_config({"terminal": {"role": "metro_gate", "station": "S05", "name": "metro-S05"},
                        "fares": {"bands": [[6, 300], [12, 400], [22, 500]], "max_fare": 800,
                                  "stations": {"S01": 0, "S05": 8.5, "S09": 30}}})
    journal = Journal(tmp_path / "j.db", clock)
    app = make_app(cfg, PsamClient(Channel(sam), test=True), journal, clock)
    card = load_card(path)
    reader = HostedReader([card])  # type: ignore[list-item]
    decision = app.tap(reader)
    assert decision.open and decision.reason == Reason.OK, decision.detail
    assert decision.amount == 400  # 8.5 km, not the no-entry fare of 800
    assert isinstance(card, SocialSecurityCard) and card.balance == 1600
    journal.close()
