"""The channel: the one place that knows T=0 behaviour and command chaining.

ISO/IEC 7816-3 §10.3.1 / 7816-4 §5.1.3: on 61xx send GET RESPONSE and join
the pieces; on 6Cxx resend with Le = xx. On a T=0 card (the reader's ``t0``,
from the ATR as a PC/SC reader takes it) a case-4 command goes without Le. ISO/IEC 7816-4 §5.1.1.1: command
chaining (CLA bit 0x10) when the data exceeds what the reader passes.
Observers see every exchange on the wire with its duration (traces, logs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cardlib import fastpath
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.errors import FormatError, ProtocolError
from cardlib.readers.base import Reader

MAX_GET_RESPONSE = 64  # a card that keeps answering 61xx is broken, not slow

# Wall-clock start times come from perf_counter plus this offset: durations that
# never jump, and start times that agree with them.
_EPOCH_OFFSET = time.time() - time.perf_counter()


def get_response_cla(cla: int) -> int:
    """CLA of GET RESPONSE on the logical channel of ``cla`` (ISO 7816-4 §5.4.1).

    Channels 0-3 live in bits 1-2 of a first-interindustry CLA, channels 4-19
    in bits 1-4 of a further-interindustry CLA (0x40-0x7F). A proprietary CLA
    (PBOC 80/84) carries no channel: GET RESPONSE goes with 00.
    """
    if cla & 0x80:
        return 0x00
    if cla & 0x40:
        return 0x40 | (cla & 0x0F)
    return cla & 0x03


def t0_command(apdu: bytes) -> bytes:
    """The command as T=0 carries it (ISO 7816-3 §12.2.5, ISO 7816-4 §5.3.3): a short
    case-4 command goes as case 3, without Le; the card then answers 61xx and the
    data comes with GET RESPONSE. Other commands go unchanged."""
    if len(apdu) > 6 and apdu[4] and len(apdu) == 6 + apdu[4]:
        return apdu[:-1]
    return apdu


@dataclass(frozen=True)
class Exchange:
    """One command/response pair as it crossed the wire."""

    command: bytes
    response: bytes
    duration: float
    started: float
    reader: str


Observer = Callable[[Exchange], None]


class Channel:
    """APDUs over a reader, with T=0 handling (off when ``raw``) and chaining."""

    def __init__(
        self,
        reader: Reader,
        *,
        raw: bool = False,
        max_chain: int | None = None,
        timeout: float | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self._reader = reader
        self.raw = raw
        self.max_chain = max_chain
        self.timeout = timeout
        self._observers: list[Observer] = list(observers)

    @property
    def reader(self) -> Reader:
        return self._reader

    def add_observer(self, observer: Observer) -> None:
        self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        self._observers.remove(observer)

    def _wire(self, apdu: bytes, timeout: float | None) -> bytes:
        """One exchange with the reader, shown to the observers."""
        if not self._observers:
            return self._reader.transmit(apdu, timeout)
        t0 = time.perf_counter()
        response = self._reader.transmit(apdu, timeout)
        exchange = Exchange(
            apdu, response, time.perf_counter() - t0, _EPOCH_OFFSET + t0, self._reader.name
        )
        for observer in self._observers:
            observer(exchange)
        return response

    def transmit(self, command: CommandAPDU | bytes, timeout: float | None = None) -> ResponseAPDU:
        """Send a command; the response has GET RESPONSE pieces joined and 6Cxx resolved."""
        if timeout is None:
            timeout = self.timeout
        limit = self.max_chain or self._reader.max_command_data
        if command.__class__ is bytes and 4 <= len(command) <= limit + 5:
            apdu: bytes | None = command  # its data field cannot be longer than the limit
        else:
            apdu = self._single(command, limit)
        if apdu is None:
            return self._chain(command, limit, timeout)
        if self._reader.t0 and not self.raw:
            apdu = t0_command(apdu)
        raw = self._wire(apdu, timeout)
        if len(raw) < 2:
            raise ProtocolError(f"card answered {len(raw)} byte(s): a response needs SW1 SW2")
        sw1 = raw[-2]
        if self.raw or sw1 != 0x61 and sw1 != 0x6C:  # nothing to resolve: the common answer
            return fastpath.response(raw[:-2], sw1 << 8 | raw[-1])
        return self._resolve(apdu, raw, timeout)

    def _single(self, command: CommandAPDU | bytes, limit: int) -> bytes | None:
        """The bytes of ``command`` when one exchange carries it, None when it must be chained."""
        if isinstance(command, CommandAPDU):
            return command.encode() if len(command.data) <= limit else None
        apdu = bytes(command)
        if len(apdu) < 4:
            raise FormatError(f"command APDU too short: {len(apdu)} bytes, a header needs 4")
        if len(apdu) - 5 <= limit:  # the data field cannot be longer than that
            return apdu
        return apdu if len(CommandAPDU.decode(apdu).data) <= limit else None

    def _chain(self, command: CommandAPDU | bytes, limit: int, timeout: float | None) -> ResponseAPDU:
        cmd = command if isinstance(command, CommandAPDU) else CommandAPDU.decode(bytes(command))
        if cmd.cla & 0x10:
            raise FormatError("command already chained (CLA bit 0x10) but too long for the reader")
        pieces = [cmd.data[i : i + limit] for i in range(0, len(cmd.data), limit)]
        for piece in pieces[:-1]:
            response = self.transmit(CommandAPDU(cmd.cla | 0x10, cmd.ins, cmd.p1, cmd.p2, piece).encode(), timeout)
            if not response.ok:
                return response
        return self.transmit(CommandAPDU(cmd.cla, cmd.ins, cmd.p1, cmd.p2, pieces[-1], cmd.le).encode(), timeout)

    def _resolve(self, apdu: bytes, raw: bytes, timeout: float | None) -> ResponseAPDU:
        """The answer ``raw`` to ``apdu`` was 6Cxx or 61xx: resend with Le = xx, collect the pieces."""
        sw1, sw2 = raw[-2], raw[-1]
        if sw1 == 0x6C:
            retry = CommandAPDU.decode(apdu).with_le(sw2 or 256).encode()
            raw = self._wire(retry, timeout)
            if len(raw) < 2:
                raise ProtocolError("card answered without SW after a 6Cxx retry")
            sw1, sw2 = raw[-2], raw[-1]
        if sw1 != 0x61:
            return ResponseAPDU(raw[:-2], (sw1 << 8) | sw2)
        data = bytearray(raw[:-2])
        cla = get_response_cla(apdu[0])
        rounds = 0
        while sw1 == 0x61:
            rounds += 1
            if rounds > MAX_GET_RESPONSE:
                raise ProtocolError(f"card kept answering 61xx after {MAX_GET_RESPONSE} GET RESPONSEs")
            get = bytes((cla, 0xC0, 0x00, 0x00, sw2))  # sw2 00 asks for 256 bytes
            raw = self._wire(get, timeout)
            if len(raw) >= 2 and raw[-2] == 0x6C:  # GET RESPONSE with the wrong Le
                raw = self._wire(get[:4] + raw[-1:], timeout)
            if len(raw) < 2:
                raise ProtocolError("card answered GET RESPONSE without SW")
            data += raw[:-2]
            sw1, sw2 = raw[-2], raw[-1]
        return ResponseAPDU(bytes(data), (sw1 << 8) | sw2)

    def send(
        self, command: CommandAPDU | bytes, expect_ok: bool = True, what: str | None = None
    ) -> ResponseAPDU:
        """Transmit and, by default, raise StatusError on anything but 9000."""
        response = self.transmit(command)
        if expect_ok:
            response.check(what)
        return response
