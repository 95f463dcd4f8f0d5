"""Card images: the JSON files virtual cards live in (docs/card-image.md).

Written atomically (temporary file, fsync, rename, fsync of the folder) under
a lock, after every change of state when a card is backed by a file, so a
terminal killed at any moment never leaves a half-written card.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cardlib.durable import replace_durably
from cardlib.errors import ConfigError, FormatError
from cardlib.hexutil import from_hex
from cardlib.keys import CardKeys, IssuerKeys
from cardlib.pboc import capp
from cardlib.pboc.files import CAPP_SFI
from simulators.psam import PsamCard, PsamState
from simulators.purse import PurseState
from simulators.ssc import EXT_AUTH_TRIES, PIN_TRIES, PUK_TRIES, SocialSecurityCard, SsseState

FORMAT = "yikatong-card-image"
VERSION = 2  # 1 → 2: the purse keeps its last proof only; 0x1A records 2701/2702 in the gates' layout, with CRC
Card = SocialSecurityCard | PsamCard


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
    out["version"] = VERSION
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


def card_from_json(obj: Any) -> Card:
    """Rebuild a card or PSAM; FormatError/ConfigError name the problem. Older
    versions are migrated first (:func:`migrate_v1`)."""
    if not isinstance(obj, dict):
        raise FormatError("card image: expected a JSON object")
    if obj.get("format") != FORMAT:
        raise FormatError(f"card image: format must be {FORMAT!r}")
    if obj.get("version") == 1:
        try:
            obj = migrate_v1(obj)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"card image: cannot migrate version 1: {exc}") from None
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
        if not 0 <= purse.balance <= 0x7FFFFFFF or not 0 <= purse.online_seq <= 0xFFFF or not 0 <= purse.offline_seq <= 0xFFFF:
            raise FormatError("card image: purse balance or counters out of range")
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
                                  bool(obj.get("t0_style", False)), obj.get("meta") or {})
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
    kind, seq = _need(obj, "type", int, "last_proof"), _need(obj, "seq", int, "last_proof")
    mac, tac = _need(obj, "mac", str, "last_proof"), _need(obj, "tac", str, "last_proof")
    if not 0 <= kind <= 0xFF or not 0 <= seq <= 0xFFFF:
        raise FormatError("card image: last_proof type or seq out of range")
    if len(from_hex(mac, "card image: last_proof.mac")) != 4 or len(from_hex(tac, "card image: last_proof.tac")) != 4:
        raise FormatError("card image: last_proof mac and tac must be 4 bytes")
    return {"type": kind, "seq": seq, "mac": mac.upper(), "tac": tac.upper()}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Temp file in the same folder, fsync, rename over, fsync the folder."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        replace_durably(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_image(card: Card, path: str | os.PathLike[str]) -> None:
    text = json.dumps(card_to_json(card), ensure_ascii=False, indent=1) + "\n"
    target = Path(path)
    with _locked(target):
        write_atomic(target, text)


def read_image(path: str | os.PathLike[str]) -> dict[str, Any]:
    source = Path(path)
    try:
        with _locked(source) if source.exists() else contextlib.nullcontext():
            text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(f"{source}: no such card image") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{source}: cannot read card image: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: card image is not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise FormatError(f"{source}: card image is not JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise FormatError(f"{source}: card image must be a JSON object")
    return obj


class FileBackedCard:
    """Keeps a card's image file in step with it: saved after every change of
    state, so a terminal killed at any moment never loses the card's state."""

    def __init__(self, card: Card, path: str | os.PathLike[str]) -> None:
        self.card = card
        self.path = Path(path)
        card.listeners.append(self.save)

    def save(self) -> None:
        save_image(self.card, self.path)


def load_card(path: str | os.PathLike[str], persist: bool = True) -> Card:
    """Load a card or PSAM image (by its ``kind``); with ``persist`` it is file-backed."""
    try:
        card = card_from_json(read_image(path))
    except FormatError as exc:
        message = str(exc)
        raise FormatError(message if str(path) in message else f"{path}: {message}") from None
    if persist:
        FileBackedCard(card, path)
    return card


SECRET_FIELDS = ("key", "pin", "puk")


def mask_image(obj: Any) -> Any:
    """A copy with keys, PIN and PUK masked (``ykt sim show`` without --show-secrets)."""
    if isinstance(obj, dict):
        return {k: ("*" * 8 if k in SECRET_FIELDS and isinstance(v, str) else mask_image(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask_image(v) for v in obj]
    return obj
