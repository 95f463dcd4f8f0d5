"""Simulated parts of a station (docs/station.md): PSAMs of the local and the T-Union
kind.

An interoperable card holds two purchase keys: its own city's under its
issuer's key index, and the interoperable one under the T-Union key index
(cardlib.keystore, the project's profile). At home it pays through the local
PSAM with the first, in another city through the T-Union PSAM with the
second: a visitor's card (``simulators.issuer.issue_card`` with
``CardProfile(interoperable=True)``, whose 0x17 then says so; without it 0x17
reads 0000 and no other city's station takes the card). Its TAC key stays its
issuer's, so clearing checks its lines as any other.
"""

from __future__ import annotations

import random

from cardlib.keys import IssuerKeys
from cardlib.keystore import InteropKeys, PsamKind, builtin_interop, psam_keys
from simulators.psam import PsamCard, PsamState


def make_station_psam(kind: PsamKind, local: IssuerKeys, terminal_id: bytes, seed: int = 0,
                      interop: InteropKeys | None = None) -> PsamCard:
    """A PSAM of ``kind`` issued by the local operator ``local``: a T-Union PSAM under the
    interoperable master's key index."""
    key_index = (interop or builtin_interop()).mpk.index if kind is PsamKind.TUNION else local.mpk.index
    return PsamCard(psam_keys(kind, local, interop), PsamState(terminal_id, key_index=key_index),
                    random.Random(seed))
