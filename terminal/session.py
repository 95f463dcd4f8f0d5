"""Opening a terminal's two slots: the user card and the PSAM (DESIGN.md).

The PSAM slot defaults to ``sim?kind=psam``, the simulated PSAM of the
built-in test issuer; with a real user-card reader that default is announced
and its journal records are marked as test records.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardlib.channel import Channel
from cardlib.readers.base import Reader
from cardlib.readers.registry import open_reader, parse_uri
from terminal.psam import PsamClient

DEFAULT_PSAM = "sim?kind=psam"
SIMULATED_SCHEMES = ("sim", "py", "trace")


@dataclass
class Slots:
    card_reader: Reader
    psam_reader: Reader
    psam: PsamClient
    announcement: str | None

    def close(self) -> None:
        for reader in (self.card_reader, self.psam_reader):
            reader.close()


def open_psam(uri: str = DEFAULT_PSAM) -> tuple[Reader, PsamClient]:
    reader = open_reader(uri)
    try:
        reader.connect()
    except BaseException:
        reader.close()  # a simulated PSAM's image is held until its reader closes
        raise
    is_test = parse_uri(uri).scheme == "sim"
    return reader, PsamClient(Channel(reader), test=is_test)


def open_slots(card_uri: str, psam_uri: str = DEFAULT_PSAM) -> Slots:
    """Open both slots; the card slot is opened, not connected (cards come and go)."""
    card_reader = open_reader(card_uri)
    try:
        psam_reader, psam = open_psam(psam_uri)
    except BaseException:
        card_reader.close()  # the card's image is not left held when the PSAM slot fails
        raise
    note = None
    if psam.test and parse_uri(card_uri).scheme not in SIMULATED_SCHEMES:
        note = "note: PSAM slot is the simulated TEST ONLY issuer's PSAM; journal records are marked as test"
    return Slots(card_reader, psam_reader, psam, note)
