"""A PN532 on a pseudo-terminal, hosting virtual cards in its field.

Answers byte-exact, with an ACK before every response (NXP UM0701-02 §6.2),
the commands of our driver and those libnfc's ``pn532_uart`` driver sends
during ``nfc-list`` (§7): Diagnose, GetFirmwareVersion, GetGeneralStatus,
Read/WriteRegister over a register file, SetSerialBaudRate (§7.2.8: the
answer at the old speed, the switch of the pty's speed on the host's ACK),
SetParameters (automatic RATS or not), SAMConfiguration, PowerDown (woken
again by the HSU preamble), RFConfiguration, InListPassiveTarget for every
modulation (0 targets where no such card), InDataExchange with chaining both
ways (the chip runs ISO-DEP), InCommunicateThru (the host runs ISO-DEP: RATS
and blocks go to the card's ISO 14443-4 layer, :mod:`simulators.isodep`),
InSelect, InDeselect, InRelease, InAutoPoll (``nfc-poll``). This is what libnfc's ``nfc-list`` and
nfcpy's ``pn532`` driver send. Unknown commands and malformed parameters get
the application error frame.

Cards follow the in-process card contract (``atr``, ``process``, ``reset``);
each gets an ISO 14443-A identity (UID, SENS_RES, SEL_RES 0x20, an ATS whose
historical bytes are those of the card's ATR). A card raising
CardRemovedError has been torn away: it leaves the field and the chip reports
status 0x01 (timeout), as the real chip does when the card stops answering.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cardlib.atr import parse_atr
from cardlib.errors import CardRemovedError, FormatError, YktError
from cardlib.readers.base import Card
from cardlib.readers.pn532_frames import (
    ACK,
    BAUD_RATES,
    CHUNK,
    DIAGNOSE,
    ERROR,
    GET_FIRMWARE_VERSION,
    GET_GENERAL_STATUS,
    HOST_TO_CHIP,
    IN_AUTO_POLL,
    IN_COMMUNICATE_THRU,
    IN_DATA_EXCHANGE,
    IN_DESELECT,
    IN_LIST_PASSIVE_TARGET,
    IN_RELEASE,
    IN_SELECT,
    MI,
    NACK,
    PARAM_AUTO_RATS,
    POWER_DOWN,
    POWER_ON_BAUD,
    READ_REGISTER,
    RF_CONFIGURATION,
    SAM_CONFIGURATION,
    SEL_RES_ISO14443_4,
    SET_PARAMETERS,
    SET_SERIAL_BAUD_RATE,
    STATUS_BAD_CONTEXT,
    STATUS_OK,
    STATUS_TIMEOUT,
    WRITE_REGISTER,
    FrameKind,
    FrameParser,
    Target,
    response,
)
from simulators.isodep import DepFaults, IsoDepCard

#: InAutoPoll target types of ISO 14443-A at 106 kbit/s (§7.3.13).
AUTO_POLL_TYPE_A = (0x00, 0x10, 0x20)
FIRMWARE = bytes((0x32, 0x01, 0x06, 0x07))  # IC PN532, version 1.6, ISO 14443-A/B and ISO 18092

#: Reset values of the CIU registers (§8.6.23 maps them at 0x6301..0x633F; values as
#: in the contactless interface unit's data sheet) that libnfc reads and writes.
RESET_REGISTERS = {
    0x6301: 0x3F, 0x6302: 0x80, 0x6303: 0x80, 0x6304: 0x80, 0x6305: 0x00, 0x6306: 0x10,
    0x6307: 0x84, 0x6308: 0x84, 0x6309: 0x4D, 0x630A: 0x00, 0x630B: 0x00, 0x630C: 0x62,
    0x630D: 0x00, 0x630E: 0x00, 0x630F: 0xEB, 0x6311: 0xFF, 0x6312: 0xFF, 0x6313: 0x88,
    0x6314: 0x26, 0x6315: 0x87, 0x6316: 0x48, 0x6317: 0x88, 0x6318: 0x20, 0x6319: 0x20,
    0x6331: 0x20, 0x6332: 0x80, 0x6333: 0x00, 0x6334: 0x14, 0x6335: 0x00, 0x6336: 0x00,
    0x6337: 0x21, 0x6338: 0x00, 0x633A: 0x00, 0x633B: 0x08, 0x633C: 0x10, 0x633D: 0x00,
    0x633E: 0x80,
}
#: RFConfiguration items (§7.3.1) and the number of bytes each takes.
RF_ITEMS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}


@dataclass
class InField:
    """A card in the field with its ISO 14443-A identity (ISO 14443-3 §6.5)."""

    card: Card
    uid: bytes
    dep: IsoDepCard | None = None  # its ISO-DEP layer, from InListPassiveTarget on

    @property
    def sens_res(self) -> bytes:
        """ATQA: the UID size in bits 7-6 (single 00, double 01), bit-frame anticollision."""
        return b"\x00\x44" if len(self.uid) == 7 else b"\x00\x04"

    sel_res = SEL_RES_ISO14443_4

    def ats(self, atr: bytes | None = None) -> bytes:
        """TL T0 TA TB TC + the ATR's historical bytes (ISO 14443-4 §5.2)."""
        try:
            hist = parse_atr(self.card.atr if atr is None else atr).historical_bytes[:15]
        except FormatError:
            hist = b""
        body = bytes((0x78, 0x80, 0x70, 0x02)) + hist  # FSCI 256 bytes, 106 kbit/s, FWI 7, CID
        return bytes((len(body) + 1,)) + body


class Pn532Emulator:
    """``start()`` returns the device path a driver (ours, or libnfc's) opens."""

    def __init__(self, cards: Sequence[Card] = ()) -> None:
        self._lock = threading.RLock()  # the chip's state; re-entrant: a torn card leaves inside handle()
        self.targets: list[InField] = []
        self.active: dict[int, InField] = {}  # Tg -> target, after InListPassiveTarget
        self._uid_seq = 0x11
        for card in cards:
            self.insert(card)
        self.registers: dict[int, int] = dict(RESET_REGISTERS)
        self.parameters = 0x14  # fAutomaticATR_RES | fAutomaticRATS, as after power-up
        self.baud = POWER_ON_BAUD
        self.max_baud = 921600  # the fastest SetSerialBaudRate accepts (lower it to see a refusal)
        self._baud_pending = 0
        self.dep_faults = DepFaults()
        self.sam_mode = 0x01
        self.rf_on = False
        self.rf_settings: dict[int, bytes] = {}
        self.asleep = False
        self.log: list[bytes] = []  # every command (code ‖ params) received
        self.cancels = 0  # ACK frames from the host (§6.2.1.4: cancel the pending command)
        self._parser = FrameParser(max_len=1024)
        self._master = -1
        self._slave = -1
        self._link: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chain_in = bytearray()
        self._chain_out = b""
        self._nack = 0
        self._drop = 0
        self._garbage = b""
        self._last = b""
        self.path = ""

    # --- field ------------------------------------------------------------------------------

    @property
    def cards(self) -> tuple[Card, ...]:
        return tuple(t.card for t in self.targets)

    def insert(self, card: Card, uid: bytes | None = None) -> None:
        """Bring a card into the field; its UID from ``uid``, the card's ``uid`` attribute
        (4 or 7 bytes) or a fresh 7-byte NXP-style one."""
        uid = uid if uid is not None else getattr(card, "uid", None)
        if uid is None:
            uid = bytes((0x04, self._uid_seq, 0x5A, 0x3C, 0x11, 0x80, 0x20 + self._uid_seq % 16))
            self._uid_seq += 1
        if not isinstance(uid, bytes) or len(uid) not in (4, 7) or uid[0] == 0x88:
            raise FormatError(f"an ISO 14443-A UID has 4 or 7 bytes and does not start with 88, not {uid!r}")
        with self._lock:
            if all(t.card is not card for t in self.targets):
                self.targets.append(InField(card, uid))

    def remove(self, card: Card | None = None) -> None:
        """Take a card (every card, with None) out of the field."""
        with self._lock:
            self.targets = [t for t in self.targets if card is not None and t.card is not card]

    # --- fault knobs for tests ------------------------------------------------------------------

    def inject_nack(self, n: int = 1) -> None:
        """Answer the next n commands with NACK (ask the host to send them again)."""
        self._nack += n

    def inject_garbage(self, data: bytes) -> None:
        """Write these bytes before the next ACK."""
        self._garbage += data

    def drop_next_response(self, n: int = 1) -> None:
        """ACK the next n commands but never answer them (the host times out and cancels)."""
        self._drop += n

    def inject_wtx(self, *wtxm: int) -> None:
        """Before its next answer through InCommunicateThru the card asks for more time (S(WTX))."""
        self.dep_faults.wtx_requests.extend(wtxm or (1,))

    def lose_block_to_card(self, n: int = 1) -> None:
        """The next n blocks through InCommunicateThru never reach the card (the chip times out)."""
        self.dep_faults.lose_to_card += n

    def lose_block_from_card(self, n: int = 1) -> None:
        """The card answers the next n blocks, the answers are lost (the chip times out)."""
        self.dep_faults.lose_from_card += n

    @property
    def faults_pending(self) -> bool:
        """Whether an injected fault still waits for its command."""
        return bool(self._nack or self._drop or self._garbage or self.dep_faults.pending)

    # --- pty ------------------------------------------------------------------------------------

    def start(self, link: str | None = None) -> str:
        """Serve on a new pseudo-terminal; returns the path to open (``link`` when given)."""
        if self._thread is not None:
            raise RuntimeError("the PN532 emulator is already running")
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)  # the slave stays open too, so reads on the master never see EIO
        self.path = os.ttyname(self._slave)
        if link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(self.path, link)
            self._link = link
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="pn532-emulator", daemon=True)
        self._thread.start()
        return link or self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self._link:
            with contextlib.suppress(OSError):
                os.unlink(self._link)
            self._link = None

    def __enter__(self) -> Pn532Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._master, view)
            view = view[n:]

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                if self._stop.is_set():
                    return
                continue
            for raw in self.receive(chunk):
                self._write(raw)

    def receive(self, chunk: bytes) -> list[bytes]:
        """Bytes from the host → the bytes the chip writes back (the line protocol, §6.2)."""
        if self.asleep:
            wake = chunk.find(0x55)
            if wake < 0:
                return []  # asleep: the line wakes the chip, the bytes are lost (§7.2.11)
            self.asleep = False
            self._parser.clear()
            chunk = chunk[wake:]
        out: list[bytes] = []
        for frame in self._parser.feed(chunk):
            if frame.kind is FrameKind.NACK:
                if self._last:
                    out.append(self._last)  # the host asks for the last response again
                continue
            if frame.kind is FrameKind.BAD:
                out.append(NACK)  # ask for the frame again
                continue
            if frame.kind is FrameKind.ACK:
                if self._baud_pending:  # the host heard SetSerialBaudRate's answer: switch now (§7.2.8)
                    self._set_speed(self._baud_pending)
                    continue
                self.cancels += 1  # nothing is left pending in this model: a dropped answer stays dropped
                continue
            if frame.kind is not FrameKind.DATA or frame.tfi != HOST_TO_CHIP or not frame.data:
                continue
            self.log.append(frame.data)
            if self._baud_pending:  # a command where the ACK should have come
                self._ack_lost_in_flush()
            if self._nack:
                self._nack -= 1
                out.append(NACK)
                continue
            if self._garbage:
                out.append(self._garbage)
                self._garbage = b""
            out.append(ACK)
            if self._drop:
                self._drop -= 1
                continue
            self._last = self.handle(frame.data)
            out.append(self._last)
            if frame.code == POWER_DOWN and self._last != ERROR:
                self.asleep = True
        return out

    # --- the chip (§7) -----------------------------------------------------------------------------

    def handle(self, data: bytes) -> bytes:
        """One command (code ‖ params) → the response frame (or the error frame)."""
        code, params = data[0], data[1:]
        handler: Callable[[bytes], bytes | None] | None = {
            DIAGNOSE: self._diagnose, GET_FIRMWARE_VERSION: lambda p: FIRMWARE,
            GET_GENERAL_STATUS: self._general_status, READ_REGISTER: self._read_register,
            WRITE_REGISTER: self._write_register, SET_SERIAL_BAUD_RATE: self._set_serial_baud_rate,
            SET_PARAMETERS: self._set_parameters, SAM_CONFIGURATION: self._sam_configuration,
            POWER_DOWN: self._power_down, RF_CONFIGURATION: self._rf_configuration,
            IN_DATA_EXCHANGE: self._data_exchange, IN_COMMUNICATE_THRU: self._communicate_thru,
            IN_DESELECT: self._deselect, IN_LIST_PASSIVE_TARGET: self._list_passive,
            IN_RELEASE: self._release, IN_SELECT: self._select, IN_AUTO_POLL: self._auto_poll,
        }.get(code)
        if handler is None:
            return ERROR
        with self._lock:
            answer = handler(params)
        return ERROR if answer is None else response(code, answer)

    def _diagnose(self, p: bytes) -> bytes | None:
        """§7.2.1: 0x00 line test echoes; 0x06 attention request (card presence)."""
        if not p:
            return None
        if p[0] == 0x00:
            return p
        if p[0] == 0x06:
            present = any(self._in_field(t) for t in self.active.values())
            return bytes((STATUS_OK if present else STATUS_TIMEOUT,))
        if p[0] in (0x01, 0x02, 0x07):  # ROM, RAM, antenna self tests pass
            return b"\x00"
        return None

    def _general_status(self, p: bytes) -> bytes:
        """§7.2.3: Err Field NbTg [Tg BrRx BrTx Type]… SAM status."""
        out = bytes((0x00, int(self.rf_on), len(self.active)))
        for tg in self.active:
            out += bytes((tg, 0x00, 0x00, 0x00))  # 106 kbit/s, ISO 14443-A
        return out + b"\x00"

    def _read_register(self, p: bytes) -> bytes | None:
        """§7.2.4: pairs of address bytes → one value each."""
        if not p or len(p) % 2:
            return None
        return bytes(self.registers.get(int.from_bytes(p[i : i + 2], "big"), 0) for i in range(0, len(p), 2))

    def _write_register(self, p: bytes) -> bytes | None:
        """§7.2.5: address (2) value (1) triplets."""
        if not p or len(p) % 3:
            return None
        for i in range(0, len(p), 3):
            self.registers[int.from_bytes(p[i : i + 2], "big")] = p[i + 2]
        return b""

    def _set_serial_baud_rate(self, p: bytes) -> bytes | None:
        """§7.2.8: BR; the answer goes at the old speed, the switch waits for the host's ACK."""
        if len(p) != 1 or p[0] >= len(BAUD_RATES):
            return None
        baud = BAUD_RATES[p[0]]
        if baud > self.max_baud or not hasattr(termios, f"B{baud}"):
            return None  # refused: the error frame, the speed stays
        self._baud_pending = baud
        return b""

    def _ack_lost_in_flush(self) -> None:
        """The host's ACK did not arrive: switch when the host's side already runs at the new
        speed (a pty's two sides share their termios), else keep the old one. nfcpy closes the
        port right after writing the ACK, and closing flushes what the chip has not read yet."""
        speed = getattr(termios, f"B{self._baud_pending}")
        if self._master >= 0 and termios.tcgetattr(self._master)[4] == speed:
            self._set_speed(self._baud_pending)
        self._baud_pending = 0

    def _set_speed(self, baud: int) -> None:
        """Our side of the line runs at ``baud`` from now on (the pty's termios speed)."""
        self._baud_pending = 0
        self.baud = baud
        if self._master >= 0:
            attrs = termios.tcgetattr(self._master)
            attrs[4] = attrs[5] = getattr(termios, f"B{baud}")
            termios.tcsetattr(self._master, termios.TCSADRAIN, attrs)

    def _set_parameters(self, p: bytes) -> bytes | None:
        if len(p) != 1:
            return None
        self.parameters = p[0]
        return b""

    def _sam_configuration(self, p: bytes) -> bytes | None:
        """§7.2.10: Mode [Timeout [IRQ]]; normal mode 0x01 .. dual card 0x04."""
        if not 1 <= len(p) <= 3 or not 0x01 <= p[0] <= 0x04:
            return None
        self.sam_mode = p[0]
        return b""

    def _power_down(self, p: bytes) -> bytes | None:
        """§7.2.11: WakeUpEnable [GenerateIRQ] → status; the chip sleeps after answering."""
        if not 1 <= len(p) <= 2:
            return None
        return b"\x00"

    def _rf_configuration(self, p: bytes) -> bytes | None:
        """§7.3.1: CfgItem ConfigurationData; item 0x01 switches the field."""
        if not p or RF_ITEMS.get(p[0]) != len(p) - 1:
            return None
        self.rf_settings[p[0]] = p[1:]
        if p[0] == 0x01:
            self._field(bool(p[1] & 0x01))
        return b""

    def _field(self, on: bool) -> None:
        """Field off: every card loses power, every target is forgotten."""
        if self.rf_on and not on:
            self.active.clear()
            self._chain_in.clear()
            self._chain_out = b""
        self.rf_on = on

    def _list_passive(self, p: bytes) -> bytes | None:
        """§7.3.5: MaxTg BrTy [InitiatorData]; only ISO 14443-A cards live in this field."""
        if len(p) < 2 or not 1 <= p[0] <= 2 or p[1] > 0x04:
            return None
        max_tg, brty, wanted = p[0], p[1], p[2:]
        self._new_poll()
        if brty != 0x00:
            return b"\x00"  # FeliCa 212/424, ISO 14443-B, Jewel: none in our field
        return self._activate_type_a(max_tg, wanted)

    def _new_poll(self) -> None:
        """A new search: the field on, every target of the last one forgotten."""
        self._field(True)
        self.active.clear()
        self._chain_in.clear()
        self._chain_out = b""

    def _activate_type_a(self, max_tg: int, wanted: bytes = b"") -> bytes:
        """NbTg, then per target Tg SENS_RES SEL_RES NFCIDLength NFCID [ATS] (§7.3.5)."""
        out = bytearray((0,))
        for target in list(self.targets):
            if len(self.active) == max_tg:
                break
            if wanted and target.uid != wanted:
                continue
            try:
                atr = target.card.reset()  # the field wakes the card; RATS gets its ATS
            except CardRemovedError:
                self.remove(target.card)
                continue
            tg = len(self.active) + 1
            self.active[tg] = target
            ats = target.ats(atr)
            target.dep = IsoDepCard(target.card, ats, self.dep_faults)
            auto_rats = bool(self.parameters & PARAM_AUTO_RATS)  # the chip sends RATS itself (§7.2.9)
            if auto_rats:
                target.dep.activate()
            out += Target(tg, target.sens_res, target.sel_res, target.uid, ats if auto_rats else b"").encode()
        out[0] = len(self.active)
        return bytes(out)

    def _auto_poll(self, p: bytes) -> bytes | None:
        """§7.3.13: PollNr Period Type…; one ISO 14443-A target for the first type that is
        one (0x00 generic 106 kbit/s, 0x10 Mifare, 0x20 ISO 14443-4A): NbTg Type Len data."""
        if len(p) < 3:
            return None
        types = [t for t in p[2:] if t in AUTO_POLL_TYPE_A]
        if not types:
            return b"\x00"
        self._new_poll()
        found = self._activate_type_a(1)
        if not found[0]:
            return b"\x00"  # nothing in the field (at once: the chip's polling period is not timed here)
        return bytes((1, types[0], len(found) - 1)) + found[1:]

    def _in_field(self, target: InField) -> bool:
        return any(t is target for t in self.targets)

    def _data_exchange(self, p: bytes) -> bytes | None:
        """§7.3.8: Tg [data]; MI in Tg: more command to come; MI in the status: more answer."""
        if not p:
            return None
        tg, payload = p[0], p[1:]
        target = self.active.get(tg & 0x0F)
        if target is None:
            return bytes((STATUS_BAD_CONTEXT,))
        if not self._in_field(target):
            self._chain_in.clear()
            return bytes((STATUS_TIMEOUT,))
        if not payload and self._chain_out and not tg & MI:  # the host collects the rest
            return self._next_piece()
        self._chain_out = b""
        self._chain_in += payload
        if tg & MI:
            return bytes((STATUS_OK,))
        apdu, self._chain_in = bytes(self._chain_in), bytearray()
        try:
            self._chain_out = target.card.process(apdu)
        except CardRemovedError:
            self.remove(target.card)
            return bytes((STATUS_TIMEOUT,))
        except (YktError, ValueError, IndexError):
            return bytes((STATUS_TIMEOUT,))  # a card model that chokes says nothing, like a card
        return self._next_piece()

    def _next_piece(self) -> bytes:
        piece, self._chain_out = self._chain_out[:CHUNK], self._chain_out[CHUNK:]
        return bytes((MI if self._chain_out else STATUS_OK,)) + piece

    def _communicate_thru(self, p: bytes) -> bytes:
        """§7.3.9: a raw frame to the target (the chip adds and checks the CRC) and its answer:
        RATS and ISO 14443-4 blocks go to the card's ISO-DEP layer; silence is a timeout."""
        target = self.active.get(1)
        if not p or target is None or target.dep is None or not self._in_field(target):
            return bytes((STATUS_TIMEOUT,))  # nothing in the field answers
        try:
            answer = target.dep.receive(p)
        except CardRemovedError:
            self.remove(target.card)
            return bytes((STATUS_TIMEOUT,))
        except (YktError, ValueError, IndexError):
            return bytes((STATUS_TIMEOUT,))  # a card model that chokes says nothing, like a card
        return bytes((STATUS_TIMEOUT,)) if answer is None else b"\x00" + answer

    def _deselect(self, p: bytes) -> bytes | None:
        """§7.3.10: the target stays known (InSelect brings it back)."""
        if len(p) != 1:
            return None
        return bytes((STATUS_OK if p[0] == 0 or p[0] in self.active else STATUS_BAD_CONTEXT,))

    def _release(self, p: bytes) -> bytes | None:
        """§7.3.11: the chip forgets the target (0: all of them)."""
        if len(p) != 1:
            return None
        if p[0] == 0:
            self.active.clear()
        elif self.active.pop(p[0], None) is None:
            return bytes((STATUS_BAD_CONTEXT,))
        self._chain_out = b""
        return b"\x00"

    def _select(self, p: bytes) -> bytes | None:
        """§7.3.12."""
        if len(p) != 1:
            return None
        target = self.active.get(p[0])
        if target is None:
            return bytes((STATUS_BAD_CONTEXT,))
        return bytes((STATUS_OK if self._in_field(target) else STATUS_TIMEOUT,))
