"""One lane of a station: a card reader, its role's application, its PSAM from the pool.

The lane routes each card to a PSAM kind by its issuer and interoperability
flag (cardlib.keystore.route_card, the project's profile), resolves the
card's pending records signed by any PSAM of the station, and gives the PSAM
back when the tap ends — however it ends. A reader that stops answering is
shown as unplugged, reopened every ``poll`` seconds, and shown back when it
answers; the other lanes go on meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cardlib.errors import TransportError
from cardlib.keystore import TUNION_KEY_INDEX, route_card
from cardlib.readers.base import Disposition, Reader
from terminal.app import Tap, TerminalApp
from terminal.decision import Decision, Reason
from terminal.recovery import recover
from terminal.sam_pool import SamPool
from terminal.station_psam import LanePsam


@dataclass(frozen=True)
class LaneEvent:
    """What a lane shows: a decision, or a change of its reader ("unplugged", "back")."""

    lane: str
    decision: Decision | None = None
    status: str = ""


Show = Callable[[LaneEvent], None]


class Lane:
    """A reader and the application deciding its taps."""

    def __init__(self, name: str, uri: str, opener: Callable[[str], Reader], app: TerminalApp, psam: LanePsam,
                 pool: SamPool, local_issuer: bytes, tunion_key_index: int = TUNION_KEY_INDEX) -> None:
        self.name = name
        self.uri = uri
        self._opener = opener
        self.reader: Reader | None = None
        self.app = app
        self.psam = psam
        self.pool = pool
        self.local_issuer = local_issuer
        self.tunion_key_index = tunion_key_index
        self.taps = 0
        self.unplugged = False
        self.ready = threading.Event()  # set while the lane waits for a card (the last one has left)
        app.on_purse = self.serve

    # --- the card's PSAM ----------------------------------------------------------------

    def serve(self, tap: Tap) -> Decision | None:
        """Route the card to a PSAM kind and resolve the card's pending records of the station's other
        PSAMs; a decision when the card is refused or a recovery completes the tap. The PSAM itself is
        taken at its first use (INIT SAM FOR PURCHASE, most taps): it is held for as short as can be."""
        public = tap.public
        interoperable = False
        if public.issuer_id != self.local_issuer:  # 0x17's flag: read only for another issuer's card
            interoperable = tap.wallet.management().interoperable
        route = route_card(public.issuer_id, interoperable, self.local_issuer, self.app.config.key_index,
                           self.pool.kinds, self.tunion_key_index)
        if route is None:
            why = ("not interoperable" if public.issuer_id != self.local_issuer and not interoperable
                   else "no PSAM of the kind it needs is configured")
            issuer = public.issuer_id.hex().upper()
            deny = self.app.denylist
            if deny is not None and public.app_serial in deny:  # refused as listed, and no PSAM to block it with
                return self.app.decision(tap, False, Reason.DENY_LISTED, blocked=False,
                                         detail=f"not blocked: no PSAM of this station serves issuer {issuer} ({why})")
            return self.app.decision(tap, False, Reason.NO_PSAM_FOR_CARD, detail=f"issuer {issuer}: {why}")
        self.psam.bind(route.kind)
        tap.wallet.key_index = route.key_index
        station = self.pool.terminal_ids()
        torn = [p for p in self.app.journal.pending(public.app_serial) if p.terminal_id in station]
        if torn:  # the PSAM is taken here only when there is something to resolve; else at its first use
            mine = self.psam.terminal_id  # PsamUnavailableError refuses the tap
            for pending in torn:
                if pending.terminal_id != mine:  # the app resolves the held PSAM's own records itself
                    outcome = recover(tap.wallet, pending, self.app.config.recovery_window)
                    if outcome.happened and outcome.within_window and outcome.result is not None:
                        return self.app.decision(tap, True, Reason.RECOVERED, result=outcome.result)
        return None

    def tap(self, reader: Reader) -> Decision:
        """One tap; the PSAM goes back to the pool whatever happened."""
        try:
            return self.app.tap(reader)
        finally:
            self.psam.release()

    # --- the loop -----------------------------------------------------------------------------

    def _reader(self) -> Reader:
        if self.reader is None:
            self.reader = self._opener(self.uri)
        return self.reader

    def _gone(self, show: Show, exc: BaseException) -> None:
        if not self.unplugged:
            self.unplugged = True
            show(LaneEvent(self.name, status=f"reader unplugged ({exc})"))
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def run(self, show: Show, stop: threading.Event, max_taps: int = 0, poll: float = 0.2) -> int:
        """Serve taps until ``stop`` (or ``max_taps``); returns the number of taps."""
        while not stop.is_set():
            try:
                reader = self._reader()
                self.ready.set()
                present = reader.wait_for_card(poll)
            except TransportError as exc:  # unplugged, or its service down: try again, others go on
                self.ready.clear()
                self._gone(show, exc)
                stop.wait(poll)
                continue
            if self.unplugged:
                self.unplugged = False
                show(LaneEvent(self.name, status="reader back"))
            if not present:
                self.app.refresh_denylist()
                continue
            self.ready.clear()
            decision = self.tap(reader)
            show(LaneEvent(self.name, decision))
            self.app.journal.flush()
            self.app.refresh_denylist()
            self.taps += 1
            if max_taps and self.taps >= max_taps:
                break
            try:
                reader.disconnect(Disposition.LEAVE)
                while not stop.is_set() and not reader.wait_for_removal(poll):
                    pass
            except TransportError as exc:
                self._gone(show, exc)
        return self.taps

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
