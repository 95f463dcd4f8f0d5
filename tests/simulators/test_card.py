"""The social security card: file system addressing, SSSE records, PIN, authentication,
images, the sim reader, the load host and fault injection."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cardlib.apdu import CommandAPDU
from cardlib.crypto import encrypt_block
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MacMismatchError,
    MultipleCardsError,
    ReaderTimeoutError,
)
from cardlib.iso import (
    get_challenge,
    read_binary,
    read_record,
    read_record_by_id,
    select_aid,
    select_fid,
    select_path,
)
from cardlib.keys import default_issuer, derive_card_keys
from cardlib.loadhost import LoadConfirmation, LoadRequest
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from cardlib.pboc.files import HolderData, PublicData
from cardlib.readers.registry import open_reader
from cardlib.ssse import commands as C
from cardlib.ssse.files import (
    SSSE_AID,
    T_BIRTH_DATE,
    T_CARD_ID,
    T_NAME,
    HolderRecords,
    IssuerRecords,
    parse_record,
)
from cardlib.tlv import parse_one
from simulators.faults import CORRUPT, DROP, FORCE_SW, TEAR_AFTER, TEAR_BEFORE, FaultyCard
from simulators.host import SimulatedLoadHost
from simulators.image import card_to_json, load_card, mask_image, save_image
from simulators.issuer import CardProfile, issue_card
from simulators.psam import make_psam
from tests.simulators.helpers import WHEN, purchase, tx

ELDER = CardProfile(name="吕庆军", birth_date=date(1958, 3, 2), card_type="elder", region="341800")


def test_select_every_way() -> None:
    card = issue_card(seed=1)
    assert tx(card, select_fid(0x3F00)).ok
    fci = parse_one(tx(card, select_aid(SSSE_AID)).check().data)
    assert fci.find(0x84) is not None and fci.find(0x84).value == SSSE_AID  # type: ignore[union-attr]
    assert tx(card, select_path(bytes.fromhex("3F001001"))).ok
    fcp = tx(card, CommandAPDU(0x00, 0xA4, 0x02, 0x04, bytes.fromhex("0015"))).check().data
    assert parse_one(fcp).find(0x80).value == bytes.fromhex("001E")  # type: ignore[union-attr]
    assert tx(card, CommandAPDU(0x00, 0xA4, 0x03, 0x0C)).ok  # parent
    assert tx(card, select_fid(0x1234)).sw == 0x6A82
    assert tx(card, select_aid(bytes.fromhex("A0000000031010"))).sw == 0x6A82
    assert tx(card, CommandAPDU(0x00, 0xA4, 0x07, 0x00, b"\x3f\x00")).sw == 0x6A86


def test_ssse_records_and_purse_files() -> None:
    card = issue_card(ELDER, seed=2)
    tx(card, select_aid(SSSE_AID)).check()
    values = {}
    for tag in range(1, 8):
        raw = tx(card, read_record_by_id(tag, sfi=5)).check().data
        values[tag] = parse_record(raw, tag)
    issuer = IssuerRecords.from_records(values)
    assert issuer.card_id[:3] == bytes.fromhex("341800") and issuer.card_id[3:8] == bytes.fromhex("D156000005")
    holder = HolderRecords.from_records({t: parse_record(tx(card, read_record_by_id(t, sfi=6)).check().data) for t in range(8, 14)})
    assert holder.name == "吕庆军" and holder.birth_date == date(1958, 3, 2)
    assert "吕**" in holder.masked() and holder.ssn not in holder.masked()
    assert tx(card, read_record(9, sfi=6)).sw == 0x6A83
    assert parse_record(tx(card, read_record_by_id(T_NAME, sfi=6)).data)[:6] == "吕庆军".encode("gbk")
    assert tx(card, read_record_by_id(T_CARD_ID, sfi=5)).data[1] == 16
    assert parse_record(tx(card, read_record_by_id(T_BIRTH_DATE, sfi=6)).data) == bytes.fromhex("19580302")
    tx(card, select_aid(P.PURSE_AID)).check()
    public = PublicData.decode(tx(card, read_binary(0, 30, sfi=0x15)).data)
    assert public.issuer_id == default_issuer().issuer_id and public.valid_until == date(2034, 12, 31)
    assert HolderData.decode(tx(card, read_binary(0, 55, sfi=0x16)).data).name == "吕庆军"
    assert tx(card, CommandAPDU(0x00, 0xD6, 0x95, 0x00, b"\x00")).sw == 0x6986  # never writable
    assert tx(card, read_record(1, sfi=0x15)).sw == 0x6981  # wrong structure


def test_pin_tries_block_and_unblock() -> None:
    card = issue_card(CardProfile(pin="246810"), seed=3)
    puk = card.ssse.state.puk
    tx(card, select_aid(SSSE_AID)).check()
    assert tx(card, C.verify_pin("000000")).sw == 0x63C2
    assert tx(card, C.verify_pin("000000")).sw == 0x63C1
    assert tx(card, C.verify_pin("246810")).ok  # resets the counter
    for expected in (0x63C2, 0x63C1, 0x6983, 0x6983):
        assert tx(card, C.verify_pin("111111")).sw == expected
    assert tx(card, C.verify_pin("246810")).sw == 0x6983  # blocked
    assert tx(card, C.unblock_pin("999999" if puk != "999999" else "000000", "135790")).sw == 0x63C9
    assert tx(card, C.unblock_pin(puk, "135790")).ok
    assert tx(card, C.change_pin("135790", "112233")).ok
    assert tx(card, C.verify_pin("112233")).ok


def test_internal_and_external_authentication() -> None:
    card = issue_card(seed=4)
    card_id = card.fs.mf.children[0].children[0].records[0][2:]  # type: ignore[union-attr]
    keys = derive_card_keys(default_issuer(), card.app_serial, card_id)
    tx(card, select_aid(SSSE_AID)).check()
    challenge = bytes(range(8))
    assert tx(card, C.internal_authenticate(challenge)).check().data == encrypt_block(keys.cak.key, challenge)
    rnd = tx(card, get_challenge(8)).check().data
    assert tx(card, C.external_authenticate(encrypt_block(keys.eak.key, rnd))).ok
    assert card.fs.security.external_auth
    rnd = tx(card, get_challenge(8)).check().data
    assert tx(card, C.external_authenticate(bytes(8))).sw == 0x6300
    assert tx(card, C.external_authenticate(bytes(8))).sw == 0x6985  # one try per challenge


def test_image_round_trip_and_masking(tmp_path: Path) -> None:
    card = issue_card(ELDER, seed=5)
    path = tmp_path / "card.json"
    save_image(card, path)
    loaded = load_card(path)
    assert card_to_json(loaded) == card_to_json(card)
    purchase(loaded, make_psam(), 300)
    again = load_card(path, persist=False)  # saved after every change (a snapshot: no second holder)
    assert again.balance == card.balance - 300  # type: ignore[union-attr]
    shown = json.dumps(mask_image(json.loads(path.read_text())))
    assert card.keys.dpk.key.hex().upper() not in shown and '"pin": "********"' in shown
    assert not list(tmp_path.glob(".card.json.*.tmp"))


@pytest.mark.parametrize("damage", [
    lambda o: o.pop("keys"), lambda o: o.update(kind="disk"), lambda o: o.update(format="x"),
    lambda o: o["purse"].update(balance="many"), lambda o: o["files"].append({"df": "9", "fid": 1}),
    lambda o: o["keys"]["dpk"].update(key="00"), lambda o: o.update(rng=[1]),
])
def test_broken_images_give_typed_errors(tmp_path: Path, damage: object) -> None:
    obj = card_to_json(issue_card(seed=6))
    damage(obj)  # type: ignore[operator]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(FormatError):
        load_card(path)
    path.write_text("{not json")
    with pytest.raises(FormatError, match="not JSON"):
        load_card(path)


def test_sim_reader_uris(tmp_path: Path) -> None:
    reader = open_reader("sim?seed=3")
    reader.connect()
    assert reader.transmit(select_aid(P.PURSE_AID).encode())[-2:] == b"\x90\x00"
    psam = open_reader("sim?kind=psam")
    psam.connect()
    assert psam.transmit(bytes.fromhex("00B0960006")) == bytes.fromhex("0000000000019000")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_image(issue_card(seed=1), a)
    save_image(issue_card(seed=2), b)
    with pytest.raises(MultipleCardsError):
        open_reader(f"sim:{a},{b}").connect()
    t0 = open_reader("sim?t0=1")
    t0.connect()
    assert t0.transmit(select_aid(P.PURSE_AID).encode())[0] == 0x61
    with pytest.raises(FormatError, match="unknown option"):
        open_reader("sim?colour=red")


def test_load_host_checks_mac1_and_ledger(tmp_path: Path) -> None:
    card = issue_card(seed=7)
    host = SimulatedLoadHost(ledger_path=str(tmp_path / "ledger.db"))
    tid = bytes.fromhex("000000000009")
    tx(card, select_aid(P.PURSE_AID)).check()
    init = P.InitializeForLoadResponse.decode(tx(card, P.InitializeForLoad(1, 1000, tid).to_apdu()).check().data)
    req = LoadRequest(card.app_serial, 1000, tid, 2, init.online_seq, init.balance, init.random,
                      init.key_version, 1, init.alg_id, init.mac1, WHEN)
    with pytest.raises(MacMismatchError):
        host.authorize_load(LoadRequest(**{**req.__dict__, "mac1": bytes(4)}))
    auth = host.authorize_load(req)
    tac = tx(card, P.CreditForLoad(auth.date, auth.time, auth.mac2).to_apdu()).check().data
    host.confirm_load(LoadConfirmation(card.app_serial, init.online_seq, "completed", tac))
    assert card.balance == 6000
    assert host.ledger()[0][3] == "completed"
    from cardlib.errors import RefusedError
    with pytest.raises(RefusedError):
        host.authorize_load(req)  # the same online seq never credits twice
    assert macs.TX_EP_LOAD == 2


def test_faults() -> None:
    card = FaultyCard(issue_card(seed=8))
    card.at(2, TEAR_BEFORE)
    card.process(select_aid(P.PURSE_AID).encode())
    with pytest.raises(CardRemovedError, match="before APDU 2"):
        card.process(P.GetBalance().to_apdu().encode())
    with pytest.raises(CardRemovedError):
        card.process(P.GetBalance().to_apdu().encode())
    card.reinsert()
    card.on_ins(0x5C, FORCE_SW(0x6F00))
    assert card.process(P.GetBalance().to_apdu().encode()) == b"\x6f\x00"
    card.on_ins(0x5C, CORRUPT, occurrence=2)
    assert card.process(P.GetBalance().to_apdu().encode()) != card.process(P.GetBalance().to_apdu().encode())
    card.at(card.count + 1, DROP)
    with pytest.raises(ReaderTimeoutError):
        card.process(P.GetBalance().to_apdu().encode())
    card.at(card.count + 1, TEAR_AFTER)
    with pytest.raises(CardRemovedError, match="after APDU"):
        card.process(P.GetBalance().to_apdu().encode())
    assert [k for _, k in card.log] == ["tear_before", "force_sw", "corrupt", "drop", "tear_after"]
