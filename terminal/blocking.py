"""Blocking a deny-listed card's purse: APPLICATION BLOCK with a line MAC
computed through the SAM (the project's profile: usage 0x36, retail MAC of
ISO/IEC 9797-1 algorithm 3, IV = card challenge ‖ 00000000).

The maintenance key is the card issuer's, and a PSAM holds its own issuer's
only (a T-Union PSAM too: cardlib.keystore.psam_keys). A terminal refuses a
listed card whatever happens and blocks it only when it can: a card of
another issuer is refused and left as it is, as field terminals do.
"""

from __future__ import annotations

from cardlib.channel import Channel
from cardlib.errors import StatusError
from cardlib.iso import get_challenge
from cardlib.keys import card_factor
from cardlib.pboc import psam as psam_commands
from cardlib.pboc import purse as purse_commands
from terminal.psam import PsamClient
from terminal.sam_pool import PsamUnavailableError


def block_purse(card: Channel, psam: PsamClient, app_serial: bytes, permanent: bool = False) -> None:
    """The purse must be selected; afterwards it answers SELECT with 6A81 (9303 permanent)."""
    challenge = card.send(get_challenge(4), what="GET CHALLENGE").data
    command = purse_commands.ApplicationBlock.of(permanent)
    psam.start_session_key(psam_commands.USAGE_MAINTENANCE, (card_factor(app_serial),))
    mac = psam.mac(challenge + bytes(4), command.mac_input())
    card.send(purse_commands.ApplicationBlock.of(permanent, mac).to_apdu(), what="APPLICATION BLOCK")


def holds_maintenance_key(psam: PsamClient, card_issuer: bytes) -> bool:
    """Whether the PSAM can make the card's block MAC: the card is of the PSAM's issuer (0x17)."""
    return bytes(psam.app.issuer_id) == bytes(card_issuer)


def block_listed(card: Channel, psam: PsamClient, card_issuer: bytes, app_serial: bytes) -> tuple[bool, str]:
    """Block a listed purse where the PSAM holds its key: (blocked, what happened). The card is
    refused either way; a card gone mid-block raises TransportError (the rider taps again)."""
    try:
        if not holds_maintenance_key(psam, card_issuer):
            return False, (f"not blocked: the PSAM holds no maintenance key of issuer"
                           f" {bytes(card_issuer).hex().upper()}")
        block_purse(card, psam, app_serial)
    except PsamUnavailableError as exc:
        return False, f"not blocked: {exc}"
    except StatusError as exc:  # the card refused the block: refused all the same
        return False, f"not blocked: {exc}"
    return True, "blocked"
