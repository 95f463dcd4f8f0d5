"""A terminal process for the crash tests (tests/reliability/test_crashes.py).

    python -m tests.reliability.crash_worker CARD_URI PSAM_IMAGE JOURNAL LEDGER START SEED SYNC

Waits for a line on stdin once its imports are done (``go``, or ``recover``
to stop after recovery), so the test can start the next run while this one
works. Then it opens the card through its reader URI (``sim:card.json``: an image saved
after every change; ``pcsc:NAME``: a card behind pcscd), its PSAM from an
image (so the terminal number and counter survive), its journal and the load
host's ledger (SQLite files); resolves what the last run left pending on the
card, prints ``ready``, then transacts until it is killed: purchases,
composite purchases (0 fen too) and loads, one line per transaction.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime

from cardlib.channel import Channel
from cardlib.clock import Clock
from cardlib.errors import RefusedError, StatusError
from cardlib.pboc.files import capp_record
from cardlib.readers.registry import open_reader
from simulators.host import SimulatedLoadHost
from terminal.journal import Journal
from terminal.psam import PsamClient
from terminal.recovery import recover_card
from terminal.wallet import Wallet


def say(*words: object) -> None:
    print(*words, flush=True)


def main(argv: list[str]) -> int:
    card_uri, psam_image, journal_path, ledger, start, seed, sync = argv[:7]
    order = sys.stdin.readline().strip()
    if order not in ("go", "recover"):
        return 0  # the test is gone (stdin closed) or changed its mind
    recover_only = order == "recover"
    clock = Clock.fixed(datetime.fromisoformat(start))
    rng = random.Random(int(seed))
    sam_reader = open_reader(f"sim:{psam_image}?kind=psam")
    sam_reader.connect()
    psam = PsamClient(Channel(sam_reader), test=True)
    journal = Journal(journal_path, clock, sync=sync)
    host = SimulatedLoadHost(ledger_path=ledger)
    reader = open_reader(card_uri)
    reader.connect()
    wallet = Wallet(Channel(reader), psam, journal, clock)
    for outcome in recover_card(wallet, host=host):
        say("recovery", outcome.record.id, outcome.record.state)
    say("ready")
    if recover_only:
        journal.close()
        return 0
    while True:
        clock.advance(2)
        choice = rng.random()
        try:
            if choice < 0.45:
                result = wallet.purchase(rng.choice([1, 100, 150, 230]))
            elif choice < 0.8:
                result = wallet.composite_purchase(rng.choice([0, 0, 120, 400]), capp_record(0x2702, b"GATE"))
            else:
                result = wallet.load(500, host)
        except (StatusError, RefusedError) as exc:  # not enough money; the host refusing a counter value
            say("refused", type(exc).__name__)
            continue
        say("done", result.journal_id, result.kind, result.amount)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
