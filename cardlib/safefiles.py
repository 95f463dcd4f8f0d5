"""Files that are what they seem: inputs that must be regular files of a bounded
size, outputs written beside their target and renamed only over a regular file,
and a look at what an existing file holds before anything overwrites it.

A FIFO, a device or a directory named as a card image, a configuration or a
key file would hang a read for ever or fill memory (``/dev/zero``); a link at a
predictable temporary name would redirect a write; a trace path naming the
journal would truncate it. Each is refused here with one line (FormatError,
or the error class the caller names).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO

from cardlib.durable import replace_durably
from cardlib.errors import FormatError

MiB = 1 << 20
# what the project reads whole into memory, and how much of it is ever sensible
LIMIT_SMALL = 16 * MiB  # card images, key files, configurations
LIMIT_SCRIPT = 64 * MiB  # APDU scripts, tap scripts
LIMIT_TRACE = 1024 * MiB  # recorded traces, settlement batches

SQLITE_MAGIC = b"SQLite format 3\x00"
DENYLIST_MAGIC = b"YKTDENY\x00"  # terminal/denylist.py's MAGIC, recognised here without importing the terminal


def kind_of_mode(mode: int) -> str:
    """A person's name for what ``st_mode`` says a path is."""
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return name
    return "special file"


def open_regular(path: str | os.PathLike[str], what: str, limit: int | None = None,
                 error: type[Exception] = FormatError) -> IO[bytes]:
    """Open an input that must be a regular file (binary), at most ``limit`` bytes.

    Opened non-blocking, so a FIFO with no writer is refused at once instead of
    hanging the open; a directory, a device or a socket is refused the same way.
    Errors of the open itself (no such file, permission) stay OSError for the
    caller's own message."""
    name = os.fspath(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(name, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"cannot read {what} {name!r}: it is a {kind_of_mode(st.st_mode)}, not a regular file")
        if limit is not None and st.st_size > limit:
            raise error(f"cannot read {what} {name!r}: {st.st_size} bytes, over the limit of {limit}")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], what: str, limit: int, error: type[Exception] = FormatError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (one that grows past it while read is refused too)."""
    with open_regular(path, what, limit, error) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise error(f"cannot read {what} {os.fspath(path)!r}: over the limit of {limit} bytes")
    return data


def read_text(path: str | os.PathLike[str], what: str, limit: int, error: type[Exception] = FormatError) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (UnicodeDecodeError as the caller's)."""
    return read_regular(path, what, limit, error).decode("utf-8")


def check_regular(path: str | os.PathLike[str], what: str, error: type[Exception] = FormatError) -> None:
    """Refuse an existing path that is not a regular file (for files another library opens: SQLite, mmap)."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError:
        return  # the opener says what is missing or unreadable
    if not stat.S_ISREG(st.st_mode):
        raise error(f"cannot read {what} {name!r}: it is a {kind_of_mode(st.st_mode)}, not a regular file")


# --- what an existing file holds ---------------------------------------------------------------


def identify(path: str | os.PathLike[str]) -> str | None:
    """What an existing file is, by its first bytes: ``"journal"`` (any SQLite database),
    ``"deny list"``, ``"card image"``, ``"key file"``, ``"batch"``, ``"trace"``, ``"empty"``,
    ``"file"`` (anything else), or the kind of a non-regular path; None when nothing is there.
    Links are followed, so every spelling of one file gives the same answer."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return kind_of_mode(st.st_mode)
    try:
        with open_regular(name, "file") as fh:
            head = fh.read(4096)
    except (OSError, FormatError):
        return "file"
    return _kind_of_head(head)


def _kind_of_head(head: bytes) -> str:
    """What a file is by its first bytes (see :func:`identify`)."""
    if not head:
        return "empty"
    if head.startswith(SQLITE_MAGIC):
        return "journal"
    if head.startswith(DENYLIST_MAGIC):
        return "deny list"
    text = head.decode("utf-8", "replace")
    for marker, kind in (('"yikatong-card-image"', "card image"), ('"yikatong-issuer-keys"', "key file")):
        if marker in text:
            return kind
    first = text.split("\n", 1)[0]
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        # a first line longer than the head read: a trace line starts with its header's or exchange's keys
        return "trace" if first.startswith(('{"atr": "', '{"t": "')) and len(first) == len(text) else "file"
    if isinstance(obj, dict):
        if obj.get("type") == "header":
            return "batch"
        if "atr" in obj or "command" in obj:
            return "trace"
    return "file"


def check_trace_output(path: str | os.PathLike[str]) -> None:
    """Refuse a trace path that would destroy something: an existing file that is not a
    trace (the journal, a card image, a deny list, a batch, a key file, any other file),
    or a FIFO, directory or socket. An empty file, an earlier trace, a character
    device (``/dev/null``) or a new name is fine."""
    name = os.fspath(path)
    kind = identify(name)
    if kind in (None, "empty", "trace", "character device"):
        return
    raise FormatError(f"--trace {name}: that is a {kind}, not a trace; it is left as it is (name another file)")


# what an output replaces only with --force (a card's balance, a list, a batch to settle), and what
# it never replaces (the journal's records, the issuer's keys)
GUARDED = ("card image", "deny list", "batch")
NEVER = ("journal", "key file")


# --- writing -----------------------------------------------------------------------------------


def check_output(path: str | os.PathLike[str], what: str, *, force: bool = False,
                 guard: tuple[str, ...] = ()) -> str:
    """Check an output path before anything is written; returns the path to write (links followed).

    Its folder must exist; what is there must be a regular file or nothing; an existing
    file of a kind in ``guard`` (a card image, a deny list, a batch…) is replaced only
    with ``force``."""
    name = os.fspath(path)
    real = os.path.realpath(name)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise FormatError(f"cannot write {what} {name!r}: the folder {os.path.dirname(name) or '.'!r} does not exist")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise FormatError(f"cannot write {what} {name!r}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(f"cannot write {what} {name!r}: it is a {kind_of_mode(st.st_mode)}; only a regular file"
                          " is replaced")
    if guard:
        kind = identify(real)
        if kind in NEVER:
            raise FormatError(f"cannot write {what} {name!r}: it is a {kind}, never replaced by a {what}")
        if kind in guard and not force:
            raise FormatError(f"cannot write {what} {name!r}: it is a {kind}; it is replaced only with --force")
    return real


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], what: str, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """Write a file whole and put it in place durably: the block writes a temporary
    file made with ``mkstemp`` in the target's folder (O_EXCL, never through a link);
    when it ends the file is synced and renamed over the target, only when the target
    is a regular file or nothing (a link the user named is followed to its file). If
    the block raises, the temporary file goes and the target is untouched. OSError
    becomes FormatError naming the file."""
    name = os.fspath(path)
    target = check_output(name, what)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                                   dir=os.path.dirname(target))
    except OSError as exc:
        raise FormatError(f"cannot write {what} {name!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        check_output(target, what)  # still a regular file or nothing at the moment of the rename
        replace_durably(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FormatError(f"cannot write {what} {name!r}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
