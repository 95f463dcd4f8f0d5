"""`ykt card history`: the 0x18 log and the 0x1E transit records decoded, types named;
the simulated card keeps 30 transit records, cyclic (reference §1)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from cardlib.channel import Channel
from cardlib.clock import BEIJING, Clock
from cardlib.pboc import capp
from cardlib.pboc.files import TRIP_ENTRY, TRIP_EXIT, TripRecord
from cardlib.readers.pyhost import HostedReader
from cli.main import cli
from simulators.host import SimulatedLoadHost
from simulators.image import save_image
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.wallet import Wallet


def test_history_names_the_types_and_the_card_keeps_30_transit_records(tmp_path: Path) -> None:
    clock = Clock.fixed(datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING))
    card = issue_card(CardProfile(balance=50000), seed=61)
    sam = HostedReader([make_psam()])
    sam.connect()
    reader = HostedReader([card])
    reader.connect()
    wallet = Wallet(Channel(reader), PsamClient(Channel(sam), test=True), Journal(tmp_path / "j.db", clock), clock)
    wallet.load(1000, SimulatedLoadHost())
    record = capp.CappRecord.blank(capp.METRO_RECORD).encode()
    for n in range(32):
        clock.advance(60)
        kind = TRIP_ENTRY if n % 2 == 0 else TRIP_EXIT
        trip = TripRecord(kind, bytes(8), 0x01, b"S01\x00", 0, 0, clock.now())
        wallet.composite_purchase(0 if kind == TRIP_ENTRY else 300, record, capp.METRO_RECORD, trip=trip)
    wallet.purchase(200)
    trips = wallet.trips()
    assert len(trips) == 30 and trips[0].record_type == TRIP_EXIT and trips[0].amount == 300
    assert trips[0].balance == card.balance + 200  # the balance after that exit, filled in by the wallet
    image = tmp_path / "card.json"
    save_image(card, image)
    result = CliRunner().invoke(cli, ["card", "history", "--reader", f"sim:{image}", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [t["type_name"] for t in out["transactions"][:3]] == ["purchase", "composite", "composite"]
    assert len(out["trips"]) == 30 and {t["type_name"] for t in out["trips"]} == {"entry", "exit"}
    assert {(t["industry"], t["industry_name"]) for t in out["trips"]} == {("01", "metro")}  # codes and names
    assert out["transactions"][0]["type"] == "06" and out["transactions"][0]["amount"] == 200  # fen
    text = CliRunner().invoke(cli, ["card", "history", "--reader", f"sim:{image}"]).output
    assert "purchase" in text and "composite" in text and "trip  exit" in text and "trip  entry" in text
    lines = text.splitlines()
    assert "purchase (06)" in lines[0] and "200 fen (¥2.00)" in lines[0]  # names, money with its unit
    exit_line = next(line for line in lines if "trip  exit" in line)
    assert "metro (01)" in exit_line and "300 fen (¥3.00)" in exit_line and "balance " in exit_line
    assert re.search(r"balance \d+ fen \(¥\d+\.\d\d\)", exit_line)
