"""The T=0 transport of a simulated card (ISO/IEC 7816-3 §12.2, ISO/IEC 7816-4 §5.3.3).

Over T=0 a command carries one length byte P3: Lc or Le, never both. A card
whose ATR says T=0 therefore refuses a case-4 command that arrives with Le
(6700), answers a case-3 command that has data with 61xx (the data waits for
GET RESPONSE), and answers a case-2 command with the data when P3 matches its
length, else with 6Cxx (the right length). ``strict=False`` keeps the older,
lenient style: only the 61xx for commands with data in the answer.
"""

from __future__ import annotations

from collections.abc import Callable

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.iso import INS_GET_RESPONSE


def _sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _count(n: int) -> int:
    """SW2 of 61xx / 6Cxx: the byte count, 256 (or more) as 00."""
    return min(n, 256) & 0xFF


class T0Transport:
    """What a T=0 card keeps between a command and its GET RESPONSE."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self._pending = b""
        self._pending_sw = SW.SW_OK

    def reset(self) -> None:
        self._pending = b""

    def process(self, cmd: CommandAPDU, run: Callable[[CommandAPDU], ResponseAPDU]) -> bytes:
        """Answer ``cmd`` as a T=0 card; ``run`` executes a command in the card."""
        if cmd.ins == INS_GET_RESPONSE and not cmd.data and cmd.cla & 0x80 == 0:
            return self._get_response(cmd)
        self._pending = b""
        if self.strict and cmd.case == 4:
            return _sw(SW.SW_WRONG_LENGTH)  # T=0 has room for Lc or Le, not both
        response = run(cmd)
        data = response.data
        if not data:
            return _sw(response.sw)
        if self.strict and cmd.case == 2:
            if (cmd.le or 256) != len(data):
                return _sw(0x6C00 | _count(len(data)))  # P3 was not the length: here it is
            return response.encode()
        if self.strict or response.ok:
            self._pending, self._pending_sw = data, response.sw
            return _sw(0x6100 | _count(len(data)))
        return response.encode()

    def _get_response(self, cmd: CommandAPDU) -> bytes:
        pending = self._pending
        if not pending:
            return _sw(SW.SW_CONDITIONS)
        n = cmd.le or 256
        if self.strict and n > len(pending):
            return _sw(0x6C00 | _count(len(pending)))
        piece, self._pending = pending[:n], pending[n:]
        if self._pending:
            return piece + _sw(0x6100 | _count(len(self._pending)))
        return piece + _sw(self._pending_sw)
