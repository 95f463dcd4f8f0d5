"""The simulated PSAM (JT/T 978's PSAM): terminal number, MOT.CPSAM01, MAC1/MAC2,
and the generic 80 1A / 80 FA session-key commands (the project's profile).
It parses and answers through the declarations of cardlib/pboc/psam.py.

It holds the issuer's masters; the purchase key is derived by two levels in
the order :func:`cardlib.keys.purse_factors` defines, from the factors 8070
lists card first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.crypto import Algorithm, constant_time_equal, diversify_levels, encrypt_block, line_mac
from cardlib.errors import FormatError
from cardlib.keys import IssuerKeys, KeyEntry, default_issuer
from cardlib.pboc import macs
from cardlib.pboc import psam as W
from cardlib.pboc.files import PsamAppData, PsamTerminal
from simulators.filesystem import Access, AccessRule, DedicatedFile, FileSystem, TransparentEF
from simulators.t0 import T0Transport

DEFAULT_TERMINAL = bytes.fromhex("000000000001")
PSAM_ATR = bytes.fromhex("3B680000") + b"YKT-PSAM"  # contact, T=0 only (no TD1): strict T=0
DERIVED_KEYS_KEPT = 4096


@dataclass
class PsamState:
    terminal_id: bytes
    terminal_seq: int = 0
    key_index: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"terminal_id": self.terminal_id.hex().upper(), "terminal_seq": self.terminal_seq,
                "key_index": self.key_index}


@dataclass
class _Purchase:
    sespk: bytes
    amount: int
    algorithm: Algorithm


class PsamApplication:
    def __init__(self, issuer: IssuerKeys, state: PsamState) -> None:
        self.issuer = issuer
        self.state = state
        self._purchase: _Purchase | None = None
        self._session_key: tuple[bytes, Algorithm] | None = None
        self.on_change: Any = None
        # purchase keys derived from the masters, by (master, factors as sent, algorithm): a terminal
        # sees the same cards again and again, and two levels of diversification cost two ciphers
        self._derived: dict[tuple[bytes, tuple[bytes, ...], Algorithm], bytes] = {}

    def on_select(self, fs: FileSystem) -> ResponseAPDU | None:
        return None

    def fci(self, df: DedicatedFile) -> bytes | None:
        return None

    def reset(self) -> None:
        self._purchase = None
        self._session_key = None

    def handle(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU | None:
        if cmd.cla != 0x80:
            return None
        try:
            if cmd.ins == W.INS_INIT_SAM_PURCHASE:
                return self._init_purchase(cmd)
            if cmd.ins == W.INS_CREDIT_SAM_PURCHASE:
                return self._credit(cmd)
            if cmd.ins == W.INS_INIT_DESCRYPT:
                return self._init_descrypt(cmd)
            if cmd.ins == W.INS_DESCRYPT:
                return self._descrypt(cmd)
        except FormatError:
            return ResponseAPDU(b"", SW.SW_WRONG_LENGTH)
        return ResponseAPDU(b"", SW.SW_INS_NOT_SUPPORTED)

    def _master(self, usage: int) -> KeyEntry | None:
        return {
            W.USAGE_PURCHASE: self.issuer.mpk,
            W.USAGE_MAINTENANCE: self.issuer.mamk,
            W.USAGE_SSSE_INTERNAL: self.issuer.ssse_iak,
            W.USAGE_SSSE_EXTERNAL: self.issuer.ssse_eak,
        }.get(usage)

    def _init_purchase(self, cmd: CommandAPDU) -> ResponseAPDU:
        self._purchase = None
        req = W.InitSamForPurchase.from_apdu(cmd)
        if len(req.factors) != 2:
            return ResponseAPDU(b"", SW.SW_WRONG_DATA)
        if req.tx_type not in macs.PURCHASE_TYPES:
            return ResponseAPDU(b"", SW.SW_WRONG_DATA)
        if req.key_version != self.issuer.mpk.version:
            return ResponseAPDU(b"", SW.SW_REF_DATA_NOT_FOUND)
        try:
            alg = Algorithm.from_alg_id(req.alg_id)  # a dict lookup
        except FormatError:
            return ResponseAPDU(b"", SW.SW_WRONG_DATA)
        dpk = self._purchase_key(req.factors, alg)
        seq = self.state.terminal_seq
        if seq >= 0xFFFFFFFF:
            return ResponseAPDU(b"", SW.SW_COUNTER_MAX)
        sespk = macs.purchase_session_key(dpk, req.card_random, req.card_seq, seq, alg)
        mac1 = macs.purchase_mac1(sespk, req.amount, req.tx_type, self.state.terminal_id, req.date, req.time, alg)
        self.state.terminal_seq = seq + 1
        self._purchase = _Purchase(sespk, req.amount, alg)
        if self.on_change is not None:
            self.on_change()
        return ResponseAPDU(W.InitSamResponse(seq, mac1).encode(), SW.SW_OK)

    def _purchase_key(self, factors: tuple[bytes, ...], alg: Algorithm) -> bytes:
        master = self.issuer.mpk.key
        key = (master, factors, alg)
        dpk = self._derived.get(key)
        if dpk is None:
            if len(self._derived) >= DERIVED_KEYS_KEPT:
                self._derived.clear()
            dpk = self._derived[key] = diversify_levels(master, W.derivation_factors(factors), alg)
        return dpk

    def _credit(self, cmd: CommandAPDU) -> ResponseAPDU:
        session = self._purchase
        if session is None:
            return ResponseAPDU(b"", SW.SW_CONDITIONS)
        if len(cmd.data) != 4:
            return ResponseAPDU(b"", SW.SW_WRONG_LENGTH)
        expected = macs.purchase_mac2(session.sespk, session.amount, session.algorithm)
        if not constant_time_equal(expected, cmd.data):
            return ResponseAPDU(b"", SW.SW_MAC_INVALID)
        self._purchase = None
        return ResponseAPDU(b"", SW.SW_OK)

    def _init_descrypt(self, cmd: CommandAPDU) -> ResponseAPDU:
        self._session_key = None
        req = W.InitDescrypt.from_apdu(cmd)
        master = self._master(req.usage)
        if master is None:
            return ResponseAPDU(b"", SW.SW_REF_DATA_NOT_FOUND)
        if req.key_index != master.index:
            return ResponseAPDU(b"", SW.SW_KEY_INDEX)
        if len(req.factors) != req.levels:
            return ResponseAPDU(b"", SW.SW_WRONG_DATA)  # the usage byte says how many levels
        alg = master.algorithm
        factors = W.derivation_factors(req.factors) if req.usage == W.USAGE_PURCHASE else req.factors
        self._session_key = (diversify_levels(master.key, factors, alg), alg)
        return ResponseAPDU(b"", SW.SW_OK)

    def _descrypt(self, cmd: CommandAPDU) -> ResponseAPDU:
        if self._session_key is None:
            return ResponseAPDU(b"", SW.SW_CONDITIONS)
        key, alg = self._session_key
        if cmd.p1 == W.P1_ENCRYPT:
            if not cmd.data or len(cmd.data) % alg.block_size:
                return ResponseAPDU(b"", SW.SW_WRONG_LENGTH)
            return ResponseAPDU(encrypt_block(key, cmd.data, alg), SW.SW_OK)
        if cmd.p1 == W.P1_MAC:
            try:
                fields = W.MAC_DATA.parse(cmd.data)
            except FormatError:
                return ResponseAPDU(b"", SW.SW_WRONG_LENGTH)
            return ResponseAPDU(line_mac(key, fields["data"], fields["iv"], alg), SW.SW_OK)
        return ResponseAPDU(b"", SW.SW_INCORRECT_P1P2)


class PsamCard:
    """A simulated PSAM of an issuer (the in-process card contract)."""

    kind = "psam"

    def __init__(self, issuer: IssuerKeys, state: PsamState, rng: random.Random,
                 valid_from: date = date(2024, 1, 1), valid_until: date = date(2034, 12, 31)) -> None:
        self.issuer = issuer
        self.app = PsamApplication(issuer, state)
        mf = DedicatedFile(0x3F00)
        ro = AccessRule(Access.FREE, Access.NEVER)
        mf.add(TransparentEF(0x0016, 0x16, PsamTerminal(state.terminal_id).encode(), ro))
        df = DedicatedFile(0x1001, W.PSAM_AID, self.app)
        mf.add(df)
        app_data = PsamAppData(state.key_index, issuer.issuer_id, state.terminal_id.rjust(8, b"\x00"),
                               valid_from, valid_until)
        df.add(TransparentEF(0x0017, 0x17, app_data.encode(), ro))
        self.fs = FileSystem(mf, rng)
        self.listeners: list[Any] = []
        self._t0 = T0Transport()  # its ATR says T=0: case 4 goes as case 3 + GET RESPONSE
        self.app.on_change = self._changed

    @property
    def test(self) -> bool:
        return self.issuer.test_only

    @property
    def state(self) -> PsamState:
        return self.app.state

    @property
    def atr(self) -> bytes:
        return PSAM_ATR

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def reset(self) -> bytes:
        self.fs.reset()
        self.app.reset()
        self._t0.reset()
        return PSAM_ATR

    def process(self, apdu: bytes) -> bytes:
        try:
            cmd = CommandAPDU.decode(apdu)
        except FormatError:
            return SW.SW_WRONG_LENGTH.to_bytes(2, "big")
        return self._t0.process(cmd, self._run)

    def _run(self, cmd: CommandAPDU) -> ResponseAPDU:
        try:
            return self.fs.process(cmd)
        except Exception:  # a card answers, it does not crash
            return ResponseAPDU(b"", SW.SW_UNKNOWN)


def make_psam(issuer: IssuerKeys | None = None, terminal_id: bytes = DEFAULT_TERMINAL, seed: int = 0) -> PsamCard:
    """A fresh PSAM of ``issuer`` (the TEST ONLY issuer by default)."""
    if len(terminal_id) != 6:
        raise FormatError(f"terminal number must be 6 bytes, got {len(terminal_id)}")
    return PsamCard(issuer or default_issuer(), PsamState(terminal_id), random.Random(seed))
