"""Card images: the JSON files virtual cards live in (docs/card-image.md).

Written atomically (temporary file, fsync, rename, fsync of the folder) after
every change of state when a card is backed by a file, so a terminal killed
at any moment never leaves a half-written card. A file-backed card is held:
one session at a time may write an image, as one terminal at a time holds a
physical card; the lock is taken before the image is read and kept until the
session ends, so two sessions never interleave (docs/card-image.md).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import random
import stat
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardlib.errors import ConfigError, FormatError, SharingViolationError
from cardlib.hexutil import from_hex
from cardlib.jsontext import json_object
from cardlib.keys import CardKeys, IssuerKeys
from cardlib.pboc import capp, macs
from cardlib.pboc.files import CAPP_SFI
from cardlib.safefiles import LIMIT_SMALL, atomic_write, read_text
from simulators.psam import PsamCard, PsamState
from simulators.purse import PROVE_TYPES, PurseState
from simulators.ssc import EXT_AUTH_TRIES, PIN_TRIES, PUK_TRIES, SocialSecurityCard, SsseState

FORMAT = "yikatong-card-image"
#: 1 → 2: the purse keeps its last proof only; 0x1A records 2701/2702 in the gates' layout, with CRC.
#: 2 → 3: ``keys.extra_dpk``, purchase keys under other key indexes (an interoperable card's T-Union key)
VERSION = 3
Card = SocialSecurityCard | PsamCard
DEFAULT_WAIT = 2.0  # seconds a second holder waits for the first (``sim:PATH?wait=SECONDS``)
MAX_OVERDRAFT = 0xFFFFFF  # the 3-byte overdraft limit of INITIALIZE FOR PURCHASE's answer
MAX_BALANCE = 0x7FFFFFFF  # the 4-byte signed balance of GET BALANCE
MAX_COUNTER = 0xFFFF  # the 2-byte online and offline counters


class CardInUseError(SharingViolationError):
    """Another session holds the card image (exit 3): it waited and gave up."""


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from(obj: Any) -> random.Random:
    rng = random.Random()
    try:
        version, internal, gauss = obj
        rng.setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError, OverflowError) as exc:
        raise FormatError(f"card image: bad rng state: {exc}") from None
    return rng


def card_to_json(card: Card) -> dict[str, Any]:
    if isinstance(card, PsamCard):
        return {
            "format": FORMAT, "version": VERSION, "kind": "psam",
            "issuer": card.issuer.to_json(), "state": card.state.to_json(),
            "rng": _rng_state(card.fs.rng),
        }
    return {
        "format": FORMAT, "version": VERSION, "kind": "card",
        "card_kind": card.card_kind,
        "meta": card.meta, "atr": card.atr.hex().upper(), "t0_style": card.t0_style,
        "balance": card.purse.state.balance,
        "keys": card.keys.to_json(),
        "purse": card.purse.state.to_json(),
        "ssse": card.ssse.state.to_json(),
        "files": card.fs.files_to_json(),
        "rng": _rng_state(card.fs.rng),
    }


def _need(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "card image") -> Any:
    if key not in obj:
        raise FormatError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise FormatError(f"{where}: {key!r} has the wrong type")
    return value


CAPP_RECORDS = 18  # records the 0x1A file holds (simulators/ssc.py)


def _v1_capp(raw: bytes, balance: int) -> bytes:
    """A version-1 0x1A record in the gates' layout. Version 1 kept 2701 as
    ``27 01 state(1) station(8) date(4) time(3) terminal(6)`` (state 01 in, 00 out) and
    2702 as ``27 02 line(8) date(4) time(3) terminal(6) amount(4)``; a rider inside
    stays inside, so the exit gate charges the trip, not the no-entry fare."""
    rid = int.from_bytes(raw[:2], "big")
    if rid not in (capp.METRO_RECORD, capp.BUS_RECORD):
        return raw
    record = capp.CappRecord.blank(rid)
    if rid == capp.METRO_RECORD:
        when = capp.parse_bcd7(raw[11:18])
        if when is None or raw[2] not in (0x00, 0x01):
            return record.encode()
        station, terminal = capp.text8(raw[3:11]), raw[18:24]
        if raw[2] == 0x01:
            return capp.metro_entry(record, station, when, terminal, balance).encode()
        return capp.metro_exit(record, station, when, terminal, 0).encode()
    when = capp.parse_bcd7(raw[10:17])
    if when is None:
        return record.encode()
    ride = capp.BusRide(capp.text8(raw[2:10]), when, raw[17:23], int.from_bytes(raw[23:27], "big"))
    return capp.with_bus_ride(record, ride).encode()


def migrate_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """A version-1 image as version 2: of its ten proofs keyed by the INITIALIZE value, the
    newest becomes ``last_proof`` keyed by the counter after it (value + 1); 2701 and 2702
    are rewritten in the gates' layout with valid CRCs, and created where missing."""
    out = copy.deepcopy(obj)
    out["version"] = 2
    if out.get("kind") != "card":
        return out
    purse = out.get("purse")
    if isinstance(purse, dict):
        proofs = purse.pop("proofs", [])
        newest = proofs[0] if isinstance(proofs, list) and proofs else None
        if isinstance(newest, dict) and isinstance(newest.get("seq"), int):
            purse["last_proof"] = {**newest, "seq": (newest["seq"] + 1) & 0xFFFF}
        else:
            purse["last_proof"] = None
        balance = purse.get("balance", 0) if isinstance(purse.get("balance"), int) else 0
        for entry in out.get("files") or []:
            if isinstance(entry, dict) and entry.get("sfi") == CAPP_SFI and isinstance(entry.get("records"), list):
                records = [_v1_capp(bytes.fromhex(r), balance).hex().upper() for r in entry["records"]]
                have = {r[:4] for r in records}
                for rid in (capp.METRO_RECORD, capp.BUS_RECORD):
                    if f"{rid:04X}" not in have and len(records) < CAPP_RECORDS:  # a full file stays as it is
                        records.append(capp.blank_record(rid).hex().upper())
                entry["records"] = records
    return out


def migrate_v2(obj: dict[str, Any]) -> dict[str, Any]:
    """A version-2 image as version 3: a version-2 card holds one purchase key (``keys.dpk``),
    which it keeps; it has no ``keys.extra_dpk``, so it has none under another index."""
    out = copy.deepcopy(obj)
    out["version"] = 3
    return out


def card_from_json(obj: Any) -> Card:
    """Rebuild a card or PSAM; FormatError/ConfigError name the problem. Older
    versions are migrated first, one version at a time (:func:`migrate_v1`, :func:`migrate_v2`)."""
    if not isinstance(obj, dict):
        raise FormatError("card image: expected a JSON object")
    if obj.get("format") != FORMAT:
        raise FormatError(f"card image: format must be {FORMAT!r}")
    for old, migrate in ((1, migrate_v1), (2, migrate_v2)):
        if obj.get("version") == old:
            try:
                obj = migrate(obj)
            except (ValueError, TypeError) as exc:
                raise FormatError(f"card image: cannot migrate version {old}: {exc}") from None
    if obj.get("version") != VERSION:
        raise FormatError(f"card image: unsupported version {obj.get('version')!r}")
    kind = obj.get("kind")
    rng = _rng_from(obj.get("rng"))
    try:
        if kind == "psam":
            issuer = IssuerKeys.from_json(_need(obj, "issuer", dict), "card image: issuer")
            st = _need(obj, "state", dict)
            state = PsamState(bytes.fromhex(_need(st, "terminal_id", str, "state")),
                              _need(st, "terminal_seq", int, "state"), _need(st, "key_index", int, "state"))
            if len(state.terminal_id) != 6:
                raise FormatError("card image: terminal_id must be 6 bytes")
            if not 0 <= state.terminal_seq <= 0xFFFFFFFF or not 0 <= state.key_index <= 0xFF:
                raise FormatError("card image: psam terminal_seq (4 bytes) or key_index (1 byte) out of range")
            return PsamCard(issuer, state, rng)
        if kind != "card":
            raise FormatError(f"card image: kind must be 'card' or 'psam', got {kind!r}")
        keys = CardKeys.from_json(_need(obj, "keys", dict), "card image: keys")
        p = _need(obj, "purse", dict)
        purse = PurseState(
            balance=_need(p, "balance", int, "purse"), keys=keys,
            online_seq=_need(p, "online_seq", int, "purse"), offline_seq=_need(p, "offline_seq", int, "purse"),
            overdraft_limit=_need(p, "overdraft_limit", int, "purse"),
            max_balance=_need(p, "max_balance", int, "purse"), blocked=p.get("blocked"),
            last_proof=_proof(p.get("last_proof")),
        )
        if obj.get("balance", purse.balance) != purse.balance:
            raise FormatError("card image: balance and purse.balance differ (edit both)")
        if purse.blocked not in (None, "temporary", "permanent"):
            raise FormatError("card image: purse.blocked must be null, temporary or permanent")
        check_purse_values(purse)
        s = _need(obj, "ssse", dict)
        ssse = SsseState(str(_need(s, "pin", str, "ssse")), str(_need(s, "puk", str, "ssse")),
                         _need(s, "pin_tries", int, "ssse"), _need(s, "puk_tries", int, "ssse"),
                         _need(s, "ext_tries", int, "ssse"))
        for secret in (ssse.pin, ssse.puk):
            if len(secret) != 6 or not secret.isdigit() or not secret.isascii():
                raise FormatError("card image: ssse pin and puk must be 6 digits")
        if not (0 <= ssse.pin_tries <= PIN_TRIES and 0 <= ssse.puk_tries <= PUK_TRIES
                and 0 <= ssse.ext_tries <= EXT_AUTH_TRIES):
            raise FormatError("card image: ssse try counters out of range")
        card = SocialSecurityCard(keys, purse, ssse, rng, from_hex(_need(obj, "atr", str), "card image: atr"),
                                  bool(obj.get("t0_style", False)), obj.get("meta") or {},
                                  obj.get("card_kind", "ssc"))
        card.fs.files_from_json(_need(obj, "files", list))
        return card
    except ConfigError as exc:
        raise FormatError(str(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise FormatError(f"card image: {exc}") from None


def _proof(obj: Any) -> dict[str, Any] | None:
    """``last_proof``: null, or type, seq (the counter after it), MAC and TAC (4 bytes hex)."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise FormatError("card image: purse.last_proof must be null or an object")
    if set(obj) - {"type", "seq", "mac", "tac"}:
        raise FormatError("card image: purse.last_proof is exactly {type, seq, mac, tac}")
    kind, seq = _need(obj, "type", int, "last_proof"), _need(obj, "seq", int, "last_proof")
    mac, tac = _need(obj, "mac", str, "last_proof"), _need(obj, "tac", str, "last_proof")
    if not 0 <= kind <= 0xFF or not 0 <= seq <= 0xFFFF:
        raise FormatError("card image: last_proof type or seq out of range")
    if len(from_hex(mac, "card image: last_proof.mac")) != 4 or len(from_hex(tac, "card image: last_proof.tac")) != 4:
        raise FormatError("card image: last_proof mac and tac must be 4 bytes")
    return {"type": kind, "seq": seq, "mac": mac.upper(), "tac": tac.upper()}


def check_purse_values(purse: PurseState) -> None:
    """What the card's files and answers can hold, or FormatError: an image that
    claims more would lie about money (a balance the 4-byte field wraps, an
    overdraft the card cannot state, a proof it cannot give)."""
    if not 0 <= purse.overdraft_limit <= MAX_OVERDRAFT:
        raise FormatError(f"card image: purse overdraft_limit must be 0..{MAX_OVERDRAFT} fen")
    if not 0 <= purse.max_balance <= MAX_BALANCE:
        raise FormatError(f"card image: purse max_balance must be 0..{MAX_BALANCE} fen")
    if not -purse.overdraft_limit <= purse.balance <= purse.max_balance:
        raise FormatError("card image: purse balance must be between -overdraft_limit and max_balance")
    if not 0 <= purse.online_seq <= MAX_COUNTER or not 0 <= purse.offline_seq <= MAX_COUNTER:
        raise FormatError(f"card image: purse counters must be 0..{MAX_COUNTER}")
    proof = purse.last_proof
    if proof is not None:  # its shape is checked by _proof; here: a transaction the card made
        kind, seq = proof["type"], proof["seq"]
        counter = purse.online_seq if kind in macs.LOAD_TYPES else purse.offline_seq
        if kind not in PROVE_TYPES or not 1 <= seq <= counter:
            raise FormatError("card image: purse last_proof names a type or a counter the card never used "
                              "(seq is the counter after the transaction)")


_HELD: set[tuple[int, int]] = set()  # lock files (device, inode) held in this process
_HELD_GUARD = threading.Lock()
_POLL = 0.01


def _release_fd(fd: int, key: tuple[int, int]) -> None:
    with _HELD_GUARD:
        _HELD.discard(key)
    os.close(fd)  # closing the descriptor drops the flock


class ImageLock:
    """The exclusive flock on ``PATH.lock`` that makes a session the image's one holder.

    Waits up to ``wait`` seconds for another holder, then raises CardInUseError;
    a second holder in this process is refused at once (it would interleave with
    the first just as another process would). The side file is created without
    following links and must be a regular file. Released by :meth:`release`, or
    when the process ends.
    """

    def __init__(self, path: str | os.PathLike[str], wait: float = DEFAULT_WAIT) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            fd, key = self._open()
            try:
                with _HELD_GUARD:
                    if key in _HELD:
                        raise CardInUseError(f"{self.path}: card in use (already held in this process)")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise CardInUseError(f"{self.path}: card in use (another session holds it; "
                                             f"waited {wait:g} s)") from None
                    os.close(fd)
                    time.sleep(_POLL)
                    continue
                try:  # the side file replaced between open and flock: lock the one there now
                    now = os.stat(self.lock_path, follow_symlinks=False)
                except FileNotFoundError:
                    now = None
                if now is None or (now.st_dev, now.st_ino) != key:
                    os.close(fd)
                    continue
                with _HELD_GUARD:
                    if key in _HELD:  # another thread of this process got there first
                        raise CardInUseError(f"{self.path}: card in use (already held in this process)")
                    _HELD.add(key)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            break
        self._finalizer = weakref.finalize(self, _release_fd, fd, key)

    def _open(self) -> tuple[int, tuple[int, int]]:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.lock_path, flags, 0o600)
        except OSError as exc:
            if os.path.islink(self.lock_path):
                raise FormatError(f"{self.lock_path}: the lock file is a symbolic link; refused") from None
            raise FormatError(f"{self.path}: cannot lock card image: {exc.strerror or exc}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise FormatError(f"{self.lock_path}: the lock file is not a regular file; refused")
        return fd, (st.st_dev, st.st_ino)

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        self._finalizer()

    def __enter__(self) -> ImageLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Temp file in the same folder (mkstemp), fsync, rename over a regular file or nothing, fsync the folder."""
    with atomic_write(path, "card image") as fh:
        fh.write(text.encode("utf-8"))


def _image_text(card: Card) -> str:
    return json.dumps(card_to_json(card), ensure_ascii=False, indent=1) + "\n"


def save_image(card: Card, path: str | os.PathLike[str], wait: float = DEFAULT_WAIT) -> None:
    """Write an image as a short session of its own: refused (CardInUseError) while
    another session holds it."""
    with ImageLock(path, wait):
        write_atomic(path, _image_text(card))


def read_image(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A snapshot of an image; no lock (a write renames a whole file over it)."""
    source = Path(path)
    try:
        text = read_text(source, "card image", LIMIT_SMALL)
    except FileNotFoundError:
        raise FormatError(f"{source}: no such card image") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{source}: cannot read card image: {exc}") from None
    return json_object(text, f"{source}: card image", at_line=True)


class FileBackedCard:
    """Keeps a card's image file in step with it: saved after every change of
    state, so a terminal killed at any moment never loses the card's state.
    Holds the image (:class:`ImageLock`) until :meth:`close`."""

    def __init__(self, card: Card, path: str | os.PathLike[str], lock: ImageLock | None = None,
                 wait: float = DEFAULT_WAIT) -> None:
        self.card = card
        self.path = Path(path)
        self.lock = lock or ImageLock(self.path, wait)
        card.listeners.append(self.save)

    def save(self) -> None:
        if not self.lock.held:
            raise CardInUseError(f"{self.path}: the session holding this card image has ended")
        write_atomic(self.path, _image_text(self.card))

    def close(self) -> None:
        """End the session: the card is no longer saved, the image is free."""
        with contextlib.suppress(ValueError):
            self.card.listeners.remove(self.save)
        self.lock.release()


def release_card(card: object) -> None:
    """End the session of a card :func:`load_card` opened file-backed (others: nothing)."""
    for listener in list(getattr(card, "listeners", ())):
        backed = getattr(listener, "__self__", None)
        if isinstance(backed, FileBackedCard):
            backed.close()


def load_card(path: str | os.PathLike[str], persist: bool = True, wait: float = DEFAULT_WAIT,
              create: Callable[[], Card] | None = None) -> Card:
    """Load a card or PSAM image (by its ``kind``). With ``persist`` the caller
    becomes its holder (the lock is taken before the image is read) until
    :func:`release_card`; ``create`` makes and writes the card when there is no
    image yet. Without ``persist`` it is a snapshot and takes no lock."""
    lock = None
    try:
        if persist:
            if create is None and not Path(path).exists():
                raise FormatError(f"{path}: no such card image")
            lock = ImageLock(path, wait)
            if create is not None and not Path(path).exists():
                write_atomic(path, _image_text(create()))
        card = card_from_json(read_image(path))
    except FormatError as exc:
        if lock is not None:
            lock.release()
        message = str(exc)
        if str(path) in message:
            raise
        raise FormatError(f"{path}: {message}") from None
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is not None:
        FileBackedCard(card, path, lock)
    return card


SECRET_FIELDS = ("key", "pin", "puk")


def mask_image(obj: Any) -> Any:
    """A copy with keys, PIN and PUK masked (``ykt sim show`` without --show-secrets)."""
    if isinstance(obj, dict):
        return {k: ("*" * 8 if k in SECRET_FIELDS and isinstance(v, str) else mask_image(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask_image(v) for v in obj]
    return obj
