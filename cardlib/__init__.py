"""yikatong cardlib: the ISO 7816 layer and the card's language (APDU, SW, TLV, ATR,
channel, readers, crypto, and the wire formats of the purse, PSAM and SSSE).

The names an integrator needs are importable from here (docs/library.md); they load on
first use (cardlib.exports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardlib.exports import lazy_exports

if TYPE_CHECKING:
    from cardlib.apdu import CommandAPDU as CommandAPDU
    from cardlib.apdu import ResponseAPDU as ResponseAPDU
    from cardlib.atr import Atr as Atr
    from cardlib.atr import parse_atr as parse_atr
    from cardlib.channel import Channel as Channel
    from cardlib.clock import BEIJING as BEIJING
    from cardlib.clock import Clock as Clock
    from cardlib.errors import AuthenticationError as AuthenticationError
    from cardlib.errors import CardRemovedError as CardRemovedError
    from cardlib.errors import ConfigError as ConfigError
    from cardlib.errors import FormatError as FormatError
    from cardlib.errors import MacMismatchError as MacMismatchError
    from cardlib.errors import MismatchError as MismatchError
    from cardlib.errors import MultipleCardsError as MultipleCardsError
    from cardlib.errors import NoCardError as NoCardError
    from cardlib.errors import ProtocolError as ProtocolError
    from cardlib.errors import ReaderTimeoutError as ReaderTimeoutError
    from cardlib.errors import ReaderUnavailableError as ReaderUnavailableError
    from cardlib.errors import RefusedError as RefusedError
    from cardlib.errors import SecurityError as SecurityError
    from cardlib.errors import SharingViolationError as SharingViolationError
    from cardlib.errors import StatusError as StatusError
    from cardlib.errors import TransportError as TransportError
    from cardlib.errors import YktError as YktError
    from cardlib.readers.base import Card as Card
    from cardlib.readers.base import Disposition as Disposition
    from cardlib.readers.base import EventKind as EventKind
    from cardlib.readers.base import Reader as Reader
    from cardlib.readers.base import ReaderEvent as ReaderEvent
    from cardlib.readers.registry import available_schemes as available_schemes
    from cardlib.readers.registry import open_reader as open_reader
    from cardlib.readers.registry import register_reader as register_reader

    __version__: str

_ERRORS = ("YktError", "FormatError", "ConfigError", "StatusError", "RefusedError", "MultipleCardsError",
           "MismatchError", "TransportError", "CardRemovedError", "NoCardError", "ReaderUnavailableError",
           "ReaderTimeoutError", "SharingViolationError", "ProtocolError", "SecurityError",
           "MacMismatchError", "AuthenticationError")
_NAMES = {  # each name and the module that defines it
    # reading a card
    "open_reader": "cardlib.readers.registry", "available_schemes": "cardlib.readers.registry",
    "register_reader": "cardlib.readers.registry",
    "Reader": "cardlib.readers.base", "Card": "cardlib.readers.base", "Disposition": "cardlib.readers.base",
    "EventKind": "cardlib.readers.base", "ReaderEvent": "cardlib.readers.base",
    "Channel": "cardlib.channel", "CommandAPDU": "cardlib.apdu", "ResponseAPDU": "cardlib.apdu",
    "Atr": "cardlib.atr", "parse_atr": "cardlib.atr",
    # time
    "Clock": "cardlib.clock", "BEIJING": "cardlib.clock",
    # errors (exit codes of DESIGN.md)
    **dict.fromkeys(_ERRORS, "cardlib.errors"),
}
__all__ = ["__version__", *_NAMES]
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
