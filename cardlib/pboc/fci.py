"""The purse's FCI, the answer to SELECT by AID, declared once (cardlib/wire.py).

BER-TLV of ISO/IEC 7816-4 §5.2 in the template of PBOC/JR/T 0025 and JT/T 978:
``6F { 84 DF name, A5 { 9F08 application version, 9F0C issuer discretionary
data = file 0x15 } }``. Every T-Union FCI seen carries exactly this (public
example: domosekai/cardemulator, docs/protocol.md). Terminals read real cards'
FCIs with the tolerant TLV reader (cardlib/tlv.py), which takes other tags too;
this declaration is the FCI this project's card sends.
"""

from __future__ import annotations

from construct import Bytes, Const, GreedyBytes, Int8ub, Prefixed, Struct

from cardlib.wire import Vector, declare

#: 9F08, the application version every T-Union FCI seen carries
FCI_VERSION = 0x02

FCI = declare("purse FCI", Struct(
    Const(b"\x6F"),
    "template" / Prefixed(Int8ub, Struct(
        Const(b"\x84"),
        "df_name" / Prefixed(Int8ub, GreedyBytes),
        Const(b"\xA5"),
        "proprietary" / Prefixed(Int8ub, Struct(
            Const(b"\x9F\x08"),
            "version" / Prefixed(Int8ub, Int8ub),
            Const(b"\x9F\x0C"),
            "public" / Prefixed(Int8ub, Bytes(30)),
        )),
    )),
), cite="ISO/IEC 7816-4 §5.2 BER-TLV; the PBOC e-purse FCI (JR/T 0025) with file 0x15 in 9F0C (JT/T 978)",
    vectors=(
    Vector(bytes.fromhex("6F31 8408 A000000632010105 A525 9F08 01 02 9F0C 1E"
                         "01011000FFFFFFFF 02 01 03105170010170907984 20190806 20401231 0000"),
           {"template": {"df_name": bytes.fromhex("A000000632010105"), "proprietary": {
               "version": 2, "public": bytes.fromhex("01011000FFFFFFFF020103105170010170907984201908062040123100"
                                                     "00")}}},
           "public: domosekai/cardemulator, app/src/main/java/com/domosekai/cardemulator/HCEService.kt, "
           "the answer of a Beijing T-Union card to SELECT A000000632010105"),
))


def purse_fci(df_name: bytes, public: bytes) -> bytes:
    """The FCI of the purse named ``df_name`` whose file 0x15 is ``public``."""
    return FCI.build(template={"df_name": df_name, "proprietary": {"version": FCI_VERSION, "public": public}})
