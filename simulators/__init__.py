"""yikatong simulators: virtual social security cards, T-Union cards and PSAMs that answer
APDUs as the real ones do (in process, behind pcscd through vpcd, behind a PN532 emulator).
The names an integrator needs are importable from here (docs/library.md); they load on first
use (cardlib.exports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardlib.exports import lazy_exports

if TYPE_CHECKING:
    from simulators.image import load_card as load_card
    from simulators.image import save_image as save_image
    from simulators.issuer import CardProfile as CardProfile
    from simulators.issuer import issue_card as issue_card
    from simulators.issuer import sample_card as sample_card
    from simulators.psam import PsamCard as PsamCard
    from simulators.psam import make_psam as make_psam
    from simulators.ssc import SocialSecurityCard as SocialSecurityCard

    __version__: str

_NAMES = {  # each name and the module that defines it
    # virtual cards
    "sample_card": "simulators.issuer", "issue_card": "simulators.issuer", "CardProfile": "simulators.issuer",
    "make_psam": "simulators.psam", "PsamCard": "simulators.psam", "SocialSecurityCard": "simulators.ssc",
    # card images
    "load_card": "simulators.image", "save_image": "simulators.image",
}
__all__ = ["__version__", *_NAMES]
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
