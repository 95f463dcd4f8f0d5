"""The ``sim`` reader scheme: virtual cards in an in-process field.

``sim`` a fresh sample card; ``sim:PATH`` a card image (saved back after
every change); ``sim:PATH1,PATH2`` two cards in the field at once;
``sim?second=PATH`` (or ``sim:PATH?second=PATH2``) adds a card from an image;
``sim?kind=psam`` the simulated PSAM of the test issuer (``?terminal=HEX`` its
terminal number), whose state persists under :func:`state_dir`;
``?seed=N`` varies card data; ``?t0=1`` makes the card answer case-4 commands
with 61xx; ``?wait=SECONDS`` how long to wait for an image another session
holds (2 s by default, then "card in use").

The reader holds every image it opened until it is closed (docs/card-image.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cardlib.errors import FormatError
from cardlib.hexutil import from_hex
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import option_float, option_int
from simulators.image import DEFAULT_WAIT, load_card, release_card
from simulators.issuer import sample_card
from simulators.psam import PsamCard, make_psam
from simulators.ssc import SocialSecurityCard

STATE_ENV = "YKT_STATE_DIR"


def state_dir() -> Path:
    """Where simulated PSAMs keep their state: ``$YKT_STATE_DIR``, else
    ``$XDG_STATE_HOME/yikatong`` (``~/.local/state/yikatong``); made 0700."""
    override = os.environ.get(STATE_ENV)
    if override:
        base = Path(override)
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "yikatong"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise FormatError(f"{base}: cannot make the simulators' state folder: {exc.strerror or exc}") from None
    return base


class SimReader(HostedReader):
    """A HostedReader whose cards are simulators (for the CLI and tests); closing it
    ends the sessions of the images it holds."""

    def __init__(self, cards: Sequence[SocialSecurityCard | PsamCard], name: str,
                 held: Sequence[SocialSecurityCard | PsamCard] = ()) -> None:
        super().__init__(cards, name)
        self._held = list(held)

    def close(self) -> None:
        super().close()
        held, self._held = self._held, []
        for card in held:
            release_card(card)


def _load(path: str, kind: str, wait: float, held: list[SocialSecurityCard | PsamCard]) -> SocialSecurityCard | PsamCard:
    card = load_card(path, wait=wait)
    held.append(card)
    if card.kind != kind:
        raise FormatError(f"sim reader: {path} holds a {card.kind}, not a {kind}")
    return card


def _default_psam(terminal: bytes, seed: int, wait: float, held: list[SocialSecurityCard | PsamCard]) -> PsamCard:
    """The PSAM of this terminal number, kept as a real one keeps its counter: in an
    image under the state folder, made on first use."""
    path = state_dir() / f"psam-{terminal.hex().upper()}.json"
    psam = load_card(path, wait=wait, create=lambda: make_psam(terminal_id=terminal, seed=seed))
    held.append(psam)
    if not isinstance(psam, PsamCard) or psam.state.terminal_id != terminal:
        raise FormatError(f"sim reader: {path} is not the PSAM of terminal {terminal.hex().upper()}")
    return psam


def open_sim_reader(target: str, options: dict[str, str]) -> SimReader:
    """The reader of ``sim:`` targets: a PSAM (``kind=psam``) or cards from image files (the
    sample card when none is named), each held (locked) until the reader closes."""
    unknown = set(options) - {"kind", "seed", "t0", "terminal", "second", "wait"}
    if unknown:
        raise FormatError(f"sim reader: unknown option(s) {', '.join(sorted(unknown))}")
    seed = option_int(options, "seed", 0)
    wait = option_float(options, "wait", DEFAULT_WAIT)
    if not 0 <= wait <= 3600:
        raise FormatError(f"sim reader: wait must be 0..3600 seconds, got {options['wait']!r}")
    kind = options.get("kind", "card")
    if kind not in ("card", "psam"):
        raise FormatError(f"sim reader: kind must be card or psam, got {kind!r}")
    held: list[SocialSecurityCard | PsamCard] = []
    try:
        if kind == "psam":
            return SimReader([_psam(target, options, seed, wait, held)], name=f"sim:{target or 'psam'}", held=held)
        cards = _cards(target, options, seed, wait, held)
    except BaseException:
        for card in held:
            release_card(card)
        raise
    t0 = bool(option_int(options, "t0", 0))
    for card in cards:
        assert isinstance(card, SocialSecurityCard)
        card.t0_style = t0 or card.t0_style
    return SimReader(cards, name=f"sim:{target or 'sample'}", held=held)


def _psam(target: str, options: dict[str, str], seed: int, wait: float,
          held: list[SocialSecurityCard | PsamCard]) -> SocialSecurityCard | PsamCard:
    """The PSAM of the image ``target``, else the default one of the ``terminal`` option."""
    if target:
        return _load(target, "psam", wait, held)
    terminal = from_hex(options.get("terminal", "000000000001"), "sim reader: terminal")
    if len(terminal) != 6:
        raise FormatError(f"sim reader: terminal must be 6 bytes, got {len(terminal)}")
    return _default_psam(terminal, seed, wait, held)


def _cards(target: str, options: dict[str, str], seed: int, wait: float,
           held: list[SocialSecurityCard | PsamCard]) -> list[SocialSecurityCard | PsamCard]:
    """The cards of the comma-separated images of ``target`` (else the sample card), and the
    ``second`` option's."""
    paths = [p for p in target.split(",") if p]
    cards: list[SocialSecurityCard | PsamCard] = [_load(p, "card", wait, held) for p in paths] if paths \
        else [sample_card(seed)]
    if options.get("second"):
        cards.append(_load(options["second"], "card", wait, held))
    return cards
