"""The social security card: ATR, its tree, PIN with tries and unblock,
internal and external authentication with keys derived here from the issuer's
masters, protected writes, T=0 style answers, state to JSON, random APDU
streams."""

from __future__ import annotations

import copy
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.atr import parse_atr
from cardlib.crypto import Algorithm, diversify, encrypt_block
from cardlib.iso import get_challenge, read_binary, read_record_by_id, select_aid, update_record
from cardlib.keys import default_issuer
from cardlib.pboc import purse as P
from cardlib.ssse import commands as C
from cardlib.ssse.files import RECORD_NUMBERS, SSSE_AID, record
from simulators.image import card_from_json, card_to_json
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import DEFAULT_ATR, SocialSecurityCard

SELECT_SSSE = C.select_ssse(fci=False)


def tx(card: SocialSecurityCard, cmd: CommandAPDU | str) -> ResponseAPDU:
    raw = cmd.encode() if isinstance(cmd, CommandAPDU) else bytes.fromhex(cmd)
    return ResponseAPDU.decode(card.process(raw))


def ssse_keys(card: SocialSecurityCard, algorithm: Algorithm = Algorithm.TDES) -> tuple[bytes, bytes]:
    """CAK and EAK from the test issuer's masters and EF05's identifier (reference §8), read off the card."""
    tx(card, SELECT_SSSE).check()
    card_id = tx(card, read_record_by_id(0x01, sfi=5)).check().data[2:]
    issuer = default_issuer()
    return (diversify(issuer.ssse_iak.key, card_id[8:], algorithm),
            diversify(issuer.ssse_eak.key, card_id[8:], algorithm))


def test_contactless_atr_and_reset() -> None:
    card = issue_card(seed=1)
    assert card.atr == DEFAULT_ATR and card.atr[:4] == bytes.fromhex("3B888001")
    assert parse_atr(card.atr).historical_bytes == b"YKT-SSC3"
    tx(card, SELECT_SSSE).check()
    tx(card, C.verify_pin("123456")).check()
    assert card.reset() == DEFAULT_ATR
    assert card.fs.current_df is card.fs.mf and not card.fs.security.pin_verified
    custom = SocialSecurityCard(card.keys, card.purse.state, card.ssse.state, card.rng, atr=bytes.fromhex("3B00"))
    assert custom.atr == custom.reset() == bytes.fromhex("3B00")


def test_tree_aids_sfis_and_purse_file_sizes() -> None:
    card = issue_card(seed=2)
    fci = tx(card, select_aid(SSSE_AID)).check().data
    assert fci == bytes.fromhex("6F1384" "0F") + SSSE_AID + bytes.fromhex("A500")
    assert tx(card, "00A40000021001").ok  # the purse DF by FID from the SSSE DF (a sibling)
    sizes = {sfi: len(tx(card, read_binary(0, 256, sfi=sfi)).check().data) for sfi in (0x15, 0x16, 0x17)}
    assert sizes == {0x15: 30, 0x16: 55, 0x17: 60}
    purse = card.fs.current_df
    shapes = {sfi: (ef.structure, ef.record_size, ef.max_records)  # type: ignore[union-attr]
              for sfi in (0x18, 0x1A, 0x1E) for ef in [purse.ef_by_sfi(sfi)]}
    assert shapes == {0x18: ("cyclic", 23, 10), 0x1A: ("linear_variable", 128, 18), 0x1E: ("cyclic", 48, 30)}
    purse_fci = tx(card, select_aid(P.PURSE_AID)).check().data  # the purse's own FCI carries 0x15
    assert bytes.fromhex("9F0C1E") + bytes(tx(card, read_binary(0, 30, sfi=0x15)).data) in purse_fci


def test_pin_tries_block_change_and_unblock() -> None:
    card = issue_card(CardProfile(pin="246810"), seed=3)
    changes: list[int] = []
    card.listeners.append(lambda: changes.append(card.ssse.state.pin_tries))
    tx(card, SELECT_SSSE).check()
    assert tx(card, C.pin_query()).sw == 0x63C3
    assert [tx(card, C.verify_pin("000000")).sw for _ in range(2)] == [0x63C2, 0x63C1]
    assert tx(card, C.verify_pin("246810")).ok and card.fs.security.pin_verified
    assert tx(card, C.pin_query()).sw == 0x63C3  # a right PIN restores the tries
    assert [tx(card, C.verify_pin("111111")).sw for _ in range(4)] == [0x63C2, 0x63C1, 0x6983, 0x6983]
    assert not card.fs.security.pin_verified
    assert tx(card, C.verify_pin("246810")).sw == 0x6983  # blocked: even the right PIN
    assert tx(card, C.change_pin("246810", "112233")).sw == 0x6983
    assert tx(card, C.pin_query()).sw == 0x6983
    puk = card.ssse.state.puk
    wrong_puk = "000000" if puk != "000000" else "111111"
    assert tx(card, C.unblock_pin(wrong_puk, "135790")).sw == 0x63C9
    assert tx(card, C.unblock_pin(puk, "135790")).ok
    assert tx(card, C.verify_pin("246810")).sw == 0x63C2  # the old PIN is gone
    assert tx(card, C.change_pin("135790", "112233")).ok
    assert tx(card, C.verify_pin("112233")).ok
    assert tx(card, "0020000002" + "1234").sw == 0x6700
    assert tx(card, "0020000103" + "112233").sw == 0x6A86
    # every change of the counters is reported, the right PIN's try spent first and given back after
    assert changes[:4] == [2, 1, 0, 3]


def test_puk_blocks_after_ten_wrong_tries() -> None:
    card = issue_card(seed=4)
    tx(card, SELECT_SSSE).check()
    wrong = "000000" if card.ssse.state.puk != "000000" else "111111"
    answers = [tx(card, C.unblock_pin(wrong, "123123")).sw for _ in range(11)]
    assert answers[:9] == [0x63C0 | n for n in range(9, 0, -1)] and answers[9:] == [0x6983, 0x6983]
    assert tx(card, C.unblock_pin(card.ssse.state.puk, "123123")).sw == 0x6983


def test_internal_authentication_3des_and_sm4() -> None:
    for algorithm, size in ((Algorithm.TDES, 8), (Algorithm.SM4, 16)):
        card = issue_card(CardProfile(algorithm="3des" if size == 8 else "sm4"), seed=5)
        cak, _ = ssse_keys(card, algorithm)
        challenge = bytes(range(size))
        answer = tx(card, C.internal_authenticate(challenge)).check().data
        assert answer == encrypt_block(cak, challenge, algorithm)
        assert tx(card, C.internal_authenticate(bytes(24 - size))).sw == 0x6700


def test_external_authentication_opens_protected_writes_until_reselection() -> None:
    card = issue_card(seed=6)
    _, eak = ssse_keys(card)
    new_name = record(0x09, "沈明".encode("gbk").ljust(30, b"\x00"))
    write = update_record(2, new_name, sfi=6)
    assert tx(card, write).sw == 0x6982
    assert tx(card, C.external_authenticate(bytes(8))).sw == 0x6985  # no challenge asked for
    rnd = tx(card, get_challenge(8)).check().data
    assert tx(card, C.external_authenticate(encrypt_block(eak, rnd))).ok
    assert tx(card, write).ok
    assert card.holder_records().name == "沈明"
    tx(card, SELECT_SSSE).check()
    assert tx(card, write).sw == 0x6982  # closed again by reselection
    rnd = tx(card, get_challenge(8)).check().data
    tx(card, C.external_authenticate(encrypt_block(eak, rnd))).check()
    card.reset()
    tx(card, SELECT_SSSE).check()
    assert tx(card, write).sw == 0x6982  # and by reset


def test_external_authentication_tries_and_block() -> None:
    card = issue_card(seed=7)
    _, eak = ssse_keys(card)
    for expected in (0x6300, 0x6300, 0x6300, 0x6300, 0x6983):
        tx(card, get_challenge(8)).check()
        assert tx(card, C.external_authenticate(bytes(8))).sw == expected
    rnd = tx(card, get_challenge(8)).check().data
    assert tx(card, C.external_authenticate(encrypt_block(eak, rnd))).sw == 0x6983
    assert not card.fs.security.external_auth


def test_a_challenge_serves_one_try() -> None:
    card = issue_card(seed=8)
    _, eak = ssse_keys(card)
    rnd = tx(card, get_challenge(8)).check().data
    assert tx(card, C.external_authenticate(bytes(8))).sw == 0x6300
    assert tx(card, C.external_authenticate(encrypt_block(eak, rnd))).sw == 0x6985


def test_t0_style_answers_case_4_with_61xx() -> None:
    card = issue_card(seed=9)
    card.t0_style = True
    first = card.process(select_aid(SSSE_AID).encode())
    assert first == bytes.fromhex("6115")
    assert card.process(bytes.fromhex("00C0000010")) == bytes.fromhex("6F1384") + b"\x0f" + SSSE_AID[:12] + \
        bytes.fromhex("6105")
    assert card.process(bytes.fromhex("00C0000005")) == SSSE_AID[12:] + bytes.fromhex("A5009000")
    assert card.process(bytes.fromhex("00C0000005")) == bytes.fromhex("6985")  # nothing left
    assert card.process(C.verify_pin("123456").encode()) == bytes.fromhex("9000")


def test_state_to_json_and_back_behaves_the_same() -> None:
    card = issue_card(CardProfile(name="沈明", birth_date=date(1965, 5, 23), algorithm="sm4"), seed=10)
    tx(card, SELECT_SSSE).check()
    tx(card, C.verify_pin("000000"))
    twin = card_from_json(copy.deepcopy(card_to_json(card)))
    assert isinstance(twin, SocialSecurityCard)
    assert card_to_json(twin) == card_to_json(card)
    script = [SELECT_SSSE, get_challenge(8), C.pin_query(), C.internal_authenticate(bytes(16)),
              read_record_by_id(0x09, sfi=6), select_aid(P.PURSE_AID), P.GetBalance().to_apdu(), get_challenge(4)]
    assert [tx(twin, c) for c in script] == [tx(card, c) for c in script]
    assert twin.holder_records() == card.holder_records()
    assert twin.holder_records().name == "沈明" and twin.ssse.state.pin_tries == 2


APDU = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda cla, ins, p1, p2, data, le: CommandAPDU(cla, ins, p1, p2, data, le).encode(),
        st.sampled_from([0x00, 0x04, 0x80, 0x84, 0xFF, 0x01]),
        st.sampled_from([0xA4, 0xB0, 0xB2, 0xD6, 0xDC, 0xE2, 0x84, 0x20, 0x24, 0x2C, 0x82, 0x88,
                         0x50, 0x52, 0x54, 0x5C, 0x5A, 0xDC, 0x1E, 0x18, 0xC0, 0xCA]),
        st.integers(0, 255), st.integers(0, 255), st.binary(max_size=24),
        st.one_of(st.none(), st.integers(1, 256)),
    ),
    st.sampled_from([select_aid(P.PURSE_AID).encode(), SELECT_SSSE.encode(), get_challenge(8).encode()]),
)


@settings(max_examples=150)
@given(st.lists(APDU, max_size=30), st.integers(0, 3))
def test_random_apdu_streams_never_crash_nor_move_money(stream: list[bytes], seed: int) -> None:
    card = issue_card(seed=seed)
    balance = card.balance
    for raw in stream:
        answer = card.process(raw)
        assert len(answer) >= 2
        ResponseAPDU.decode(answer)
        assert answer[-2:] != b"\x6f\x00", raw.hex()  # an unexpected exception inside the card
    assert card.balance == balance
    select = ResponseAPDU.decode(card.process(select_aid(P.PURSE_AID).encode()))
    assert select.sw in (0x9000, 0x6A81, 0x9303)


def test_ef05_and_ef06_answer_every_addressing_form() -> None:
    """By FID then record number (public readers), by SFI and number, by identifier: the same record."""
    card = issue_card(CardProfile(birth_date=date(1958, 3, 2)), seed=31)
    for tag, (fid, number) in RECORD_NUMBERS.items():
        tx(card, SELECT_SSSE).check()
        by_id = tx(card, C.read_ssse_record(tag, fid & 0xFF)).check().data
        by_sfi = tx(card, C.read_by_number(tag, "sfi")).check().data
        assert tx(card, C.select_ef(fid)).ok
        by_fid = tx(card, C.read_by_number(tag)).check().data
        assert by_id == by_sfi == by_fid and by_fid[0] == tag and number >= 1
    tx(card, SELECT_SSSE).check()
    assert tx(card, C.select_ef(0xEF06)).ok
    assert tx(card, C.read_by_number(0x0D)).data == bytes.fromhex("0D0419580302")
    # a plain T-Union card has no SSSE application: its SELECT answers 6A82
    plain = issue_card(CardProfile(kind="tunion"), seed=32)
    assert tx(plain, SELECT_SSSE).sw == 0x6A82 and tx(plain, P.select_purse()).ok
