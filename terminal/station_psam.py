"""A lane's PSAM: the pool's PSAM for the card in front of it (docs/station.md).

A :class:`LanePsam` stands where a terminal has its one PSAM
(:class:`terminal.psam.PsamClient`): the role's application and the wallet
use it unchanged. It takes a PSAM from the pool the first time the tap needs
one — of the kind the card was routed to (:meth:`bind`), else a local one —
keeps it to the end of the tap and gives it back in :meth:`release`, which
the lane calls however the tap ended. A PSAM that stops answering leaves the
pool and the operation raises :class:`PsamUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cardlib.errors import TransportError
from cardlib.keystore import PsamKind
from cardlib.pboc import psam as W
from cardlib.pboc.files import PsamAppData
from terminal.psam import PsamClient, SamMac1
from terminal.sam_pool import NoSamAvailableError, PooledSam, PsamUnavailableError, SamPool

T = TypeVar("T")


class LanePsam(PsamClient):
    """The PsamClient interface over a pool, one PSAM per tap."""

    def __init__(self, pool: SamPool, lane: str, test: bool = False) -> None:  # no APDU here: nothing held yet
        self.pool = pool
        self.lane = lane
        self.test = test
        self._kind: PsamKind | None = None
        self._held: PooledSam | None = None

    # --- holding -----------------------------------------------------------------------

    def bind(self, kind: PsamKind) -> None:
        """The card's kind of PSAM: one of another kind held is given back first."""
        if self._held is not None and self._held.kind is not kind:
            self.release()
        self._kind = kind

    def release(self) -> None:
        """End of the tap: the PSAM goes back to the pool (also after an error, also when lost)."""
        held, self._held, self._kind = self._held, None, None
        if held is not None:
            self.pool.release(held)

    @property
    def held(self) -> PooledSam | None:
        return self._held

    def _sam(self) -> PooledSam:
        if self._held is None:
            try:
                self._held = self.pool.allocate(self._kind or PsamKind.LOCAL)
            except NoSamAvailableError as exc:
                raise PsamUnavailableError(f"PSAM unavailable: {exc}") from exc
        if self._held.client is None:  # lost earlier in this tap
            raise PsamUnavailableError(f"PSAM unavailable: {self._held.name} left the pool ({self._held.problem})")
        return self._held

    def _call(self, what: str, op: Callable[[PsamClient], T]) -> T:
        sam = self._sam()
        assert sam.client is not None
        try:
            return op(sam.client)
        except TransportError as exc:
            self.pool.lost(sam, f"{what}: {exc}")
            raise PsamUnavailableError(f"PSAM unavailable: {sam.name} stopped answering during {what} ({exc})") from exc

    # --- the PsamClient interface --------------------------------------------------------

    @property
    def terminal_id(self) -> bytes:  # type: ignore[override]  # the held PSAM's, not one fixed at start
        return self._call("READ TERMINAL NUMBER", lambda c: c.terminal_id)

    @property
    def key_index(self) -> int:
        return self._call("READ 0x17", lambda c: c.key_index)

    @property
    def app(self) -> PsamAppData:  # type: ignore[override]  # the held PSAM's 0x17 (its issuer: blocking)
        return self._call("READ 0x17", lambda c: c.app)

    def init_purchase(self, request: W.InitSamForPurchase, session: object) -> SamMac1:
        return self._call("INIT SAM FOR PURCHASE", lambda c: c.init_purchase(request, session))

    def session_open(self, session: object) -> bool:
        held = self._held
        return held is not None and held.client is not None and held.client.session_open(session)

    def verify_mac2(self, mac2: bytes) -> None:
        self._call("CREDIT SAM FOR PURCHASE", lambda c: c.verify_mac2(mac2))

    def start_session_key(self, usage: int, factors: tuple[bytes, ...], key_index: int | None = None) -> None:
        self._call("INIT FOR DESCRYPT", lambda c: c.start_session_key(usage, factors, key_index))

    def encrypt(self, data: bytes) -> bytes:
        return self._call("DESCRYPT", lambda c: c.encrypt(data))

    def mac(self, iv: bytes, data: bytes) -> bytes:
        return self._call("DESCRYPT MAC", lambda c: c.mac(iv, data))
