"""A reader whose field holds in-process card objects (DESIGN.md card contract).

``py:package.module:factory`` builds the cards with a Python factory (only a
module allowed by ``YKT_ALLOW_PY`` or registered as an entry point: a reader
URI in a configuration must not run arbitrary code); the
``sim`` reader of :mod:`simulators` is built on the same class. Cards can be
put into the field and taken away; a card that raises CardRemovedError from
``process`` has been torn away and leaves the field.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from importlib import import_module, metadata

from cardlib.atr import speaks_t0
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MultipleCardsError,
    NoCardError,
    ReaderUnavailableError,
)
from cardlib.readers.base import Card, Disposition, Reader


class HostedReader(Reader):
    """A contactless-like field of in-process cards."""

    extended_length = True
    max_command_data = 65535
    poll_interval = 0.01

    def __init__(self, cards: Sequence[Card] = (), name: str = "py") -> None:
        self.name = name
        self._cards: list[Card] = list(cards)
        self._active: Card | None = None
        self._atr = b""
        self._lock = threading.RLock()

    @property
    def cards(self) -> tuple[Card, ...]:
        with self._lock:
            return tuple(self._cards)

    def _index(self, card: Card) -> int:
        # identity, not equality: two equal card models are still two cards (a plain loop: a
        # terminal takes a card out and puts the next one in on every tap)
        for i, c in enumerate(self._cards):
            if c is card:
                return i
        return -1

    def insert(self, card: Card) -> None:
        """Put a card into the field (a card already there stays once)."""
        with self._lock:
            if self._index(card) < 0:
                self._cards.append(card)

    def remove(self, card: Card | None = None) -> None:
        """Take one card (or, with None, every card) out of the field."""
        with self._lock:
            if card is None:
                self._cards.clear()
            elif (i := self._index(card)) >= 0:
                del self._cards[i]
            if self._active is not None and self._index(self._active) < 0:
                self._active = None
                self._atr = b""

    def connect(self) -> bytes:
        with self._lock:
            if not self._cards:
                raise NoCardError(f"no card in {self.name}")
            if len(self._cards) > 1:
                raise MultipleCardsError(len(self._cards))
            card = self._cards[0]
            try:
                self._atr = bytes(card.reset())
                self.t0 = speaks_t0(self._atr)  # the protocol a reader would run with it
            except CardRemovedError:
                self.remove(card)
                raise
            self._active = card
            return self._atr

    @property
    def atr(self) -> bytes:
        if self._active is None:
            raise NoCardError(f"no card connected in {self.name}")
        return self._atr

    @property
    def card(self) -> Card | None:
        """The connected card, if any."""
        return self._active

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        card = self._active
        if card is None:
            raise NoCardError(f"no card connected in {self.name}")
        try:
            return bytes(card.process(bytes(apdu)))
        except CardRemovedError:
            self.remove(card)
            raise

    def is_card_present(self) -> bool:
        with self._lock:
            return bool(self._cards)

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        with self._lock:
            card, self._active, self._atr = self._active, None, b""
        if card is not None and disposition is not Disposition.LEAVE:
            try:
                card.reset()
            except CardRemovedError:
                self.remove(card)


ALLOW_ENV = "YKT_ALLOW_PY"
FACTORY_GROUP = "yikatong.card_factories"
_allowed: set[str] = set()


def allow_module(name: str) -> None:
    """Let ``py:`` readers import ``name`` (and the modules below it) in this process."""
    _allowed.add(name)


def _is_allowed(module_name: str, target: str) -> bool:
    """A ``py:`` target is code: it runs only when its module is allowed (``YKT_ALLOW_PY=a,b.c``
    or :func:`allow_module`) or when an installed distribution registered it as an entry point
    of ``yikatong.card_factories``. Checked before the import: importing already runs code."""
    names = _allowed | {n.strip() for n in os.environ.get(ALLOW_ENV, "").split(",") if n.strip()}
    if any(module_name == n or module_name.startswith(n + ".") for n in names):
        return True
    return any(ep.value.replace(" ", "") == target for ep in metadata.entry_points(group=FACTORY_GROUP))


def load_factory(target: str) -> object:
    """Resolve ``package.module:attribute`` (only an allowed or registered one)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise FormatError(f"py reader target {target!r}: expected package.module:factory")
    if not _is_allowed(module_name, target):
        raise ReaderUnavailableError(
            f"py reader: {module_name!r} is code and is not allowed to run; allow it with"
            f" {ALLOW_ENV}={module_name} or register {target} in the {FACTORY_GROUP} entry points")
    try:
        module = import_module(module_name)
    except (ImportError, ValueError, TypeError) as exc:
        raise ReaderUnavailableError(f"py reader: cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ReaderUnavailableError(f"py reader: {module_name!r} has no {attr!r}") from None


def _as_cards(made: object, target: str) -> list[Card]:
    if isinstance(made, Card):
        return [made]
    if not isinstance(made, Sequence) or isinstance(made, (str, bytes)):
        raise FormatError(
            f"py reader: {target} gave {type(made).__name__}, not a card (atr, process, reset) "
            "or a sequence of cards"
        )
    cards: list[Card] = []
    for item in made:
        if not isinstance(item, Card):
            raise FormatError(
                f"py reader: {target} gave {type(item).__name__}, not a card (atr, process, reset)"
            )
        cards.append(item)
    return cards


def open_py_reader(target: str, options: dict[str, str]) -> HostedReader:
    """Backend of ``py:package.module:factory?key=value`` (options go to the factory)."""
    factory = load_factory(target)
    if isinstance(factory, Card) or not callable(factory):  # a ready-made card object
        if options:
            raise FormatError(f"py reader: {target} is not a factory, it takes no options")
        return HostedReader(_as_cards(factory, target), name=f"py:{target}")
    try:
        made = factory(**options)
    except TypeError as exc:
        raise FormatError(f"py reader: {target} does not take these options ({exc})") from None
    return HostedReader(_as_cards(made, target), name=f"py:{target}")
