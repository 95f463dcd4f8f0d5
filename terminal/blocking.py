"""Blocking a deny-listed card's purse: APPLICATION BLOCK with a line MAC
computed through the SAM (the project's profile: usage 0x36, retail MAC of
ISO/IEC 9797-1 algorithm 3, IV = card challenge ‖ 00000000)."""

from __future__ import annotations

from cardlib.channel import Channel
from cardlib.iso import get_challenge
from cardlib.keys import card_factor
from cardlib.pboc import psam as psam_commands
from cardlib.pboc import purse as purse_commands
from terminal.psam import PsamClient


def block_purse(card: Channel, psam: PsamClient, app_serial: bytes, permanent: bool = False) -> None:
    """The purse must be selected; afterwards it answers SELECT with 6A81 (9303 permanent)."""
    challenge = card.send(get_challenge(4), what="GET CHALLENGE").data
    command = purse_commands.ApplicationBlock.of(permanent)
    psam.start_session_key(psam_commands.USAGE_MAINTENANCE, (card_factor(app_serial),))
    mac = psam.mac(challenge + bytes(4), command.mac_input())
    card.send(purse_commands.ApplicationBlock.of(permanent, mac).to_apdu(), what="APPLICATION BLOCK")
