"""An explicit, time-zone-aware clock (DESIGN.md "Time").

Card dates and times are Beijing time; every flow takes a clock so fare and
recovery windows are reproducible in tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cardlib.errors import FormatError

try:
    BEIJING: tzinfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # pragma: no cover - minimal systems without tzdata
    BEIJING = timezone(timedelta(hours=8), "CST")


def parse_time(text: str, tz: tzinfo = BEIJING) -> datetime:
    """ISO 8601; a time without an offset is taken in ``tz``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormatError(f"bad time {text!r}: expected ISO 8601, e.g. 2026-11-28T08:15:00+08:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    _representable(value, text)
    return value


def _representable(value: datetime, text: object) -> None:
    """A time every flow can use: it exists in UTC and in Beijing time (0001-01-01T00:00+14:00
    does not), the days the journal and the card write."""
    try:
        value.astimezone(BEIJING)
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise FormatError(f"time {text!s}: outside the years 1..9999 in UTC or Beijing time") from None


@dataclass
class Clock:
    """Now, in a time zone. ``fixed`` clocks only move when told to."""

    tz: tzinfo = BEIJING
    _fixed: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def system(cls, tz: tzinfo = BEIJING) -> Clock:
        return cls(tz)

    @classmethod
    def fixed(cls, when: datetime, tz: tzinfo = BEIJING) -> Clock:
        if when.tzinfo is None:
            when = when.replace(tzinfo=tz)
        return cls(tz, when)

    @classmethod
    def fixed_from_text(cls, text: str, tz: tzinfo = BEIJING) -> Clock:
        return cls.fixed(parse_time(text, tz), tz)

    def now(self) -> datetime:
        with self._lock:
            if self._fixed is not None:
                return self._fixed.astimezone(self.tz)
        return datetime.now(self.tz)

    def advance(self, delta: timedelta | float) -> None:
        """Move a fixed clock forward (seconds or a timedelta)."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            if self._fixed is None:
                raise ValueError("only a fixed clock can be advanced")
            try:
                moved = self._fixed + delta
            except OverflowError:
                raise FormatError(f"the clock cannot move {delta} past {self._fixed.isoformat()}") from None
            _representable(moved, moved.isoformat())
            self._fixed = moved

    def set(self, when: datetime) -> None:
        with self._lock:
            self._fixed = when if when.tzinfo else when.replace(tzinfo=self.tz)

    @property
    def is_fixed(self) -> bool:
        return self._fixed is not None
