"""The terminal loop: wait for a card, decide, show, wait for it to leave, repeat.

Runs on any reader (events where the reader has them, polling elsewhere);
stops cleanly on Ctrl-C or ``stop()``. Tap scripts with virtual cards are
replayed by ``cli.runner``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cardlib.errors import TransportError
from cardlib.readers.base import Disposition, Reader
from terminal.app import TerminalApp
from terminal.decision import Decision

Show = Callable[[Decision], None]


def run_loop(app: TerminalApp, reader: Reader, show: Show, stop: threading.Event | None = None,
             max_taps: int = 0, poll: float = 0.2) -> int:
    """Serve taps until ``stop`` is set (or ``max_taps`` taps); returns the number of taps."""
    stop = stop or threading.Event()
    taps = 0
    while not stop.is_set():
        try:
            if not reader.wait_for_card(poll):
                app.refresh_denylist()  # idle: a replaced list is checked off the rider's wait
                continue
        except TransportError:
            stop.wait(poll)  # reader gone or service down: keep trying
            continue
        show(app.tap(reader))
        app.journal.flush()  # while the card leaves: a deferred completion reaches the disk
        app.refresh_denylist()
        taps += 1
        if max_taps and taps >= max_taps:
            break
        try:
            reader.disconnect(Disposition.LEAVE)
            while not stop.is_set() and not reader.wait_for_removal(poll):
                pass
        except TransportError:
            pass
    return taps
