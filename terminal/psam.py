"""The terminal's side of the PSAM (JT/T 978 PSAM; the generic SAM commands are the
project's profile): terminal number, MAC1,
MAC2 verification, and the session-key commands for SSSE authentication and
line MACs. It knows whether its purchase session is still open (no 8070
since), which decides if a recovered MAC2 can still be checked (docs/protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from cardlib import sw as SW
from cardlib.channel import Channel
from cardlib.errors import MacMismatchError, StatusError
from cardlib.iso import select_aid
from cardlib.pboc import psam as psam_commands
from cardlib.pboc.files import PsamAppData, PsamTerminal


@dataclass(frozen=True)
class SamMac1:
    """The PSAM's answer to 8070: the terminal transaction number and MAC1."""

    terminal_seq: int
    mac1: bytes


class PsamClient:
    """A PSAM in a reader slot: it reads the terminal number and the key index once, then
    computes MAC1, checks MAC2 and keeps session keys for SSSE authentication and line
    MACs. It remembers which purchase its session belongs to until 8072 or the next 8070."""

    def __init__(self, channel: Channel, test: bool = False) -> None:
        self.channel = channel
        self.test = test
        self.terminal_id = PsamTerminal.decode(
            channel.send(psam_commands.read_terminal_number(), what="READ PSAM TERMINAL NUMBER").data).terminal_id
        channel.send(select_aid(psam_commands.PSAM_AID, fci=False), what="SELECT MOT.CPSAM01")
        self.app = PsamAppData.decode(channel.send(psam_commands.read_app_data(), what="READ PSAM 0x17").data)
        self._open_session: object | None = None

    @property
    def key_index(self) -> int:
        """The purchase key index of the PSAM's 0x17."""
        return self.app.key_index

    def init_purchase(self, request: psam_commands.InitSamForPurchase, session: object) -> SamMac1:
        """8070: MAC1 and the terminal sequence; ``session`` names the transaction."""
        self._open_session = None
        response = self.channel.send(request.to_apdu(), what="INIT SAM FOR PURCHASE")
        sam = psam_commands.InitSamResponse.decode(response.data)
        self._open_session = session
        return SamMac1(sam.terminal_seq, sam.mac1)

    def session_open(self, session: object) -> bool:
        """Whether the PSAM's purchase session is still ``session``'s (MAC2 can still be checked)."""
        return self._open_session is not None and self._open_session == session

    def verify_mac2(self, mac2: bytes) -> None:
        """8072: raises MacMismatchError when the card's MAC2 is wrong."""
        response = self.channel.transmit(psam_commands.credit_sam_for_purchase(mac2))
        self._open_session = None
        if response.sw == SW.SW_MAC_INVALID:
            raise MacMismatchError("the card's MAC2 does not verify in the PSAM")
        response.check("CREDIT SAM FOR PURCHASE")

    def start_session_key(self, usage: int, factors: tuple[bytes, ...], key_index: int | None = None) -> None:
        """INIT FOR DESCRYPT: derive the key of ``usage`` for the card ``factors`` name."""
        self.channel.send(psam_commands.InitDescrypt(usage, self.key_index if key_index is None else key_index, factors).to_apdu(),
                          what="INIT FOR DESCRYPT")

    def encrypt(self, data: bytes) -> bytes:
        """DESCRYPT under the session key set by :meth:`start_session_key`."""
        return self.channel.send(psam_commands.encrypt_data(data), what="DESCRYPT").data

    def mac(self, iv: bytes, data: bytes) -> bytes:
        """The line MAC of ``data`` from ``iv`` under the session key (DESCRYPT MAC)."""
        return self.channel.send(psam_commands.mac_data(iv, data), what="DESCRYPT MAC").data


__all__ = ["PsamClient", "SamMac1", "StatusError"]
