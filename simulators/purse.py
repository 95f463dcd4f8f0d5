"""The transit purse application (JR/T 0025.2 PBOC e-purse as JT/T 978's T-Union
purse), answering through the declarations of cardlib/pboc/purse.py and macs.py.

Bound to the purse DF of a simulated card. Every command checks everything
first and then applies its changes together, so a DEBIT happens fully
(balance, counter, 0x18 record, CAPP cache) or not at all. Refusals leave the
state unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.crypto import constant_time_equal, line_mac
from cardlib.errors import FormatError
from cardlib.keys import CardKeys, KeyEntry
from cardlib.pboc import macs
from cardlib.pboc import purse as P
from cardlib.pboc.files import (
    CAPP_RECORD_SIZE,
    CAPP_SFI,
    LOG_SFI,
    TRIP_SFI,
    TransactionRecord,
    log_record,
)
from simulators.filesystem import DedicatedFile, FileSystem, RecordEF, TransparentEF, status

PROVE_TYPES = frozenset({macs.TX_EP_LOAD, macs.TX_EP_PURCHASE, macs.TX_CAPP_PURCHASE})
#: P2 values a proof of each type answers to: a composite purchase's also to 06, which one
#: public client sends for it (docs/protocol.md)
PROVE_P2 = {macs.TX_EP_LOAD: (0x02,), macs.TX_EP_PURCHASE: (0x06,), macs.TX_CAPP_PURCHASE: (0x09, 0x06)}


def _wire_balance(value: int) -> int:
    """The balance as its 4 wire bytes read unsigned (two's complement in overdraft),
    the form the MAC and TAC inputs take."""
    return value & 0xFFFFFFFF


@dataclass(slots=True)
class _Session:
    kind: str  # "load" | "purchase" | "capp"
    amount: int
    terminal_id: bytes
    random: bytes
    seq: int
    balance: int
    key: KeyEntry | None = None  # a purchase's key: the one of the index INITIALIZE named
    cache: dict[int, bytes] = field(default_factory=dict)  # 0x1A records by id
    trips: list[bytes] = field(default_factory=list)  # 0x1E records, in the order sent


@dataclass
class PurseState:
    balance: int
    keys: CardKeys
    online_seq: int = 0
    offline_seq: int = 0
    overdraft_limit: int = 0
    max_balance: int = 100_000_00  # ¥100,000 in fen
    blocked: str | None = None  # None | "temporary" | "permanent"
    #: the proof of the most recent transaction only, as a real card keeps it: type, the
    #: counter after it ("seq", what GET TRANSACTION PROVE takes), MAC and TAC in hex
    last_proof: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "balance": self.balance,
            "online_seq": self.online_seq,
            "offline_seq": self.offline_seq,
            "overdraft_limit": self.overdraft_limit,
            "max_balance": self.max_balance,
            "blocked": self.blocked,
            "last_proof": self.last_proof,
        }


def _ok(data: bytes = b"") -> ResponseAPDU:
    return status(SW.SW_OK, data)


def _no(code: int) -> ResponseAPDU:
    return status(code)


class PurseApplication:
    """Answers the purse commands; ISO commands fall through to the file system."""

    def __init__(self, state: PurseState) -> None:
        self.state = state
        self._session: _Session | None = None
        #: Called after every change of persistent state (card images).
        self.on_change: Any = None
        self._handlers = {
            P.INS_GET_BALANCE: self._balance,
            P.INS_INITIALIZE: self._initialize,
            P.INS_CREDIT: self._credit,
            P.INS_UPDATE_CAPP: self._update_capp,
            P.INS_DEBIT: self._debit,
            P.INS_PROVE: self._prove,
        }
        # the FCI is a function of the DF name and file 0x15: (name, 0x15 bytes, FCI) of the last one built
        self._fci: tuple[bytes | None, bytes, bytes] | None = None

    # --- Application protocol ---------------------------------------------------

    def on_select(self, fs: FileSystem) -> ResponseAPDU | None:
        self._session = None
        if self.state.blocked == "permanent":
            return _no(SW.SW_APP_LOCKED)
        if self.state.blocked == "temporary":
            return _no(SW.SW_FUNC_NOT_SUPPORTED)
        return None

    def fci(self, df: DedicatedFile) -> bytes | None:
        public = df.ef_by_sfi(0x15)
        data = public.data if isinstance(public, TransparentEF) else b""
        cached = self._fci
        if cached is not None and cached[0] == df.name and cached[1] == data:
            return cached[2]
        answer = P.purse_fci(df.name or b"", bytes(data))
        self._fci = (df.name, bytes(data), answer)
        return answer

    def reset(self) -> None:
        self._session = None

    def handle(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU | None:
        if self.state.blocked is not None:
            if cmd.cla == P.CLA_SECURE and cmd.ins == P.INS_APP_UNBLOCK:
                return self._unblock(cmd, fs)
            if cmd.cla in (P.CLA_PURSE, P.CLA_SECURE) or cmd.ins in (0xB0, 0xB2):
                return _no(SW.SW_APP_LOCKED if self.state.blocked == "permanent" else SW.SW_FUNC_NOT_SUPPORTED)
        if cmd.cla == P.CLA_PURSE:
            handler = self._handlers.get(cmd.ins)
            if handler is None:
                return _no(SW.SW_INS_NOT_SUPPORTED)
            try:
                return handler(cmd, fs)
            except FormatError:
                self._session = None
                return _no(SW.SW_WRONG_LENGTH)
        if cmd.cla == P.CLA_SECURE and cmd.ins == P.INS_APP_BLOCK:
            return self._block(cmd, fs)
        if cmd.cla == P.CLA_SECURE and cmd.ins == P.INS_APP_UNBLOCK:
            return _no(SW.SW_CONDITIONS)
        return None

    # --- commands ---------------------------------------------------------------

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _balance(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        P.GetBalance.from_apdu(cmd)
        if cmd.p2 != P.P2_EP or cmd.p1 not in P.BALANCE_P1:
            return _no(SW.SW_INCORRECT_P1P2)
        balance = self.state.balance
        if cmd.p1 == 0x03:  # excluding the overdraft: a purse in overdraft has nothing of its own
            balance = max(balance, 0)
        return _ok(P.encode_balance(balance))

    def _initialize(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        self._session = None
        s = self.state
        keys = s.keys
        if cmd.p2 != P.P2_EP:
            return _no(SW.SW_INCORRECT_P1P2)
        alg = keys.algorithm
        if cmd.p1 == P.P1_LOAD:
            req = P.InitializeForLoad.from_apdu(cmd)
            if req.key_index != keys.dlk.index:
                return _no(SW.SW_KEY_INDEX)
            if s.online_seq >= 0xFFFF:
                return _no(SW.SW_COUNTER_MAX)
            if s.balance + req.amount > min(s.max_balance, 0x7FFFFFFF):  # past the maximum, or the 4-byte field
                return _no(SW.SW_CONDITIONS)
            rnd = self._random(fs)
            seslk = macs.load_session_key(keys.dlk.key, rnd, s.online_seq, alg)
            mac1 = macs.load_mac1(seslk, _wire_balance(s.balance), req.amount, macs.TX_EP_LOAD, req.terminal_id, alg)
            self._session = _Session("load", req.amount, req.terminal_id, rnd, s.online_seq, s.balance)
            return _ok(P.InitializeForLoadResponse(s.balance, s.online_seq, keys.dlk.version,
                                                   alg.alg_id, rnd, mac1).encode())
        if cmd.p1 not in (P.P1_PURCHASE, P.P1_CAPP):
            return _no(SW.SW_INCORRECT_P1P2)
        pur = P.InitializeForPurchase.from_apdu(cmd)
        dpk = keys.purchase_key(pur.key_index)  # its own issuer's, or an interoperable card's T-Union one
        if dpk is None:
            return _no(SW.SW_KEY_INDEX)
        if s.offline_seq >= 0xFFFF:
            return _no(SW.SW_COUNTER_MAX)
        if pur.amount > s.balance + s.overdraft_limit:
            return _no(SW.SW_INSUFFICIENT_BALANCE)
        kind = "capp" if pur.capp else "purchase"
        rnd = self._random(fs)
        self._session = _Session(kind, pur.amount, pur.terminal_id, rnd, s.offline_seq, s.balance, dpk)
        return _ok(P.InitializeForPurchaseResponse(s.balance, s.offline_seq, s.overdraft_limit,
                                                   dpk.version, alg.alg_id, rnd).encode())

    def _credit(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        sess, self._session = self._session, None
        if sess is None or sess.kind != "load":
            return _no(SW.SW_CONDITIONS)
        req = P.CreditForLoad.from_apdu(cmd)
        s, alg = self.state, self.state.keys.algorithm
        seslk = macs.load_session_key(s.keys.dlk.key, sess.random, sess.seq, alg)
        expected = macs.load_mac2(seslk, sess.amount, macs.TX_EP_LOAD, sess.terminal_id, req.date, req.time, alg)
        if not constant_time_equal(expected, req.mac2):
            return _no(SW.SW_MAC_INVALID)
        try:
            when = macs.parse_bcd_datetime(req.date, req.time)
        except FormatError:
            return _no(SW.SW_WRONG_DATA)
        new_balance = sess.balance + sess.amount
        tac = macs.load_tac(s.keys.dtk.key, _wire_balance(new_balance), sess.seq, sess.amount, macs.TX_EP_LOAD,
                            sess.terminal_id, req.date, req.time, alg)
        record = TransactionRecord(sess.seq, sess.amount, macs.TX_EP_LOAD, sess.terminal_id, when,
                                   overdraft=s.overdraft_limit).encode()
        log = self._log(fs)
        # apply together
        s.balance = new_balance
        s.online_seq = sess.seq + 1
        log.append(record)
        self._prove_keep(macs.TX_EP_LOAD, sess.seq, req.mac2, tac)
        self._changed()
        return _ok(P.CreditResponse(tac).encode())

    def _update_capp(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        sess = self._session
        if sess is None or sess.kind != "capp":
            self._session = None
            return _no(SW.SW_CONDITIONS)
        upd = P.UpdateCappDataCache.from_apdu(cmd)
        rec = upd.record
        if upd.sfi == TRIP_SFI:
            sess.trips.append(bytes(rec))
            return _ok()
        if len(rec) > CAPP_RECORD_SIZE or rec[:2] != upd.record_id.to_bytes(2, "big"):
            return _no(SW.SW_WRONG_DATA)
        if not 0x2701 <= upd.record_id <= 0x2712:
            return _no(SW.SW_RECORD_NOT_FOUND)
        sess.cache[upd.record_id] = rec.ljust(CAPP_RECORD_SIZE, b"\x00")
        return _ok()

    def _debit(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        sess, self._session = self._session, None
        if sess is None or sess.kind not in ("purchase", "capp") or sess.key is None:
            return _no(SW.SW_CONDITIONS)
        req = P.DebitForPurchase.from_apdu(cmd)
        if cmd.p1 != 0x01:
            return _no(SW.SW_INCORRECT_P1P2)
        s, alg = self.state, self.state.keys.algorithm
        tx_type = macs.TX_CAPP_PURCHASE if sess.kind == "capp" else macs.TX_EP_PURCHASE
        sespk = macs.purchase_session_key(sess.key.key, sess.random, sess.seq, req.terminal_seq, alg)
        mac1 = macs.purchase_mac1(sespk, sess.amount, tx_type, sess.terminal_id, req.date, req.time, alg)
        if not constant_time_equal(mac1, req.mac1):
            return _no(SW.SW_MAC_INVALID)
        try:
            macs.parse_bcd_datetime(req.date, req.time)  # a real date and time, or refused
        except FormatError:
            return _no(SW.SW_WRONG_DATA)
        mac2 = macs.purchase_mac2(sespk, sess.amount, alg)
        tac = macs.purchase_tac(s.keys.dtk.key, sess.amount, tx_type, sess.terminal_id, req.terminal_seq,
                                req.date, req.time, alg)
        # the 3-byte field of a 0x18 record is the overdraft limit (PBOC), not the overdraft used;
        # the date and time are DEBIT's, which parse_bcd_datetime has just checked
        record = log_record(sess.seq, sess.amount, tx_type, sess.terminal_id, req.date, req.time, s.overdraft_limit)
        log = self._log(fs)
        capp = fs.current_df.ef_by_sfi(CAPP_SFI)
        trips = fs.current_df.ef_by_sfi(TRIP_SFI)
        if isinstance(capp, RecordEF):  # the cached records must fit before anything is applied
            new = 0
            for rid in sess.cache:
                if capp.find_by_id(rid) is None:
                    new += 1
            if len(capp.records) + new > capp.max_records:
                return _no(SW.SW_NOT_ENOUGH_MEMORY)
        # apply together
        s.balance = sess.balance - sess.amount
        s.offline_seq = sess.seq + 1
        log.append(record)
        if isinstance(capp, RecordEF):
            for rid, rec in sess.cache.items():
                capp.update_by_id(rid, rec)
        if isinstance(trips, RecordEF):  # cyclic: the newest first, the oldest dropped past 30
            for trip in sess.trips:
                trips.append(trip)
        self._prove_keep(tx_type, sess.seq, mac2, tac)
        self._changed()
        return _ok(P.DebitResponse(tac, mac2).encode())

    def _prove(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        self._session = None
        req = P.GetTransactionProve.from_apdu(cmd)
        if req.tx_type not in PROVE_TYPES:
            return _no(SW.SW_INCORRECT_P1P2)
        proof = self.state.last_proof
        if (proof is not None and req.tx_type in PROVE_P2.get(proof["type"], ()) and proof["seq"] == req.seq):
            return _ok(P.ProveResponse(bytes.fromhex(proof["mac"]), bytes.fromhex(proof["tac"])).encode())
        return _no(SW.SW_MAC_UNAVAILABLE)  # not the most recent transaction: its proof is gone

    def _line_mac_ok(self, header: bytes, mac: bytes, fs: FileSystem) -> bool:
        challenge = fs.security.challenge
        fs.security.challenge = None  # one MAC per challenge
        if challenge is None or len(challenge) < 4:
            return False
        damk = self.state.keys.damk
        expected = line_mac(damk.key, header, challenge[:4] + bytes(4), damk.algorithm)
        return constant_time_equal(expected, mac)

    def _block(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        try:
            req = P.ApplicationBlock.from_apdu(cmd)
        except FormatError:
            return _no(SW.SW_WRONG_LENGTH)
        if not self._line_mac_ok(req.mac_input(), req.mac, fs):
            return _no(SW.SW_SM_MAC)
        self._session = None
        self.state.blocked = "permanent" if req.permanent else "temporary"
        self._changed()
        return _ok()

    def _unblock(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU:
        if self.state.blocked != "temporary":
            return _no(SW.SW_APP_LOCKED)
        try:
            req = P.ApplicationUnblock.from_apdu(cmd)
        except FormatError:
            return _no(SW.SW_WRONG_LENGTH)
        if not self._line_mac_ok(req.mac_input(), req.mac, fs):
            return _no(SW.SW_SM_MAC)
        self.state.blocked = None
        self._changed()
        return _ok()

    # --- helpers ----------------------------------------------------------------

    @staticmethod
    def _random(fs: FileSystem) -> bytes:
        """The session's 4-byte random, drawn only once the command is accepted
        (four draws of 8 bits: the generator's state in card images follows them)."""
        draw = fs.rng.getrandbits
        return bytes((draw(8), draw(8), draw(8), draw(8)))

    def _log(self, fs: FileSystem) -> RecordEF:
        log = fs.current_df.ef_by_sfi(LOG_SFI)
        if not isinstance(log, RecordEF):  # pragma: no cover - personalisation bug
            raise RuntimeError("purse DF has no 0x18 log")
        return log

    def _prove_keep(self, tx_type: int, seq: int, mac: bytes, tac: bytes) -> None:
        """Keep this transaction's proof in place of the last one, under the counter
        after it (``seq`` is the value INITIALIZE returned)."""
        self.state.last_proof = {"type": tx_type, "seq": P.prove_seq(seq), "mac": mac.hex().upper(),
                                 "tac": tac.hex().upper()}
