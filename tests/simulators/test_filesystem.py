"""The ISO/IEC 7816-4 file system on a tree of its own: every addressing mode
byte for byte, every refusal with its status word and the card unchanged."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.errors import FormatError
from simulators.filesystem import (
    Access,
    AccessRule,
    DedicatedFile,
    FileSystem,
    RecordEF,
    TransparentEF,
)

APP1 = bytes.fromhex("A00000000101")
APP2 = bytes.fromhex("A00000000102")


class Stub:
    """An application bound to DF 1002: answers 80CA, may refuse selection, its own FCI."""

    def __init__(self) -> None:
        self.refusal: ResponseAPDU | None = None
        self.seen: list[int] = []

    def handle(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU | None:
        self.seen.append(cmd.ins)
        if cmd.cla == 0x80 and cmd.ins == 0xCA:
            return ResponseAPDU(b"\x42", 0x9000)
        return None

    def on_select(self, fs: FileSystem) -> ResponseAPDU | None:
        return self.refusal

    def fci(self, df: DedicatedFile) -> bytes | None:
        return bytes.fromhex("6F03840102")


def make_fs() -> tuple[FileSystem, Stub]:
    mf = DedicatedFile(0x3F00)
    mf.add(TransparentEF(0x2F00, 0x01, bytes.fromhex("0102030405")))
    df1 = DedicatedFile(0x1001, APP1)
    mf.add(df1)
    df1.add(TransparentEF(0x0005, 0x05, bytes(range(16)), AccessRule(Access.PIN, Access.PIN)))
    df1.add(RecordEF(0x0006, 0x06, "linear_fixed", 4, 3, [b"AAAA", b"BBBB", b"CCCC"]))
    df1.add(RecordEF(0x0007, 0x07, "cyclic", 2, 3, [b"\x01\x01"]))
    df1.add(RecordEF(0x0008, 0x08, "tlv", None, 4, [bytes.fromhex("0102AAAA"), bytes.fromhex("0201BB")]))
    df1.add(TransparentEF(0x0009, 0x09, bytes(4), AccessRule(Access.FREE, Access.NEVER)))
    df1.add(TransparentEF(0x000A, 0x0A, bytes(4), AccessRule(Access.FREE, Access.EXTERNAL_AUTH)))
    df1.add(TransparentEF(0x000B, 0x0B, bytes(4), AccessRule(Access.FREE, Access.LINE_MAC)))
    inner = DedicatedFile(0x2001, bytes.fromhex("A0000000010199"))
    df1.add(inner)
    inner.add(TransparentEF(0x0001, 0x01, b"in"))
    stub = Stub()
    mf.add(DedicatedFile(0x1002, APP2, stub))
    return FileSystem(mf, random.Random(7)), stub


def run(fs: FileSystem, apdu: str) -> str:
    return fs.process(CommandAPDU.from_hex(apdu)).hex().replace(" ", "").upper()


def snapshot(fs: FileSystem) -> object:
    return (fs.current_df, fs.current_ef, replace(fs.security), fs.files_to_json())


# --- SELECT -----------------------------------------------------------------------


def test_select_df_by_name_answers_the_default_fci() -> None:
    fs, _ = make_fs()
    assert run(fs, "00A4040006A00000000101") == "6F0A8406A00000000101A5009000"
    assert fs.current_df.fid == 0x1001 and fs.current_ef is None


def test_select_by_partial_name_first_and_next_occurrence() -> None:
    fs, _ = make_fs()
    assert run(fs, "00A4040C05A000000001") == "9000"  # first: DF 1001
    assert fs.current_df.fid == 0x1001
    assert run(fs, "00A4040E05A000000001") == "9000"  # next: DF 2001 (walk order)
    assert fs.current_df.fid == 0x2001
    assert run(fs, "00A4040E05A000000001") == "9000"
    assert fs.current_df.fid == 0x1002
    assert run(fs, "00A4040E05A000000001") == "6A82"  # no further occurrence


def test_select_fcp_of_a_df_and_of_efs() -> None:
    fs, _ = make_fs()
    assert run(fs, "00A40004021001") == "620F820138830210018406A000000001019000"
    assert run(fs, "00A40204020006") == "620E8205022100040383020006880130" + "9000"
    assert run(fs, "00A40204020007") == "620E8205062100020383020007880138" + "9000"
    assert run(fs, "00A40004023F00") == "620782013883023F00" + "9000"
    assert run(fs, "00A4000402" + "2F00") == "620E8002000582010183022F00880108" + "9000"
    assert fs.current_ef is not None and fs.current_ef.fid == 0x2F00


def test_select_by_fid_child_df_ef_parent_and_paths() -> None:
    fs, _ = make_fs()
    assert run(fs, "00A4010C021001") == "9000"
    assert fs.current_df.fid == 0x1001
    assert run(fs, "00A4010C020006") == "6A82"  # P1 01 wants a DF, 0006 is an EF
    assert run(fs, "00A4020C022001") == "6A82"  # P1 02 wants an EF, 2001 is a DF
    assert run(fs, "00A4020C020006") == "9000"
    assert fs.current_ef is not None and fs.current_ef.fid == 0x0006
    assert run(fs, "00A4000C021002") == "9000"  # a sibling DF by FID from inside 1001
    assert fs.current_df.fid == 0x1002
    assert run(fs, "00A4030C") == "9000"  # parent
    assert fs.current_df.fid == 0x3F00
    assert run(fs, "00A4080C06100120010001") == "9000"  # path from the MF
    assert fs.current_ef is not None and fs.current_ef.fid == 0x0001 and fs.current_df.fid == 0x2001
    assert run(fs, "00B00000") == "696E9000"
    assert run(fs, "00A4080C083F00100120010001") == "9000"  # the MF may lead the path
    assert run(fs, "00A4030C") == "9000"
    assert fs.current_df.fid == 0x1001
    assert run(fs, "00A4090C0420010001") == "9000"  # path from the current DF
    assert run(fs, "00A4090C0420010002") == "6A82"
    assert run(fs, "00A40000") == "6F0684023F00A5009000"  # no data: the MF


def test_application_fci_selection_refusal_and_proprietary_commands() -> None:
    fs, stub = make_fs()
    assert run(fs, "00A4040006A00000000102") == "6F03840102" + "9000"
    assert run(fs, "80CA000001") == "429000"
    stub.refusal = ResponseAPDU(b"", 0x6A81)
    assert run(fs, "00A4040006A00000000102") == "6A81"
    assert fs.current_df.fid == 0x1002  # stays current so an unblock can reach it
    assert run(fs, "00A4000C021001") == "9000"
    assert run(fs, "80CA000001") == "6D00"  # nobody handles it outside DF 1002


# --- binary -------------------------------------------------------------------------


def test_read_binary_by_sfi_offset_and_current_ef() -> None:
    fs, _ = make_fs()
    assert run(fs, "00B0810000") == "01020304059000"
    assert run(fs, "00B0810203") == "0304059000"
    assert run(fs, "00B0810208") == "0304056282"  # end of file before Le bytes
    assert run(fs, "00B0000102") == "02039000"  # current EF is now 2F00
    assert run(fs, "00B0000600") == "6B00"  # offset past the end
    assert run(fs, "00B0A10000") == "6A86"  # P1 bits 7-6 must be 0 with an SFI
    assert run(fs, "00B0850000") == "6A82"  # no SFI 5 in the MF


def test_update_binary_and_access_conditions() -> None:
    fs, _ = make_fs()
    run(fs, "00A4000C021001")
    assert run(fs, "00B0850004") == "6982"  # PIN not verified
    fs.security.pin_verified = True
    assert run(fs, "00B0850004") == "000102039000"
    assert run(fs, "00D6850E03AABBCC") == "6A84"  # would run past the end
    assert run(fs, "00D6850E02AABB") == "9000"
    assert run(fs, "00B0850E02") == "AABB9000"
    assert run(fs, "00D6890001FF") == "6986"  # never writable
    assert run(fs, "00D68A0001FF") == "6982"  # needs external authentication
    fs.security.external_auth = True
    assert run(fs, "00D68A0001FF") == "9000"
    assert run(fs, "00D68B0001FF") == "6987"  # line MAC: the file system alone never accepts it
    run(fs, "00A4000C021001")  # reselection clears the security state
    assert not fs.security.pin_verified and not fs.security.external_auth
    assert run(fs, "00D68A0001FF") == "6982"


# --- records --------------------------------------------------------------------


def test_read_record_by_number_and_by_identifier() -> None:
    fs, _ = make_fs()
    run(fs, "00A4000C021001")
    assert run(fs, "00B2023400") == "424242429000"  # record 2 of SFI 6
    assert run(fs, "00B2023404") == "424242429000"
    assert run(fs, "00B2023402") == "6C04"  # wrong Le: the card says the right one
    assert run(fs, "00B2043400") == "6A83"
    assert run(fs, "00B2003400") == "6A83"  # record 0 is not a record here
    assert run(fs, "00B2024400") == "0201BB9000"  # SFI 8, record 2
    assert run(fs, "00B2024000") == "0201BB9000"  # by identifier 02, first occurrence
    assert run(fs, "00B2014000") == "0102AAAA9000"
    assert run(fs, "00B2034000") == "6A83"  # no record with identifier 03
    assert run(fs, "00B2010400") == "0102AAAA9000"  # the current EF: the last one read (SFI 8)
    assert run(fs, "00B2014100") == "6A86"  # mode 01 (last) is not supported
    assert run(fs, "00B2010C00") == "6A82"  # no SFI 1 in DF 1001
    assert run(fs, "00B2012C00") == "6981"  # SFI 5 is transparent
    assert run(fs, "00B0880000") == "6981"  # and SFI 8 is not


def test_update_append_cyclic_and_by_identifier() -> None:
    fs, _ = make_fs()
    run(fs, "00A4000C021001")
    assert run(fs, "00DC023404" + "58585858") == "9000"
    assert run(fs, "00B2023400") == "585858589000"
    assert run(fs, "00DC023403" + "585858") == "6700"  # fixed records keep their size
    assert run(fs, "00DC053404" + "58585858") == "6A83"
    assert run(fs, "00E2003004" + "44444444") == "6A84"  # linear file full (3 of 3)
    for value in ("0202", "0303", "0404"):
        assert run(fs, "00E2003802" + value) == "9000"
    # cyclic: the newest is record 1, the oldest dropped past 3 records
    assert [run(fs, f"00B20{n}3C00") for n in (1, 2, 3)] == ["04049000", "03039000", "02029000"]
    assert run(fs, "00B2043C00") == "6A83"
    assert run(fs, "00DC024003" + "020199") == "9000"  # replace identifier 02
    assert run(fs, "00B2024000") == "0201999000"
    assert run(fs, "00DC034003" + "030177") == "9000"  # a new identifier is added
    assert run(fs, "00B2034000") == "0301779000"
    assert run(fs, "00E2013802" + "0505") == "6A86"  # APPEND RECORD wants P1 00


def test_get_challenge_remembers_it() -> None:
    fs, _ = make_fs()
    first = fs.process(CommandAPDU.from_hex("0084000008"))
    assert first.ok and len(first.data) == 8 and fs.security.challenge == first.data
    again = fs.process(CommandAPDU.from_hex("0084000004"))
    assert len(again.data) == 4 and again.data != first.data[:4]
    assert run(fs, "0084000005") == "6700"
    assert run(fs, "0084010008") == "6A86"
    fs.reset()
    assert fs.security.challenge is None and fs.current_df is fs.mf


# --- refusals leave the card as it was ------------------------------------------

REFUSALS = [
    ("00A4000C021234", "6A82"),
    ("00A4070C023F00", "6A86"),
    ("00A4000C03123456", "6700"),
    ("00A4040C00", "6700"),
    ("00A4000102" + "1001", "6A86"),
    ("00B0000000", "6986"),  # no current EF
    ("00B2053C00", "6A83"),
    ("00D6000001FF", "6986"),
    ("00DC010C01FF", "6A82"),
    ("00E2003001FF", "6700"),
    ("0012000000", "6D00"),
    ("FFA4000C021001", "6E00"),
    ("20A4000C021001", "6E00"),
    ("01A4000C021001", "6881"),
    ("80A4000C021001", "6D00"),
]


@pytest.mark.parametrize(("apdu", "sw"), REFUSALS)
def test_every_refusal_leaves_the_card_unchanged(apdu: str, sw: str) -> None:
    fs, _ = make_fs()
    run(fs, "00A4000C021001")
    before = snapshot(fs)
    assert run(fs, apdu) == sw
    assert snapshot(fs) == before


def test_images_of_the_files_round_trip_and_refuse_wrong_shapes() -> None:
    fs, _ = make_fs()
    run(fs, "00A4000C021001")
    run(fs, "00E20038020202")
    saved = fs.files_to_json()
    other, _ = make_fs()
    other.files_from_json(saved)
    assert other.files_to_json() == saved
    bad = [dict(e) for e in saved]
    bad[0]["data"] = "00"  # 2F00 is 5 bytes
    with pytest.raises(FormatError):
        other.files_from_json(bad)
    bad = [dict(e) for e in saved]
    bad[2]["records"] = ["41"]  # linear fixed, 4-byte records
    with pytest.raises(FormatError):
        other.files_from_json(bad)
    bad = [dict(e) for e in saved]
    bad[3]["records"] = ["0101"] * 4  # cyclic, at most 3
    with pytest.raises(FormatError):
        other.files_from_json(bad)
    with pytest.raises(FormatError):
        other.files_from_json([{"df": "3F00/9999", "fid": 1, "sfi": 1, "data": ""}])


# --- lookups and cached answers ------------------------------------------------------


def test_lookups_find_the_first_child_like_a_scan() -> None:
    df = DedicatedFile(0x1001)
    first, second = TransparentEF(0x0005, 0x05, b"1"), TransparentEF(0x0006, 0x05, b"2")
    df.add(first)
    df.add(second)
    df.add(TransparentEF(0x0005, 0x07, b"3"))
    assert df.ef_by_sfi(0x05) is first and df.ef_by_sfi(0x07) is not None and df.ef_by_sfi(0x08) is None
    assert df.child_by_fid(0x0005) is first and df.child_by_fid(0x0006) is second
    assert df.child_by_fid(0x0007) is None


def test_a_df_added_after_the_first_select_is_found_by_name() -> None:
    fs, _ = make_fs()
    assert run(fs, "00A4040006A00000000103")[-4:] == "6A82"
    fs.mf.add(DedicatedFile(0x1003, bytes.fromhex("A00000000103")))
    assert run(fs, "00A4040006A00000000103") == "6F0A8406A00000000103A5009000"


def test_built_in_fci_and_fcp_answer_the_same_bytes_every_time() -> None:
    fs, _ = make_fs()
    for _ in range(2):
        assert run(fs, "00A4040006A00000000101") == "6F0A8406A00000000101A5009000"
        assert run(fs, "00A4040406A00000000101") == "620F8201388302100184 06A00000000101 9000".replace(" ", "")
        assert run(fs, "00A4000C023F00") == "9000"
        assert run(fs, "00A40000023F00") == "6F0684023F00A5009000"
    # the same name in another file system's tree: its own answer
    other = FileSystem(DedicatedFile(0x3F00), random.Random(1))
    other.mf.add(DedicatedFile(0x1005, APP1))
    assert run(other, "00A4040406A00000000101") == "620F8201388302100584 06A00000000101 9000".replace(" ", "")


def test_the_application_fci_is_asked_on_every_select() -> None:
    fs, stub = make_fs()
    assert run(fs, "00A4040006A00000000102") == "6F0384010290 00".replace(" ", "")
    stub.fci = lambda df: bytes.fromhex("6F03840103")  # type: ignore[method-assign]
    assert run(fs, "00A4040006A00000000102") == "6F03840103 9000".replace(" ", "")
