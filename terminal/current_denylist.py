"""The deny list a running terminal checks: the last good file, replaced only by a good one.

A deny list fails closed (terminal/denylist.py): a replacement that fails any
check is refused and the terminal keeps the list it had, saying so once per
bad file. A terminal that has no good list at start refuses to start unless
its configuration allows it (``denylist.start_without``, docs/configuration.md);
it then checks no serial until a good list arrives.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from terminal.denylist import DenyList, DenyListError

Report = Callable[[str], None]


def _stamp(path: str) -> tuple[int, int, int, int] | None:
    """What changes when the file is replaced or rewritten (None: no file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class CurrentDenyList:
    """``serial in current`` asks the last good list; ``refresh()`` picks up a new file."""

    def __init__(self, path: str | os.PathLike[str], report: Report, start_without: bool = False) -> None:
        self.path = os.fspath(path)
        self.report = report
        self.list: DenyList | None = None
        self.problem: str | None = None  # why the file on disk is not the list in use, if it is not
        self._seen = _stamp(self.path)
        try:
            self.list = DenyList(self.path)
        except DenyListError as exc:
            if not start_without:
                raise DenyListError(f"{exc}; no good deny list, the terminal does not start "
                                    f"(denylist.start_without = true runs without one)") from None
            self.problem = str(exc)
            report(f"deny list refused: {exc}; running WITHOUT a deny list until a good one arrives")
        else:
            report(f"deny list: version {self.list.version}, {len(self.list)} serial(s) from {self.path}")

    def __contains__(self, serial: object) -> bool:
        return self.list is not None and serial in self.list

    @property
    def version(self) -> int | None:
        return None if self.list is None else self.list.version

    def refresh(self) -> bool:
        """Open the file again if it changed since the last look; True when a new list is in use.

        A bad replacement is reported once and changes nothing: the previous
        good list (or none, when the terminal started without one) stays.
        """
        stamp = _stamp(self.path)
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            fresh = DenyList(self.path)
        except DenyListError as exc:
            self.problem = str(exc)
            kept = (f"keeping list version {self.list.version}" if self.list is not None
                    else "still running WITHOUT a deny list")
            self.report(f"deny list replacement refused: {exc}; {kept}")
            return False
        old, self.list, self.problem = self.list, fresh, None
        if old is not None:
            old.close()
        self.report(f"deny list: version {fresh.version}, {len(fresh)} serial(s) from {self.path}")
        return True

    def close(self) -> None:
        if self.list is not None:
            self.list.close()
            self.list = None
