"""The ``sim`` reader scheme: virtual cards in an in-process field.

``sim`` a fresh sample card; ``sim:PATH`` a card image (saved back after
every change); ``sim:PATH1,PATH2`` two cards in the field at once;
``sim?kind=psam`` a fresh PSAM of the test issuer; ``?seed=N`` varies card
data; ``?t0=1`` makes the card answer case-4 commands with 61xx.
"""

from __future__ import annotations

from cardlib.errors import FormatError
from cardlib.readers.pyhost import HostedReader
from cardlib.readers.registry import option_int
from simulators.image import load_card
from simulators.issuer import sample_card
from simulators.psam import make_psam


class SimReader(HostedReader):
    """A HostedReader whose cards are simulators (for the CLI and tests)."""


def open_sim_reader(target: str, options: dict[str, str]) -> SimReader:
    unknown = set(options) - {"kind", "seed", "t0", "terminal"}
    if unknown:
        raise FormatError(f"sim reader: unknown option(s) {', '.join(sorted(unknown))}")
    seed = option_int(options, "seed", 0)
    kind = options.get("kind", "card")
    if kind == "psam":
        if target:
            card = load_card(target)
        else:
            terminal = bytes.fromhex(options.get("terminal", "000000000001"))
            card = make_psam(terminal_id=terminal, seed=seed)
        return SimReader([card], name=f"sim:{target or 'psam'}")
    if kind != "card":
        raise FormatError(f"sim reader: kind must be card or psam, got {kind!r}")
    if target:
        cards = [load_card(p) for p in target.split(",") if p]
    else:
        cards = [sample_card(seed)]
    if option_int(options, "t0", 0):
        for c in cards:
            c.t0_style = True  # type: ignore[union-attr]
    return SimReader(cards, name=f"sim:{target or 'sample'}")
