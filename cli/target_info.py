"""A contactless card's ISO 14443-A identity (UID, ATQA, SAK, ATS) as libnfc's ``nfc-list``
prints it (libnfc 1.8, utils/nfc-utils.c ``print_nfc_iso14443a_info``, not verbose), so a
technician can set ``ykt`` beside ``nfc-list`` and compare line for line; and the same as JSON.

As libnfc does, the ATS is shown without its length byte TL (ISO 14443-4 §5.2.1)."""

from __future__ import annotations

from typing import Any

from cardlib.readers.base import Reader
from cardlib.readers.pn532 import Pn532Reader
from cardlib.readers.pn532_frames import Target

HEADER = "ISO/IEC 14443A (106 kbps) target:"


def _spaced(hex_text: str) -> str:
    """nfc-list's ``print_hex``: each byte in lower-case hex followed by two spaces."""
    return "".join(f"{b:02x}  " for b in bytes.fromhex(hex_text))


def target_json(target: Target) -> dict[str, Any]:
    """Upper-case hex as the rest of ykt's JSON; the ATS without TL, as nfc-list shows it."""
    return {"uid": target.uid.hex().upper(), "atqa": target.sens_res.hex().upper(),
            "sak": f"{target.sel_res:02X}", "ats": target.ats[1:].hex().upper()}


def target_lines(info: dict[str, Any]) -> list[str]:
    """The header and the lines of ``nfc-list`` (the ATS line only when there is one), from
    :func:`target_json`'s form."""
    nfcid = "3" if info["uid"][:2] == "08" else "1"  # a random UID (first byte 08) is an NFCID3
    lines = [HEADER,
             f"    ATQA (SENS_RES): {_spaced(info['atqa'])}",
             f"       UID (NFCID{nfcid}): {_spaced(info['uid'])}",
             f"      SAK (SEL_RES): {_spaced(info['sak'])}"]
    if info["ats"]:
        lines.append(f"                ATS: {_spaced(info['ats'])}")
    return lines


def reader_target(reader: Reader) -> dict[str, Any] | None:
    """The ISO 14443-A identity (:func:`target_json`) of the card a reader has connected, where
    the reader knows it (a PN532); None elsewhere."""
    target = reader.target if isinstance(reader, Pn532Reader) else None
    return target_json(target) if target is not None else None
