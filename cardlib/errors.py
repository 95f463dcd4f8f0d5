"""One hierarchy of errors for the whole toolkit.

Every error a user can cause is a :class:`YktError`; its ``exit_code`` is the
CLI exit code of DESIGN.md (1 refused, 2 bad input, 3 reader/transport,
4 security). Messages never carry keys or PINs.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_TRANSPORT = 3
EXIT_SECURITY = 4


class YktError(Exception):
    """Base of every error raised on purpose by yikatong."""

    exit_code: int = EXIT_USAGE


# --- bad input (exit 2) -----------------------------------------------------


class FormatError(YktError, ValueError):
    """Malformed input: hex, APDU, TLV, ATR, file formats."""

    exit_code = EXIT_USAGE


class ConfigError(FormatError):
    """A configuration or key file is missing, unreadable or invalid."""


# --- the card or the rules said no (exit 1) ---------------------------------


class StatusError(YktError):
    """The card answered with a status word other than success."""

    exit_code = EXIT_REFUSED

    def __init__(self, sw: int, meaning: str | None = None, command: str | None = None) -> None:
        if meaning is None:
            from cardlib.sw import describe  # late import: sw imports errors

            meaning = describe(sw)
        self.sw = sw
        self.meaning = meaning
        self.command = command
        where = f"{command}: " if command else ""
        super().__init__(f"{where}card answered {sw:04X} ({meaning})")


class RefusedError(YktError):
    """A rule (fare, deny list, validity, ...) refused the operation."""

    exit_code = EXIT_REFUSED


class MultipleCardsError(RefusedError):
    """More than one card is in the field."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        super().__init__(f"{count} cards in the field: present one card only")


class MismatchError(RefusedError):
    """A script or trace expectation did not hold."""


# --- reader and transport trouble (exit 3) ----------------------------------


class TransportError(YktError):
    """The reader or the link to the card failed."""

    exit_code = EXIT_TRANSPORT


class CardRemovedError(TransportError):
    """The card left the field (or was torn away) during an exchange."""

    def __init__(self, message: str = "card removed") -> None:
        super().__init__(message)


class NoCardError(TransportError):
    """No card is present in the reader."""

    def __init__(self, message: str = "no card in the reader") -> None:
        super().__init__(message)


class ReaderUnavailableError(TransportError):
    """The reader, or the service behind it, is not there."""


class ReaderTimeoutError(TransportError):
    """The reader or the card did not answer in time."""


class SharingViolationError(TransportError):
    """Another application holds the reader exclusively."""


class ProtocolError(TransportError):
    """The card or the chip answered something the protocol does not allow."""


# --- security failures (exit 4) ---------------------------------------------


class SecurityError(YktError):
    """A cryptographic check failed."""

    exit_code = EXIT_SECURITY


class MacMismatchError(SecurityError):
    """A MAC or TAC did not verify."""


class AuthenticationError(SecurityError):
    """Card or terminal authentication failed (including PIN)."""


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code for an exception (2 for anything unexpected is wrong: 3)."""
    if isinstance(exc, YktError):
        return exc.exit_code
    return EXIT_TRANSPORT
