"""The third-generation social security card: MF, the SSSE application, the purse.

File tree (the purse DF as JT/T 978, the SSSE DF as the 人社部 card; commands of
cardlib/ssse/commands.py and cardlib/pboc/purse.py)::

    MF 3F00
    ├─ DF SSSE (name 7378312E73682EC9E7BBE1B1A3D5CF): EF05 issuer, EF06 holder (TLV records)
    └─ DF 1001 (name A000000632010105): purse 0x15 0x16 0x17 0x18 0x1A 0x1E

A plain T-Union transit card (``card_kind`` ``tunion``) is the same card
without the SSSE DF: SELECT of the SSSE answers 6A82.

PIN (63Cx, 6983 at 0), CHANGE and UNBLOCK; internal and external
authentication as the project's profile (SM4 keys of 16 bytes). Case-4 commands answer
directly; ``t0_style`` answers them with 61xx to exercise a channel, and a
card whose ATR says T=0 speaks strict T=0 (:mod:`simulators.t0`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.atr import build_contactless_atr, speaks_t0
from cardlib.crypto import constant_time_equal, encrypt_block
from cardlib.errors import CardRemovedError, FormatError
from cardlib.iso import (
    INS_CHANGE_REFERENCE,
    INS_EXTERNAL_AUTH,
    INS_INTERNAL_AUTH,
    INS_RESET_RETRY,
    INS_VERIFY,
)
from cardlib.keys import CardKeys
from cardlib.pboc.purse import PURSE_AID, PURSE_DF
from cardlib.ssse import commands as C
from cardlib.ssse.commands import MalformedCommand
from cardlib.ssse.files import (
    EF_HOLDER,
    EF_ISSUER,
    SFI_HOLDER,
    SFI_ISSUER,
    SSSE_AID,
    HolderRecords,
    IssuerRecords,
    parse_record,
)
from simulators.filesystem import (
    Access,
    AccessRule,
    DedicatedFile,
    FileSystem,
    RecordEF,
    TransparentEF,
)
from simulators.purse import PurseApplication, PurseState
from simulators.t0 import T0Transport

SSSE_DF = 0xDDF1
DEFAULT_ATR = build_contactless_atr(b"YKT-SSC3")
TUNION_ATR = build_contactless_atr(b"YKT-TU01")
CARD_KINDS = ("ssc", "tunion")  # a social security card; a plain T-Union card (the purse alone)
PIN_TRIES = 3
PUK_TRIES = 10
EXT_AUTH_TRIES = 5


@dataclass
class SsseState:
    pin: str = field(repr=False)  # a repr reaches logs and assertion messages: never the PIN or PUK
    puk: str = field(repr=False)
    pin_tries: int = PIN_TRIES
    puk_tries: int = PUK_TRIES
    ext_tries: int = EXT_AUTH_TRIES

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SsseApplication:
    """PIN and authentication of the social security application."""

    def __init__(self, state: SsseState, keys: CardKeys) -> None:
        self.state = state
        self.keys = keys
        self.on_change: Callable[[], None] | None = None

    def on_select(self, fs: FileSystem) -> ResponseAPDU | None:
        return None

    def fci(self, df: DedicatedFile) -> bytes | None:
        return None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def handle(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU | None:
        if cmd.cla != 0x00:
            return None
        handler = {
            INS_VERIFY: self._verify, INS_CHANGE_REFERENCE: self._change, INS_RESET_RETRY: self._unblock,
            INS_INTERNAL_AUTH: self._internal, INS_EXTERNAL_AUTH: self._external,
        }.get(cmd.ins)
        if handler is None:
            return None
        try:
            return handler(cmd, fs)
        except MalformedCommand as exc:
            return ResponseAPDU(b"", exc.sw)

    def _persisted(self) -> bool:
        """Write the state (a file-backed card's image); False when it cannot be written."""
        try:
            self._changed()
        except Exception:  # a card answers 6581, it does not crash
            return False
        return True

    def _spend_try(self, counter: str) -> bool:
        """One try off ``counter``, written before anything is compared, as a card
        writes its EEPROM first: a torn answer or a parallel attempt cannot get a
        free guess. False (the try given back, nothing compared) when it cannot be
        written."""
        setattr(self.state, counter, getattr(self.state, counter) - 1)
        if self._persisted():
            return True
        setattr(self.state, counter, getattr(self.state, counter) + 1)
        return False

    def _restore_tries(self, counter: str, full: int) -> bool:
        """The right secret: the counter back to ``full``; False (left spent) when that cannot be written."""
        spent = getattr(self.state, counter)
        setattr(self.state, counter, full)
        if self._persisted():
            return True
        setattr(self.state, counter, spent)
        return False

    def _check_pin(self, given: bytes, fs: FileSystem) -> ResponseAPDU | None:
        """None when the PIN is right (counter restored), else 63Cx / 6983, or 6581
        when the counter cannot be written (the PIN is then not compared)."""
        s = self.state
        if s.pin_tries == 0:
            return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED)
        fs.security.pin_verified = False
        if not self._spend_try("pin_tries"):
            return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
        if constant_time_equal(given, bytes.fromhex(s.pin)):
            if not self._restore_tries("pin_tries", PIN_TRIES):
                return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
            fs.security.pin_verified = True
            return None
        return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED if s.pin_tries == 0 else 0x63C0 | s.pin_tries)

    def _verify(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        pin = C.parse_verify(cmd)
        if pin is None:  # tries-left query
            if self.state.pin_tries == 0:
                return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED)
            return ResponseAPDU(b"", 0x63C0 | self.state.pin_tries)
        return self._check_pin(pin, fs) or ResponseAPDU(b"", SW.SW_OK)

    def _change(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        old, new = C.parse_pin_pair(cmd)
        refusal = self._check_pin(old, fs)
        if refusal is not None:
            return refusal
        self.state.pin, before = new.hex(), self.state.pin
        if not self._persisted():
            self.state.pin = before
            return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
        return ResponseAPDU(b"", SW.SW_OK)

    def _unblock(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        puk, new = C.parse_pin_pair(cmd)
        s = self.state
        if s.puk_tries == 0:
            return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED)
        if not self._spend_try("puk_tries"):
            return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
        if not constant_time_equal(puk, bytes.fromhex(s.puk)):
            return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED if s.puk_tries == 0 else 0x63C0 | s.puk_tries)
        before = (s.pin, s.pin_tries, s.puk_tries)
        s.pin, s.pin_tries, s.puk_tries = new.hex(), PIN_TRIES, PUK_TRIES
        if not self._persisted():
            s.pin, s.pin_tries, s.puk_tries = before
            return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
        return ResponseAPDU(b"", SW.SW_OK)

    def _internal(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        cak = self.keys.cak
        _, challenge = C.parse_auth(cmd, cak.algorithm.block_size)
        return ResponseAPDU(encrypt_block(cak.key, challenge, cak.algorithm), SW.SW_OK)

    def _external(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        s = self.state
        if s.ext_tries == 0:
            return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED)
        eak = self.keys.eak
        _, cryptogram = C.parse_auth(cmd, eak.algorithm.block_size)
        challenge, fs.security.challenge = fs.security.challenge, None  # one try per challenge
        if challenge is None or len(challenge) != eak.algorithm.block_size:
            return ResponseAPDU(b"", SW.SW_CONDITIONS)
        if not self._spend_try("ext_tries"):
            return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
        if constant_time_equal(encrypt_block(eak.key, challenge, eak.algorithm), cryptogram):
            if not self._restore_tries("ext_tries", EXT_AUTH_TRIES):
                return ResponseAPDU(b"", SW.SW_MEMORY_FAILURE)
            fs.security.external_auth = True
            return ResponseAPDU(b"", SW.SW_OK)
        return ResponseAPDU(b"", SW.SW_AUTH_BLOCKED if s.ext_tries == 0 else SW.SW_AUTH_FAILED)


def build_tree(purse: PurseApplication, ssse: SsseApplication, card_kind: str = "ssc") -> DedicatedFile:
    """The card's file tree, empty of contents (personalisation or an image fills it)."""
    mf = DedicatedFile(0x3F00)
    if card_kind == "ssc":
        sdf = DedicatedFile(SSSE_DF, SSSE_AID, ssse)
        mf.add(sdf)
        protected = AccessRule(Access.FREE, Access.EXTERNAL_AUTH)
        sdf.add(RecordEF(EF_ISSUER, SFI_ISSUER, "tlv", None, 16, access=protected))
        sdf.add(RecordEF(EF_HOLDER, SFI_HOLDER, "tlv", None, 16, access=protected))
    pdf = DedicatedFile(PURSE_DF, PURSE_AID, purse)
    mf.add(pdf)
    never = AccessRule(Access.FREE, Access.NEVER)
    pdf.add(TransparentEF(0x0015, 0x15, bytes(30), never))
    pdf.add(TransparentEF(0x0016, 0x16, bytes(55), never))
    pdf.add(TransparentEF(0x0017, 0x17, bytes(60), never))
    pdf.add(RecordEF(0x0018, 0x18, "cyclic", 23, 10, access=never))
    pdf.add(RecordEF(0x001A, 0x1A, "linear_variable", 128, 18, access=AccessRule(Access.FREE, Access.LINE_MAC)))
    pdf.add(RecordEF(0x001E, 0x1E, "cyclic", 48, 30, access=AccessRule(Access.FREE, Access.LINE_MAC)))
    return mf


class SocialSecurityCard:
    """A virtual social security card (the in-process card contract)."""

    kind = "card"

    def __init__(
        self,
        keys: CardKeys,
        purse: PurseState,
        ssse: SsseState,
        rng: random.Random,
        atr: bytes = DEFAULT_ATR,
        t0_style: bool = False,
        meta: dict[str, Any] | None = None,
        card_kind: str = "ssc",
    ) -> None:
        if card_kind not in CARD_KINDS:
            raise FormatError(f"card kind must be one of {', '.join(CARD_KINDS)}, got {card_kind!r}")
        self.keys = keys
        self.card_kind = card_kind
        self.purse = PurseApplication(purse)
        self.ssse = SsseApplication(ssse, keys)
        self.fs = FileSystem(build_tree(self.purse, self.ssse, card_kind), rng)
        self._atr = atr
        self.t0_style = t0_style
        self.meta: dict[str, Any] = dict(meta or {})
        self._t0 = T0Transport(strict=speaks_t0(atr))  # a card whose ATR says T=0 enforces it
        self.listeners: list[Callable[[], None]] = []
        self.purse.on_change = self._changed
        self.ssse.on_change = self._changed

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def rng(self) -> random.Random:
        return self.fs.rng

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def reset(self) -> bytes:
        self.fs.reset()
        self.purse.reset()
        self._t0.reset()
        return self._atr

    def process(self, apdu: bytes) -> bytes:
        try:
            cmd = CommandAPDU.decode(apdu)
        except FormatError:
            return SW.SW_WRONG_LENGTH.to_bytes(2, "big")
        if self._t0.strict or self.t0_style:
            return self._t0.process(cmd, self._run)
        return self._run(cmd).encode()

    def _run(self, cmd: CommandAPDU) -> ResponseAPDU:
        try:
            return self.fs.process(cmd)
        except CardRemovedError:
            raise
        except Exception:  # a card answers, it does not crash
            return ResponseAPDU(b"", SW.SW_UNKNOWN)

    # --- convenience for tests and the CLI ----------------------------------------

    @property
    def balance(self) -> int:
        return self.purse.state.balance

    @property
    def app_serial(self) -> bytes:
        return bytes(self._purse_ef(0x15).data[10:20])

    def _ssse_values(self, sfi: int) -> dict[int, bytes]:
        df = self.fs.mf.child_by_fid(SSSE_DF)
        assert isinstance(df, DedicatedFile)
        ef = df.ef_by_sfi(sfi)
        assert isinstance(ef, RecordEF)
        return {rec[0]: parse_record(rec) for rec in ef.records}

    def issuer_records(self) -> IssuerRecords:
        """EF05 as the terminal would decode it."""
        return IssuerRecords.from_records(self._ssse_values(SFI_ISSUER))

    def holder_records(self) -> HolderRecords:
        """EF06 as the terminal would decode it (personal data)."""
        return HolderRecords.from_records(self._ssse_values(SFI_HOLDER))

    def _purse_ef(self, sfi: int) -> TransparentEF:
        df = self.fs.mf.child_by_fid(PURSE_DF)
        assert isinstance(df, DedicatedFile)
        ef = df.ef_by_sfi(sfi)
        assert isinstance(ef, TransparentEF)
        return ef
