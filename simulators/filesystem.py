"""An ISO/IEC 7816-4 file system and its commands (§7 files, §11 commands).

MF, DFs with FIDs and names, EFs with SFIs (transparent, linear fixed,
linear variable, cyclic, TLV-record); SELECT, READ/UPDATE BINARY,
READ/UPDATE/APPEND RECORD, GET CHALLENGE. Applications bound to a DF see
each command first (the purse, the PSAM). Never raises on card input: every
refusal is a status word.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from cardlib import iso
from cardlib import sw as SW
from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.errors import FormatError
from cardlib.tlv import build

ISO_CLASSES = (0x00, 0x04, 0x08, 0x0C)  # first interindustry, basic channel, with or without SM indication


def _class_refusal(cla: int) -> int | None:
    """Why an ISO command with this CLA is refused (ISO 7816-4 §5.1.1), None when accepted."""
    if cla in ISO_CLASSES:
        return None
    if cla == 0xFF:
        return SW.SW_CLA_NOT_SUPPORTED  # invalid class
    if cla & 0x80:
        return SW.SW_INS_NOT_SUPPORTED  # a proprietary class no application took
    if cla & 0x40 or cla & 0x03:
        return SW.SW_FUNC_NOT_SUPPORTED_CLA  # logical channels: only the basic one
    return SW.SW_CLA_NOT_SUPPORTED


class Access(enum.Enum):
    FREE = "free"
    PIN = "pin"
    EXTERNAL_AUTH = "external_auth"
    LINE_MAC = "line_mac"
    NEVER = "never"


@dataclass
class AccessRule:
    read: Access = Access.FREE
    write: Access = Access.FREE


class ElementaryFile:
    def __init__(self, fid: int | None, sfi: int | None, access: AccessRule | None = None) -> None:
        self.fid = fid
        self.sfi = sfi
        self.access = access or AccessRule()
        self.parent: DedicatedFile | None = None


class TransparentEF(ElementaryFile):
    def __init__(self, fid: int | None, sfi: int | None, data: bytes, access: AccessRule | None = None) -> None:
        super().__init__(fid, sfi, access)
        self.data = bytearray(data)

    @property
    def size(self) -> int:
        return len(self.data)


class RecordEF(ElementaryFile):
    """Record file; ``records[0]`` is record number 1 (newest first when cyclic)."""

    STRUCTURES = ("linear_fixed", "linear_variable", "cyclic", "tlv")

    def __init__(
        self, fid: int | None, sfi: int | None, structure: str, record_size: int | None,
        max_records: int, records: list[bytes] | None = None, access: AccessRule | None = None,
    ) -> None:
        super().__init__(fid, sfi, access)
        if structure not in self.STRUCTURES:
            raise ValueError(f"unknown record structure {structure}")
        self.structure = structure
        self.record_size = record_size
        self.max_records = max_records
        self.records: list[bytes] = list(records or [])

    def record(self, number: int) -> bytes:
        if not 1 <= number <= len(self.records):
            raise IndexError(number)
        return self.records[number - 1]

    def _fit(self, data: bytes) -> bytes:
        if self.record_size is not None and self.structure in ("linear_fixed", "cyclic"):
            if len(data) != self.record_size:
                raise ValueError("record size")
        elif self.record_size is not None and len(data) > self.record_size:
            raise ValueError("record size")
        return bytes(data)

    def append(self, data: bytes) -> None:
        data = self._fit(data)
        if self.structure == "cyclic":
            self.records.insert(0, data)
            del self.records[self.max_records :]
            return
        if len(self.records) >= self.max_records:
            raise OverflowError("file full")
        self.records.append(data)

    def update(self, number: int, data: bytes) -> None:
        data = self._fit(data)
        if not 1 <= number <= len(self.records):
            raise IndexError(number)
        self.records[number - 1] = data

    def find_by_id(self, ident: int) -> int | None:
        """Record number whose identifier (first byte; 2 bytes when ident > 0xFF) matches."""
        size = 2 if ident > 0xFF else 1
        key = ident.to_bytes(size, "big")
        for i, rec in enumerate(self.records, 1):
            if rec.startswith(key):
                return i
        return None

    def update_by_id(self, ident: int, data: bytes) -> None:
        number = self.find_by_id(ident)
        if number is None:
            self.append(data)
        else:
            self.update(number, data)


_tree_version = 0  # bumped by every DedicatedFile.add: file systems cache their DF lists by it


class DedicatedFile:
    """A DF; ``children`` grows through :meth:`add` only (it keeps the lookup indexes),
    and a child's FID and SFI do not change once added."""

    def __init__(self, fid: int | None, name: bytes | None = None, application: Application | None = None) -> None:
        self.fid = fid
        self.name = name
        self.application = application
        self.parent: DedicatedFile | None = None
        self.children: list[ElementaryFile | DedicatedFile] = []
        # first child by SFI / FID, as a scan of ``children`` would find it: every command looks one up
        self._by_sfi: dict[int | None, ElementaryFile] = {}
        self._by_fid: dict[int | None, ElementaryFile | DedicatedFile] = {}

    def add(self, item: ElementaryFile | DedicatedFile) -> ElementaryFile | DedicatedFile:
        global _tree_version
        item.parent = self
        self.children.append(item)
        if isinstance(item, ElementaryFile):
            self._by_sfi.setdefault(item.sfi, item)
        self._by_fid.setdefault(item.fid, item)
        _tree_version += 1
        return item

    def ef_by_sfi(self, sfi: int) -> ElementaryFile | None:
        return self._by_sfi.get(sfi)

    def child_by_fid(self, fid: int) -> ElementaryFile | DedicatedFile | None:
        return self._by_fid.get(fid)

    def walk(self) -> list[DedicatedFile]:
        out = [self]
        for c in self.children:
            if isinstance(c, DedicatedFile):
                out.extend(c.walk())
        return out


class Application(Protocol):
    """Proprietary behaviour bound to a DF."""

    def handle(self, cmd: CommandAPDU, fs: FileSystem) -> ResponseAPDU | None: ...

    def on_select(self, fs: FileSystem) -> ResponseAPDU | None: ...

    def fci(self, df: DedicatedFile) -> bytes | None: ...


@dataclass
class SecurityState:
    pin_verified: bool = False
    external_auth: bool = False
    challenge: bytes | None = None


_BARE: dict[int, ResponseAPDU] = {}  # answers without data are values: one per status word


def status(code: int, data: bytes = b"") -> ResponseAPDU:
    if data:
        return ResponseAPDU(data, code)
    answer = _BARE.get(code)
    if answer is None:
        answer = _BARE[code] = ResponseAPDU(b"", code)
    return answer


OK = status(SW.SW_OK)


@dataclass
class FileSystem:
    mf: DedicatedFile
    rng: random.Random = field(default_factory=random.Random)
    security: SecurityState = field(default_factory=SecurityState)

    def __post_init__(self) -> None:
        self.current_df: DedicatedFile = self.mf
        self.current_ef: ElementaryFile | None = None
        self._handlers = {
            iso.INS_SELECT: self._select, iso.INS_READ_BINARY: self._read_binary,
            iso.INS_UPDATE_BINARY: self._update_binary, iso.INS_READ_RECORD: self._read_record,
            iso.INS_UPDATE_RECORD: self._update_record, iso.INS_APPEND_RECORD: self._append_record,
            iso.INS_GET_CHALLENGE: self._get_challenge,
        }
        self._named: tuple[int, list[DedicatedFile]] = (-1, [])  # (tree version, the DFs in walk order)
        self._fci: dict[tuple[int, int | None, bytes | None], ResponseAPDU] = {}  # built-in FCI/FCP of a DF
        self._custom_fci: tuple[bytes, ResponseAPDU] | None = None  # the last application FCI and its answer

    # --- helpers -------------------------------------------------------------

    def reset(self) -> None:
        self.current_df = self.mf
        self.current_ef = None
        self.security = SecurityState()

    def get_challenge(self, n: int) -> bytes:
        value = bytes(self.rng.getrandbits(8) for _ in range(n))
        self.security.challenge = value
        return value

    def _allowed(self, rule: Access) -> int | None:
        if rule is Access.FREE:
            return None
        if rule is Access.NEVER:
            return SW.SW_NO_CURRENT_EF
        if rule is Access.PIN and not self.security.pin_verified:
            return SW.SW_SECURITY
        if rule is Access.EXTERNAL_AUTH and not self.security.external_auth:
            return SW.SW_SECURITY
        if rule is Access.LINE_MAC:
            return SW.SW_SM_MISSING
        return None

    # --- dispatch ------------------------------------------------------------

    def process(self, cmd: CommandAPDU) -> ResponseAPDU:
        app = self.current_df.application
        if app is not None:
            answer = app.handle(cmd, self)
            if answer is not None:
                return answer
        if cmd.cla not in ISO_CLASSES:
            return status(_class_refusal(cmd.cla) or SW.SW_CLA_NOT_SUPPORTED)
        handler = self._handlers.get(cmd.ins)
        if handler is None:
            return status(SW.SW_INS_NOT_SUPPORTED)
        return handler(cmd)

    # --- SELECT --------------------------------------------------------------

    def _select(self, cmd: CommandAPDU) -> ResponseAPDU:
        try:
            sel = iso.Select.from_apdu(cmd)
        except iso.IsoCommandError as exc:
            return status(exc.sw)
        target = self._select_target(sel)
        if target is None:
            return status(SW.SW_FILE_NOT_FOUND)
        if sel.reserved_bits:
            return status(SW.SW_INCORRECT_P1P2)
        if isinstance(target, DedicatedFile):
            self.current_df, self.current_ef = target, None
            self.security = SecurityState()
            if target.application is not None:
                # a blocked application refuses SELECT but stays current, so
                # APPLICATION UNBLOCK can reach it (PBOC EP)
                refusal = target.application.on_select(self)
                if refusal is not None:
                    return refusal
            return self._fci_answer(sel.answer, target)
        self.current_df = target.parent or self.mf
        self.current_ef = target
        return self._fcp_answer(sel.answer, target)

    def _select_target(self, sel: iso.Select) -> ElementaryFile | DedicatedFile | None:
        """The file a SELECT names, from the current DF (None: not found)."""
        if sel.by in (iso.BY_ID, iso.CHILD_DF, iso.EF_BY_ID):
            return self._by_fid(sel)
        if sel.by == iso.PARENT_DF:
            return self.current_df.parent or self.mf
        if sel.by == iso.BY_NAME:
            return self._by_name(sel.name, next_occurrence=sel.next_occurrence)
        node: ElementaryFile | DedicatedFile | None = self.mf if sel.by == iso.PATH_FROM_MF else self.current_df
        fids = sel.fids
        if sel.by == iso.PATH_FROM_MF and fids and fids[0] == 0x3F00:
            fids = fids[1:]
        for fid in fids:
            node = node.child_by_fid(fid) if isinstance(node, DedicatedFile) else None
        return node

    def _by_fid(self, sel: iso.Select) -> ElementaryFile | DedicatedFile | None:
        """P1 00 any file (also the parent DF's children), 01 a child DF, 02 an EF; 3F00 or none: the MF."""
        if not sel.name or sel.name == b"\x3f\x00":
            return self.mf
        fid = int.from_bytes(sel.name, "big")
        target = self.current_df.child_by_fid(fid)
        if target is None and sel.by == iso.BY_ID and self.current_df.parent is not None:
            target = self.current_df.parent.child_by_fid(fid)
        if sel.by == iso.CHILD_DF and not isinstance(target, DedicatedFile):
            return None
        if sel.by == iso.EF_BY_ID and not isinstance(target, ElementaryFile):
            return None
        return target

    def _by_name(self, name: bytes, next_occurrence: bool) -> DedicatedFile | None:
        """First DF whose name starts with ``name``, or the one after the current DF (P2 b2 b1 = 10)."""
        version, named = self._named
        if version != _tree_version:
            named = self.mf.walk()
            self._named = (_tree_version, named)
        found = [df for df in named if df.name and df.name.startswith(name)]
        if next_occurrence and self.current_df in found:
            found = found[found.index(self.current_df) + 1 :]
        return found[0] if found else None

    def _fci_answer(self, mode: int, df: DedicatedFile) -> ResponseAPDU:
        if mode == iso.ANSWER_NONE:
            return OK
        if mode != iso.ANSWER_FCP and df.application is not None:
            custom = df.application.fci(df)  # the application's FCI may follow its files: asked every time
            if custom is not None:
                last = self._custom_fci
                if last is None or last[0] is not custom:  # an application that keeps its FCI gives the same object
                    last = self._custom_fci = (custom, status(SW.SW_OK, custom))
                return last[1]
        key = (mode, df.fid, df.name)  # the built-in answers depend on these alone
        answer = self._fci.get(key)
        if answer is None:
            answer = self._fci[key] = self._built_in_fci(mode, df)
        return answer

    @staticmethod
    def _built_in_fci(mode: int, df: DedicatedFile) -> ResponseAPDU:
        if mode == iso.ANSWER_FCP:
            body = [build(0x82, b"\x38")]
            if df.fid is not None:
                body.append(build(0x83, df.fid.to_bytes(2, "big")))
            if df.name:
                body.append(build(0x84, df.name))
            return status(SW.SW_OK, build(0x62, body).encode())
        body = [build(0x84, df.name or (df.fid or 0x3F00).to_bytes(2, "big")), build(0xA5, b"")]
        return status(SW.SW_OK, build(0x6F, body).encode())

    def _fcp_answer(self, mode: int, ef: ElementaryFile) -> ResponseAPDU:
        if mode != iso.ANSWER_FCP:
            return OK
        if isinstance(ef, TransparentEF):
            body = [build(0x80, ef.size.to_bytes(2, "big")), build(0x82, b"\x01")]
        else:
            assert isinstance(ef, RecordEF)
            code = {"linear_fixed": 0x02, "linear_variable": 0x04, "cyclic": 0x06, "tlv": 0x04}[ef.structure]
            body = [build(0x82, bytes((code, 0x21, 0x00, min(ef.record_size or 0, 0xFF), min(ef.max_records, 0xFF))))]
        if ef.fid is not None:
            body.append(build(0x83, ef.fid.to_bytes(2, "big")))
        if ef.sfi is not None:
            body.append(build(0x88, bytes((ef.sfi << 3,))))
        return status(SW.SW_OK, build(0x62, body).encode())

    # --- binary --------------------------------------------------------------

    def _binary_target(self, cmd: CommandAPDU, write: bool) -> tuple[TransparentEF | None, int, int]:
        """The EF and offset a binary command names, once its access rule allows it; else the SW."""
        try:
            ref = iso.BinaryRef.from_p1p2(cmd.p1, cmd.p2)
        except iso.IsoCommandError as exc:
            return None, 0, exc.sw
        if ref.sfi is not None:
            ef = self.current_df.ef_by_sfi(ref.sfi)
            if ef is None:
                return None, 0, SW.SW_FILE_NOT_FOUND
        else:
            ef = self.current_ef
            if ef is None:
                return None, 0, SW.SW_NO_CURRENT_EF
        if not isinstance(ef, TransparentEF):
            return None, 0, SW.SW_WRONG_FILE_STRUCTURE
        denied = self._allowed(ef.access.write if write else ef.access.read)
        if denied:
            return None, 0, denied
        return ef, ref.offset, SW.SW_OK

    def _read_binary(self, cmd: CommandAPDU) -> ResponseAPDU:
        ef, offset, err = self._binary_target(cmd, write=False)
        if ef is None:
            return status(err)
        if cmd.data:
            return status(SW.SW_WRONG_LENGTH)
        if offset > ef.size:
            return status(SW.SW_WRONG_P1P2)
        self.current_ef = ef
        want = cmd.le or 256
        chunk = bytes(ef.data[offset : offset + want])
        if len(chunk) < want and cmd.le not in (None, 256):
            return status(SW.SW_WARNING_EOF, chunk)
        return status(SW.SW_OK, chunk)

    def _update_binary(self, cmd: CommandAPDU) -> ResponseAPDU:
        ef, offset, err = self._binary_target(cmd, write=True)
        if ef is None:
            return status(err)
        if not cmd.data:
            return status(SW.SW_WRONG_LENGTH)
        if offset + len(cmd.data) > ef.size:
            return status(SW.SW_NOT_ENOUGH_MEMORY)
        ef.data[offset : offset + len(cmd.data)] = cmd.data
        self.current_ef = ef
        return OK

    # --- records -------------------------------------------------------------

    def _record_target(self, ref: iso.RecordRef, write: bool) -> tuple[RecordEF | None, int]:
        """The record EF a record command names, once its access rule allows it; else the SW."""
        ef = self.current_df.ef_by_sfi(ref.sfi) if ref.sfi else self.current_ef
        if ef is None:
            return None, SW.SW_FILE_NOT_FOUND if ref.sfi else SW.SW_NO_CURRENT_EF
        if not isinstance(ef, RecordEF):
            return None, SW.SW_WRONG_FILE_STRUCTURE
        denied = self._allowed(ef.access.write if write else ef.access.read)
        return (None, denied) if denied else (ef, SW.SW_OK)

    def _read_record(self, cmd: CommandAPDU) -> ResponseAPDU:
        ref = iso.RecordRef.from_p1p2(cmd.p1, cmd.p2)
        ef, err = self._record_target(ref, write=False)
        if ef is None:
            return status(err)
        if ref.mode == iso.RECORD_NUMBER:
            number: int | None = ref.record
        elif ref.mode == iso.FIRST_BY_ID:
            number = ef.find_by_id(ref.record)
        else:
            return status(SW.SW_INCORRECT_P1P2)
        if not number or number > len(ef.records):
            return status(SW.SW_RECORD_NOT_FOUND)
        self.current_ef = ef
        data = ef.record(number)
        if cmd.le not in (None, 256) and cmd.le != len(data):
            if cmd.le is not None and cmd.le < len(data):
                return status(0x6C00 | len(data))
        return status(SW.SW_OK, data)

    def _update_record(self, cmd: CommandAPDU) -> ResponseAPDU:
        ref = iso.RecordRef.from_p1p2(cmd.p1, cmd.p2)
        ef, err = self._record_target(ref, write=True)
        if ef is None:
            return status(err)
        try:
            if ref.mode == iso.RECORD_NUMBER:
                ef.update(ref.record, cmd.data)
            elif ref.mode == iso.FIRST_BY_ID:
                ef.update_by_id(ref.record, cmd.data)
            else:
                return status(SW.SW_INCORRECT_P1P2)
        except IndexError:
            return status(SW.SW_RECORD_NOT_FOUND)
        except (ValueError, OverflowError):
            return status(SW.SW_WRONG_LENGTH)
        self.current_ef = ef
        return OK

    def _append_record(self, cmd: CommandAPDU) -> ResponseAPDU:
        ref = iso.RecordRef.from_p1p2(cmd.p1, cmd.p2)
        if ref.record or ref.mode:
            return status(SW.SW_INCORRECT_P1P2)
        ef, err = self._record_target(ref, write=True)
        if ef is None:
            return status(err)
        try:
            ef.append(cmd.data)
        except ValueError:
            return status(SW.SW_WRONG_LENGTH)
        except OverflowError:
            return status(SW.SW_NOT_ENOUGH_MEMORY)
        self.current_ef = ef
        return OK

    def _get_challenge(self, cmd: CommandAPDU) -> ResponseAPDU:
        try:
            length = iso.GetChallenge.from_apdu(cmd).length
        except iso.IsoCommandError as exc:
            return status(exc.sw)
        return status(SW.SW_OK, self.get_challenge(length))

    # --- persistence ---------------------------------------------------------

    def files_to_json(self) -> list[dict[str, Any]]:
        """Every EF's contents, addressed by DF path and FID/SFI."""
        out: list[dict[str, Any]] = []
        for df in self.mf.walk():
            for child in df.children:
                if isinstance(child, ElementaryFile):
                    entry: dict[str, Any] = {"df": df_path(df), "fid": child.fid, "sfi": child.sfi}
                    if isinstance(child, TransparentEF):
                        entry["data"] = child.data.hex().upper()
                    elif isinstance(child, RecordEF):
                        entry["records"] = [r.hex().upper() for r in child.records]
                    out.append(entry)
        return out

    def files_from_json(self, items: list[dict[str, Any]]) -> None:
        """Load contents saved by :meth:`files_to_json` into this (same-shaped) tree."""
        index = {(df_path(df), c.fid, c.sfi): c for df in self.mf.walk() for c in df.children
                 if isinstance(c, ElementaryFile)}
        for item in items:
            try:
                ef = index[(item["df"], item.get("fid"), item.get("sfi"))]
                if isinstance(ef, TransparentEF):
                    data = bytes.fromhex(item["data"])
                    if len(data) != ef.size:
                        raise FormatError(f"file {item.get('sfi')}: {len(data)} bytes, expected {ef.size}")
                    ef.data = bytearray(data)
                elif isinstance(ef, RecordEF):
                    records = [ef._fit(bytes.fromhex(r)) for r in item["records"]]
                    if len(records) > ef.max_records:
                        raise FormatError(f"file {item.get('sfi')}: {len(records)} records, at most {ef.max_records}")
                    ef.records = records
            except (KeyError, TypeError, ValueError) as exc:
                raise FormatError(f"card image: bad file entry {str(item)[:60]}: {exc}") from None


def df_path(df: DedicatedFile) -> str:
    parts = []
    node: DedicatedFile | None = df
    while node is not None:
        parts.append(f"{node.fid or 0x3F00:04X}")
        node = node.parent
    return "/".join(reversed(parts))
