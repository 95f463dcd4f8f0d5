"""The ISO 7816-4 command descriptions: what the terminal builds is what the simulated file
system and the trace read back, byte for byte (cardlib/iso.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib import iso
from cardlib import sw as SW
from cardlib.apdu import CommandAPDU
from cardlib.errors import FormatError

# Bytes as docs/protocol.md gives them for the purse and the SSSE card (the commands public
# T-Union and social security readers send; ISO 7816-4 §11 for the bit layout).
VECTORS = [
    (iso.Select(iso.BY_NAME, bytes.fromhex("A000000632010105"), iso.ANSWER_FCI, 256), "00A4040008A00000063201010500"),
    (iso.Select(iso.EF_BY_ID, bytes.fromhex("EF05"), iso.ANSWER_FCI), "00A4020002EF05"),
    (iso.Select(iso.BY_ID, bytes.fromhex("3F00"), iso.ANSWER_NONE), "00A4000C023F00"),
    (iso.Read(iso.BinaryRef(0, 0x15), 0x1E), "00B095001E"),
    (iso.Read(iso.BinaryRef(0, 0x17), 0x3C), "00B097003C"),
    (iso.Read(iso.RecordRef(3, 0x18), 0x17), "00B203C417"),
    (iso.Read(iso.RecordRef(1, 0x1E), 0x30), "00B201F430"),
    (iso.Read(iso.RecordRef(2, None), 256), "00B2020400"),  # by number in the current EF
    (iso.Read(iso.RecordRef(0x02, None, iso.FIRST_BY_ID), 3), "00B2020003"),  # SSSE tag 02 by identifier
    (iso.GetChallenge(4), "0084000004"),
    (iso.GetResponse(0x20), "00C0000020"),
    (iso.Update(b"\x01\x02", iso.BinaryRef(0x10, 0x15), 0x04), "04D69510020102"),
    (iso.Update(b"\xaa", iso.RecordRef(0, 0x1E, iso.FIRST_BY_ID), append=True), "00E200F001AA"),
]
DESCRIPTIONS = {iso.INS_SELECT: iso.Select, iso.INS_READ_BINARY: iso.Read, iso.INS_UPDATE_BINARY: iso.Update,
                iso.INS_READ_RECORD: iso.Read, iso.INS_UPDATE_RECORD: iso.Update, iso.INS_APPEND_RECORD: iso.Update,
                iso.INS_GET_CHALLENGE: iso.GetChallenge, iso.INS_GET_RESPONSE: iso.GetResponse}


def back(raw: bytes) -> object:
    cmd = CommandAPDU.decode(raw)
    return DESCRIPTIONS[cmd.ins].from_apdu(cmd)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "wire"), VECTORS, ids=[w for _, w in VECTORS])
def test_builds_and_parses_the_same_bytes(value: object, wire: str) -> None:
    assert value.to_apdu().encode().hex().upper() == wire  # type: ignore[attr-defined]
    assert back(bytes.fromhex(wire)) == value


def test_the_short_forms_are_the_descriptions() -> None:
    assert iso.select_aid(bytes.fromhex("A000000632010105")).encode().hex().upper() == "00A4040008A00000063201010500"
    assert iso.read_binary(0, 0x1E, sfi=0x15).encode() == bytes.fromhex("00B095001E")
    assert iso.read_record(3, 0x18, 0x17).encode() == bytes.fromhex("00B203C417")
    assert iso.read_record_by_id(0x02, None, 3).encode() == bytes.fromhex("00B2020003")
    assert iso.select_fid(0xEF05, iso.EF_BY_ID).encode() == bytes.fromhex("00A4020C02EF05")
    assert iso.select_path(bytes.fromhex("3F001001")).encode() == bytes.fromhex("00A4080C043F001001")
    assert iso.get_response().encode() == bytes.fromhex("00C0000000")  # Le 00: 256 bytes


sfis = st.one_of(st.none(), st.integers(1, 30))
les = st.one_of(st.none(), st.integers(1, 256))
data = st.binary(min_size=1, max_size=255)


@st.composite
def selects(draw: st.DrawFn) -> iso.Select:
    by = draw(st.sampled_from(iso.SELECT_BY))
    if by in (iso.CHILD_DF, iso.EF_BY_ID):
        name = draw(st.binary(min_size=2, max_size=2))
    elif by == iso.BY_ID:
        name = draw(st.sampled_from([b"", b"\x3f\x00", b"\x10\x01"]))
    elif by == iso.BY_NAME:
        name = draw(st.binary(min_size=1, max_size=16))
    elif by == iso.PARENT_DF:
        name = b""
    else:
        name = draw(st.binary(min_size=1, max_size=8).map(lambda b: b * 2))
    return iso.Select(by, name, draw(st.integers(0, 0xFF)), draw(les))


commands = st.one_of(
    selects(),
    st.builds(iso.Read, st.one_of(st.builds(iso.BinaryRef, st.integers(0, 0x7FFF)),
                                        st.builds(iso.BinaryRef, st.integers(0, 0xFF), st.integers(1, 30))), les),
    st.builds(iso.Update, data, st.builds(iso.BinaryRef, st.integers(0, 0xFF), sfis), st.sampled_from([0, 4])),
    st.builds(iso.Read, st.builds(iso.RecordRef, st.integers(0, 0xFF), sfis, st.integers(0, 7)), les),
    st.builds(iso.Update, data, st.builds(iso.RecordRef, st.integers(0, 0xFF), sfis, st.integers(0, 7)),
              st.sampled_from([0, 4]), st.booleans()),
    st.builds(iso.GetChallenge, st.sampled_from([4, 8, 16])),
    st.builds(iso.GetResponse, st.integers(1, 256), st.sampled_from([0x00, 0x04])),
)


@given(commands)
def test_every_command_round_trips_through_its_bytes(value: object) -> None:
    """Built, encoded, decoded and parsed: the same value (the terminal's bytes are the card's)."""
    assert back(value.to_apdu().encode()) == value  # type: ignore[attr-defined]


@given(st.integers(0, 0xFF), st.integers(0, 0xFF))
def test_an_sfi_is_read_where_it_is_written(p1: int, p2: int) -> None:
    """file_sfi (the trace, ykt explain) agrees with the descriptions (the file system)."""
    try:
        ref = iso.BinaryRef.from_p1p2(p1, p2)
    except iso.IsoCommandError:
        assert iso.file_sfi(iso.INS_READ_BINARY, p1, p2) is None
    else:
        assert iso.file_sfi(iso.INS_READ_BINARY, p1, p2) == ref.sfi
    assert iso.file_sfi(iso.INS_READ_RECORD, p1, p2) == iso.RecordRef.from_p1p2(p1, p2).sfi
    assert iso.file_sfi(iso.INS_SELECT, p1, p2) is None


@pytest.mark.parametrize(("wire", "sw"), [
    ("00A4000003112233", SW.SW_WRONG_LENGTH),  # a FID of 3 bytes
    ("00A40400", SW.SW_WRONG_LENGTH),  # a DF name of none
    ("00A408000112", SW.SW_WRONG_LENGTH),  # a path of an odd length
    ("00A4050000", SW.SW_INCORRECT_P1P2),  # P1 05 is not defined
    ("00B0E50000", SW.SW_INCORRECT_P1P2),  # SFI form with b7 b6 set
    ("0084000005", SW.SW_WRONG_LENGTH),  # a challenge of 5 bytes
    ("0084010008", SW.SW_INCORRECT_P1P2),
    ("00C0010000", SW.SW_INCORRECT_P1P2),
])
def test_what_cannot_be_read_is_the_cards_status_word(wire: str, sw: int) -> None:
    with pytest.raises(iso.IsoCommandError) as info:
        back(bytes.fromhex(wire))
    assert info.value.sw == sw and isinstance(info.value, FormatError)


def test_a_builder_refuses_what_the_bits_cannot_hold() -> None:
    with pytest.raises(FormatError, match="SFI"):
        iso.read_record(1, sfi=31)
    with pytest.raises(FormatError, match="offset"):
        iso.read_binary(0x100, sfi=0x15)
    with pytest.raises(FormatError, match="offset"):
        iso.update_binary(b"\x00", 0x8000)
