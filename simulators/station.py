"""Simulated parts of a station (docs/station.md): PSAMs of the local and the T-Union
kind, and cards of another city that are, or are not, interoperable.

An interoperable card holds two purchase keys: its own city's under its
issuer's key index, and the interoperable one under the T-Union key index
(cardlib.keystore, the project's profile). At home it pays through the local
PSAM with the first, in another city through the T-Union PSAM with the
second: a visitor's card (``simulators.issuer.issue_card`` with
``CardProfile(interoperable=True)``). Its TAC key stays its issuer's, so
clearing checks its lines as any other.
"""

from __future__ import annotations

import dataclasses
import random

from cardlib.keys import IssuerKeys
from cardlib.keystore import InteropKeys, PsamKind, builtin_interop, psam_keys
from cardlib.pboc.files import MANAGEMENT_SFI, ManagementData
from simulators.filesystem import DedicatedFile, TransparentEF
from simulators.psam import PsamCard, PsamState
from simulators.ssc import SocialSecurityCard


def make_station_psam(kind: PsamKind, local: IssuerKeys, terminal_id: bytes, seed: int = 0,
                      interop: InteropKeys | None = None) -> PsamCard:
    """A PSAM of ``kind`` issued by the local operator ``local``: a T-Union PSAM under the
    interoperable master's key index."""
    key_index = (interop or builtin_interop()).mpk.index if kind is PsamKind.TUNION else local.mpk.index
    return PsamCard(psam_keys(kind, local, interop), PsamState(terminal_id, key_index=key_index),
                    random.Random(seed))


def _purse_file(card: SocialSecurityCard, sfi: int) -> TransparentEF:
    pdf = card.fs.mf.children[-1]
    assert isinstance(pdf, DedicatedFile)
    ef = pdf.ef_by_sfi(sfi)
    assert isinstance(ef, TransparentEF)
    return ef


def set_interoperable(card: SocialSecurityCard, interoperable: bool) -> SocialSecurityCard:
    """0x17's interoperability flag (``0000``: not interoperable)."""
    ef = _purse_file(card, MANAGEMENT_SFI)
    m = ManagementData.decode(bytes(ef.data))
    ef.data = bytearray(dataclasses.replace(m, interop=b"\x00\x01" if interoperable else b"\x00\x00").encode())
    return card
