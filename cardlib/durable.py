"""Files that survive a power cut: a rename or a new file is durable only once
its directory is synced too (POSIX fsync(2) of the directory; Linux ext4 and
xfs need it for the entry, not only for the data)."""

from __future__ import annotations

import os


def sync_directory(path: str | os.PathLike[str]) -> None:
    """fsync the directory ``path`` (its entries: names created, renamed, removed). Not on Windows."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """``os.replace`` a synced temporary file over ``target``, then sync the directory: after a
    power cut the target is the old file or the new one, never gone or half written."""
    os.replace(tmp, target)
    sync_directory(os.path.dirname(os.path.abspath(target)))
