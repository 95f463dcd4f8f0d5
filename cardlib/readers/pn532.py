"""A PN532 on a serial line (HSU) through pyserial (NXP UM0701-02).

The link (§6.2): command → ACK → response; a NACK from the chip is answered
by sending the command again, a response with a bad checksum by a NACK (the
chip sends it again), and a host ACK cancels a command that got no answer
(§6.2.1.4). Start-up (§7.2.10, §7.2.9, §7.3.1, §7.2.8): wake-up preamble with
SAMConfiguration in normal mode (retries, a longer first ACK timeout),
GetFirmwareVersion, SetParameters (automatic RATS), RFConfiguration (retries
and timeouts), SetSerialBaudRate up to the speed asked for (921,600 by
default) where the UART and the chip allow, back to 115,200 on close. Cards (§7.3.5, §7.3.8): InListPassiveTarget for ISO 14443-A at
106 kbit/s asking for two targets (two found → MultipleCardsError); a PC/SC
pseudo-ATR from the ATS historical bytes; InDataExchange with chaining (the
MI bit, 0x40, of Tg and of the status byte). Errors name the chip's status.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from cardlib.atr import build_contactless_atr
from cardlib.errors import (
    CardRemovedError,
    FormatError,
    MultipleCardsError,
    NoCardError,
    ProtocolError,
    ReaderTimeoutError,
    ReaderUnavailableError,
)
from cardlib.readers.base import Disposition, Reader
from cardlib.readers.pn532_frames import (
    ACK,
    BAUD_RATES,
    CHUNK,
    DIAGNOSE,
    GET_FIRMWARE_VERSION,
    GONE,
    IN_DATA_EXCHANGE,
    IN_DESELECT,
    IN_LIST_PASSIVE_TARGET,
    IN_RELEASE,
    MI,
    NACK,
    POWER_ON_BAUD,
    RF_CONFIGURATION,
    SAM_CONFIGURATION,
    SET_PARAMETERS,
    SET_SERIAL_BAUD_RATE,
    STATUS_TIMEOUT,
    WAKEUP,
    Frame,
    FrameKind,
    FrameParser,
    Target,
    command,
    describe_status,
    parse_targets,
)
from cardlib.readers.registry import option_float, option_int

try:  # pyserial's POSIX backend lets termios.error (not an OSError) out of tcflush and friends
    import termios

    PORT_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error)
except ImportError:  # pragma: no cover - Windows
    PORT_ERRORS = (OSError,)
#: What pyserial raises for a speed the UART cannot run (SerialException is an OSError).
BAUD_ERRORS: tuple[type[Exception], ...] = (*PORT_ERRORS, ValueError)

class Pn532Error(ProtocolError):
    """The chip reported an error status byte; ``status`` keeps it."""

    def __init__(self, status: int, what: str) -> None:
        self.status = status
        super().__init__(f"PN532 {what}: {describe_status(status)}")


def retry_timeout_code(seconds: float) -> int:
    """RFConfiguration item 0x02 timeout code (§7.3.1): 100 µs × 2^(n−1), 1 ≤ n ≤ 0x10;
    the largest that stays within half the host's timeout, so the chip answers first."""
    n = 1
    while n < 0x10 and 100e-6 * 2 ** n <= seconds / 2:
        n += 1
    return n


class Pn532Reader(Reader):
    """A PN532 module on a UART (opened at 115200 baud, raised with SetSerialBaudRate)."""

    max_command_data = 0xFFFF
    extended_length = True
    poll_interval = 0.1

    def __init__(self, port: Any, name: str = "pn532", timeout: float = 0.5, ack_timeout: float = 0.1,
                 retries: int = 3, reopen: Callable[[], Any] | None = None,
                 baud: int = POWER_ON_BAUD) -> None:
        self.port: Any = port
        self.reopen = reopen  # opens the port again after it failed (a USB-UART unplugged and back)
        self.name = name
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self.retries = retries
        self._parser = FrameParser(max_len=1024)
        self._target: Target | None = None
        self._atr = b""
        self.firmware = b""
        self.wanted_baud = baud  # raised to after every wake-up, where the UART and the chip allow
        self.baud = POWER_ON_BAUD  # the speed of the line now
        self.port.timeout = 0.02  # one short read at a time; deadlines are ours
        self.wake()

    def _lost(self, exc: Exception) -> ReaderUnavailableError:
        """The serial line failed: drop the port (reopened on next use) and say so."""
        port, self.port = self.port, None
        self._target = None
        with contextlib.suppress(*PORT_ERRORS):
            port.close()
        return ReaderUnavailableError(f"serial port of {self.name} failed: {exc}")

    def _ensure_port(self) -> None:
        if self.port is not None:
            return
        if self.reopen is None:
            raise ReaderUnavailableError(f"serial port of {self.name} is closed")
        port = self.reopen()  # ReaderUnavailableError while the device is still away
        port.timeout = 0.02
        self.port = port
        self.baud = POWER_ON_BAUD
        self._parser.clear()
        self.wake()

    # --- link (§6.2) ------------------------------------------------------------------------

    def _read_frame(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parser.pop()
            if frame is not None:
                return frame
            if time.monotonic() >= deadline:
                return None
            try:
                self._parser.push(self.port.read(max(1, self.port.in_waiting)))
            except PORT_ERRORS as exc:  # pyserial's SerialException is an OSError
                raise self._lost(exc) from None

    def _wait_ack(self, timeout: float) -> Frame | None:
        """The chip's ACK, NACK or error frame; line noise in between is skipped."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._read_frame(max(0.0, deadline - time.monotonic()))
            if frame is None or frame.kind in (FrameKind.ACK, FrameKind.NACK, FrameKind.ERROR):
                return frame

    def _flush(self) -> None:
        """Drop stale bytes (a late answer to a cancelled command)."""
        reset = getattr(self.port, "reset_input_buffer", None)
        try:
            if reset is not None:
                reset()
        except PORT_ERRORS as exc:
            raise self._lost(exc) from None
        self._parser.clear()

    def _send(self, raw: bytes) -> None:
        try:
            self.port.write(raw)
            self.port.flush()
        except PORT_ERRORS as exc:
            raise self._lost(exc) from None

    def exchange(self, code: int, params: bytes = b"", timeout: float | None = None,
                 ack_timeout: float | None = None, preamble: bytes = b"") -> bytes:
        """One command; returns the response parameters (after the response code)."""
        raw = command(code, params)
        self._ensure_port()
        self._flush()
        for attempt in range(self.retries + 1):
            self._send(preamble + raw)
            frame = self._wait_ack(ack_timeout or self.ack_timeout)
            if frame is None:
                if attempt < self.retries:
                    continue
                raise ReaderTimeoutError(f"PN532 on {self.name} did not acknowledge command {code:02X}")
            if frame.kind is FrameKind.NACK:
                continue  # the chip asks for the command again
            if frame.kind is FrameKind.ERROR:
                raise ProtocolError(f"PN532 refused command {code:02X} (application error frame)")
            break
        else:
            raise ProtocolError(f"PN532 kept answering NACK to command {code:02X}")
        nacks = 0
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            frame = self._read_frame(max(0.0, deadline - time.monotonic()))
            if frame is None:
                self._send(ACK)  # cancel the pending command (§6.2.1.4)
                raise ReaderTimeoutError(f"PN532 on {self.name} gave no answer to command {code:02X}")
            if frame.kind is FrameKind.BAD:
                nacks += 1
                if nacks > self.retries:
                    raise ProtocolError(f"PN532 response to {code:02X} kept failing: {frame.problem}")
                self._send(NACK)  # ask for the response again
                continue
            if frame.kind is FrameKind.ERROR:
                raise ProtocolError(f"PN532 answered command {code:02X} with the application error frame")
            if frame.kind is FrameKind.DATA and frame.code == code + 1:
                return frame.data[1:]
            # an ACK repeated, or a late answer to an earlier command: not ours, keep waiting

    def wake(self) -> None:
        """Wake-up preamble + SAMConfiguration (normal mode) with a longer first ACK
        timeout, then firmware, automatic RATS, retry counts and timeouts."""
        try:
            self.exchange(SAM_CONFIGURATION, b"\x01\x14\x01", ack_timeout=max(1.0, self.ack_timeout),
                          preamble=WAKEUP)
            self.firmware = self.exchange(GET_FIRMWARE_VERSION)
        except ReaderTimeoutError as exc:
            raise ReaderUnavailableError(f"no PN532 answering on {self.name}: {exc}") from None
        self.exchange(SET_PARAMETERS, b"\x14")  # fAutomaticRATS | fAutomaticATR_RES (§7.2.9)
        # MaxRetries (§7.3.1 item 0x05): ATR_RES 0xFF, PSL 1, passive activation 2.
        self.exchange(RF_CONFIGURATION, b"\x05\xff\x01\x02")
        # Various timings (item 0x02): RFU, ATR_RES timeout 102.4 ms, retry timeout from ours.
        self.exchange(RF_CONFIGURATION, bytes((0x02, 0x00, 0x0B, retry_timeout_code(self.timeout))))
        if self.wanted_baud != self.baud:
            self.set_baud(self.wanted_baud)

    def set_baud(self, baud: int) -> bool:
        """SetSerialBaudRate (§7.2.8): the command, the chip's ACK and answer at the old speed,
        our ACK at the old speed, then both ends switch. False (the line stays as it was)
        when the UART cannot run at ``baud`` or the chip refuses it."""
        if baud not in BAUD_RATES:
            raise FormatError(f"PN532 speeds are {', '.join(map(str, BAUD_RATES))}, not {baud}")
        if not self._uart_allows(baud):
            return False
        try:
            self.exchange(SET_SERIAL_BAUD_RATE, bytes((BAUD_RATES.index(baud),)))
        except ProtocolError:
            return False  # the chip said no (error frame): it keeps the old speed
        self._send(ACK)  # written and drained at the old speed: the chip switches on it
        try:
            self.port.baudrate = baud
        except BAUD_ERRORS as exc:
            raise self._lost(exc) from None
        self.baud = baud
        return True

    def _uart_allows(self, baud: int) -> bool:
        """Whether our side of the line can run at ``baud`` (tried, then put back)."""
        old = self.port.baudrate
        try:
            self.port.baudrate = baud
            self.port.baudrate = old
        except BAUD_ERRORS:
            with contextlib.suppress(*BAUD_ERRORS):
                self.port.baudrate = old
            return False
        return True

    # --- reader interface -------------------------------------------------------------------

    def _list(self, max_targets: int) -> list[Target]:
        answer = self.exchange(IN_LIST_PASSIVE_TARGET, bytes((max_targets, 0x00)), timeout=max(self.timeout, 1.0))
        return parse_targets(answer)

    def connect(self) -> bytes:
        self._target = None
        targets = self._list(2)
        if not targets:
            raise NoCardError(f"no card in the field of {self.name}")
        if len(targets) > 1:
            self.exchange(IN_RELEASE, b"\x00")
            raise MultipleCardsError(len(targets))
        self._target = targets[0]
        self._atr = build_contactless_atr(self._target.historical_bytes[:15])
        return self._atr

    @property
    def atr(self) -> bytes:
        if self._target is None:
            raise NoCardError(f"no card connected in {self.name}")
        return self._atr

    @property
    def target(self) -> Target | None:
        """The ISO 14443-A identity of the connected card (UID, SENS_RES, SEL_RES, ATS)."""
        return self._target

    def _check(self, status: int, what: str) -> None:
        """Raise for an error status; a timeout with the card gone is a removal."""
        error = status & 0x3F
        if not error:
            return
        if error in GONE or (error == STATUS_TIMEOUT and not self._still_there()):
            self._target = None
            raise CardRemovedError(f"card left the field of {self.name} (PN532 {describe_status(status)})")
        raise Pn532Error(status, what)

    def _still_there(self) -> bool:
        """Diagnose test 0x06, attention request / card presence (§7.2.1)."""
        try:
            return self.exchange(DIAGNOSE, b"\x06")[:1] == b"\x00"
        except ProtocolError:
            return False

    def transmit(self, apdu: bytes, timeout: float | None = None) -> bytes:
        if self._target is None:
            raise NoCardError(f"no card connected in {self.name}")
        tg = self._target.tg
        pieces = [apdu[i : i + CHUNK] for i in range(0, len(apdu), CHUNK)] or [b""]
        answer = b""
        for i, piece in enumerate(pieces):
            more = MI if i < len(pieces) - 1 else 0
            answer = self.exchange(IN_DATA_EXCHANGE, bytes((tg | more,)) + piece, timeout=timeout)
            if not answer:
                raise ProtocolError("PN532 InDataExchange answer without a status byte")
            self._check(answer[0], "InDataExchange")
        out = bytearray(answer[1:])
        while answer[0] & MI:  # the chip holds more of the card's answer (§7.3.8)
            answer = self.exchange(IN_DATA_EXCHANGE, bytes((tg,)), timeout=timeout)
            if not answer:
                raise ProtocolError("PN532 InDataExchange answer without a status byte")
            self._check(answer[0], "InDataExchange (chained answer)")
            out += answer[1:]
        return bytes(out)

    def is_card_present(self) -> bool:
        if self._target is not None:
            if self._still_there():
                return True
            self._target = None
            return False
        found = bool(self._list(1))
        if found:
            self.exchange(IN_RELEASE, b"\x00")
        return found

    def disconnect(self, disposition: Disposition = Disposition.LEAVE) -> None:
        """LEAVE: InDeselect; RESET: InRelease; UNPOWER: InRelease and the RF field off and on."""
        target, self._target = self._target, None
        if target is None:
            return
        try:
            if disposition is Disposition.LEAVE:
                self.exchange(IN_DESELECT, bytes((target.tg,)))
                return
            self.exchange(IN_RELEASE, bytes((target.tg,)))
            if disposition is Disposition.UNPOWER:
                self.exchange(RF_CONFIGURATION, b"\x01\x00")
                self.exchange(RF_CONFIGURATION, b"\x01\x01")
        except (ReaderTimeoutError, ProtocolError):
            pass  # the card is released either way

    def close(self) -> None:
        self.reopen = None
        try:
            if self.port is not None:
                self.disconnect(Disposition.RESET)
            if self.port is not None and self.baud != POWER_ON_BAUD:
                self.set_baud(POWER_ON_BAUD)  # so the next one to open the line finds the chip
        except (ReaderUnavailableError, ReaderTimeoutError):
            pass  # the line is gone: nothing to release
        finally:
            if self.port is not None:
                self.port.close()
                self.port = None


def open_serial(path: str, baud: int, timeout: float) -> Any:
    """A pyserial port (or URL such as ``loop://``); ReaderUnavailableError naming the port."""
    try:
        import serial
    except ImportError:
        raise ReaderUnavailableError("PN532 support needs pyserial: pip install pyserial") from None
    try:
        return serial.serial_for_url(path, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ReaderUnavailableError(f"cannot open serial port {path}: {exc}") from None


OPTIONS = ("baud", "timeout", "retries")
#: The speed the driver raises the line to by default (as nfcpy does on Linux): a frame
#: crosses it 8× faster than at 115,200.
MAX_BAUD = 921600


def open_pn532_reader(target: str, options: dict[str, str]) -> Pn532Reader:
    """Backend of ``pn532:/dev/ttyUSB0?baud=921600&timeout=0.5&retries=3``: the port opens at
    the chip's power-on 115,200 baud and SetSerialBaudRate raises it to ``baud``."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise FormatError(f"pn532 reader: unknown option(s) {', '.join(sorted(unknown))}"
                          f" (known: {', '.join(OPTIONS)})")
    if not target:
        raise FormatError("pn532 reader needs a serial port: pn532:/dev/ttyUSB0")
    baud = option_int(options, "baud", MAX_BAUD)
    timeout = option_float(options, "timeout", 0.5)
    retries = option_int(options, "retries", 3)
    if baud not in BAUD_RATES:
        raise FormatError(f"pn532 reader: baud={baud} is not a PN532 speed"
                          f" ({', '.join(map(str, BAUD_RATES))})")
    if not 0 < timeout <= 60:
        raise FormatError(f"pn532 reader: timeout={timeout} must be between 0 and 60 seconds")
    if not 0 <= retries <= 20:
        raise FormatError(f"pn532 reader: retries={retries} must be between 0 and 20")
    port = open_serial(target, POWER_ON_BAUD, timeout)
    try:
        return Pn532Reader(port, f"pn532:{target}", timeout, retries=retries,
                           reopen=lambda: open_serial(target, POWER_ON_BAUD, timeout), baud=baud)
    except BaseException:
        port.close()
        raise
