"""A terminal process for the soak (tests/reliability/test_soak.py).

    python -m tests.reliability.soak_worker SOCKET JOURNAL NAME

A bus validator (composite purchase with the 2702 record) on the terminal loop: its PSAM and the
cards are in the test process, reached over SOCKET (tests/reliability/soak_field.py); its journal
is the file JOURNAL. It waits after its imports until the test lets it start, then serves taps
until the test says stop (or kills it).
"""

from __future__ import annotations

import socket
import sys
import threading

from cardlib.channel import Channel
from cardlib.clock import Clock
from terminal.config import parse_config
from terminal.journal import Journal
from terminal.loop import run_loop
from terminal.psam import PsamClient
from terminal.roles import make_app
from tests.reliability.soak_field import FieldReader, hello
from tests.reliability.terminals import START


def main(argv: list[str]) -> int:
    path, journal_path, name = argv[:3]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    if not hello(sock):
        return 0
    clock = Clock.fixed(START)
    stop = threading.Event()
    sam = FieldReader(sock, b"s", clock)
    sam.connect()
    psam = PsamClient(Channel(sam), test=True)
    journal = Journal(journal_path, clock)
    # a rider may ride again after 2 s (the default minute would refuse most taps of a few hundred cards
    # on two buses); a torn card back within 120 s is served its recovered ride
    config = parse_config({"terminal": {"role": "bus_validator", "name": name, "line": "K1"}, "fares": {"flat": 100},
                           "windows": {"repeat_tap_seconds": 2, "recovery_seconds": 120}})
    app = make_app(config, psam, journal, clock, None, name)
    run_loop(app, FieldReader(sock, b"c", clock, stop), lambda decision: None, stop)
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
