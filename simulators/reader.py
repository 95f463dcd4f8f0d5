"""The ``sim`` reader scheme: virtual cards in an in-process field.

``sim`` a fresh sample card; ``sim:PATH`` a card image (saved back after
every change); ``sim:PATH1,PATH2`` two cards in the field at once;
``sim?second=PATH`` (or ``sim:PATH?second=PATH2``) adds a card from an image;
``sim?kind=psam`` a fresh PSAM of the test issuer (``?terminal=HEX`` its
terminal number); ``?seed=N`` varies card data; ``?t0=1`` makes the card
answer case-4 commands with 61xx.
"""

from __future__ import annotations

from cardlib.errors import FormatError
from cardlib.hexutil import from_hex
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import option_int
from simulators.image import load_card
from simulators.issuer import sample_card
from simulators.psam import PsamCard, make_psam
from simulators.ssc import SocialSecurityCard


class SimReader(HostedReader):
    """A HostedReader whose cards are simulators (for the CLI and tests)."""


def _load(path: str, kind: str) -> SocialSecurityCard | PsamCard:
    card = load_card(path)
    if card.kind != kind:
        raise FormatError(f"sim reader: {path} holds a {card.kind}, not a {kind}")
    return card


def open_sim_reader(target: str, options: dict[str, str]) -> SimReader:
    unknown = set(options) - {"kind", "seed", "t0", "terminal", "second"}
    if unknown:
        raise FormatError(f"sim reader: unknown option(s) {', '.join(sorted(unknown))}")
    seed = option_int(options, "seed", 0)
    kind = options.get("kind", "card")
    if kind == "psam":
        if target:
            psam = _load(target, "psam")
        else:
            terminal = from_hex(options.get("terminal", "000000000001"), "sim reader: terminal")
            if len(terminal) != 6:
                raise FormatError(f"sim reader: terminal must be 6 bytes, got {len(terminal)}")
            psam = make_psam(terminal_id=terminal, seed=seed)
        return SimReader([psam], name=f"sim:{target or 'psam'}")
    if kind != "card":
        raise FormatError(f"sim reader: kind must be card or psam, got {kind!r}")
    paths = [p for p in target.split(",") if p]
    cards: list[SocialSecurityCard | PsamCard] = [_load(p, "card") for p in paths] if paths else [sample_card(seed)]
    if options.get("second"):
        cards.append(_load(options["second"], "card"))
    t0 = bool(option_int(options, "t0", 0))
    for card in cards:
        assert isinstance(card, SocialSecurityCard)
        card.t0_style = t0 or card.t0_style
    return SimReader(cards, name=f"sim:{target or 'sample'}")
