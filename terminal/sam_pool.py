"""A pool of PSAMs shared by a station's lanes (docs/station.md, "The SAM pool").

Modelled on Eclipse Keyple's card resource service: a lane asks for a PSAM of
a kind (Keyple: a card resource profile), gets one by the configured
allocation strategy — ``first`` (the first free slot, Keyple's default),
``cyclic`` (round robin) or ``random`` — holds it for one transaction and
releases it. Where Keyple's blocking mode gives null after its timeout, the
pool raises :class:`NoSamAvailableError`.

A PSAM whose slot stops answering (pulled out, reader unplugged) leaves the
pool: the transaction that lost it sees :class:`PsamUnavailableError`, the
next one gets another PSAM of the kind. A slot that has left is tried again
(reconnected, its terminal number and key index read) at most every
``retry`` seconds when a PSAM of its kind is asked for; it rejoins when it
answers and is still the kind configured.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cardlib.channel import Channel
from cardlib.errors import ConfigError, RefusedError, TransportError, YktError
from cardlib.keystore import TUNION_KEY_INDEX, PsamKind
from cardlib.readers.base import Disposition, Reader
from terminal.psam import PsamClient

STRATEGIES = ("first", "cyclic", "random")


class NoSamAvailableError(RefusedError):
    """No PSAM of the kind asked for became free within the allocation timeout."""


class PsamUnavailableError(YktError):
    """The PSAM serving this transaction stopped answering (its slot left the pool).

    Not a TransportError: the card is still there; the tap is refused as "PSAM unavailable".
    """


@dataclass(frozen=True)
class SamSlot:
    """A configured PSAM slot: its name, reader URI and kind."""

    name: str
    uri: str
    kind: PsamKind


class PooledSam:
    """One PSAM slot of the pool: its reader, the client while it answers."""

    def __init__(self, slot: SamSlot, opener: Callable[[str], Reader], test: bool,
                 tunion_key_index: int = TUNION_KEY_INDEX) -> None:
        self.slot = slot
        self.tunion_key_index = tunion_key_index
        self._opener = opener
        self._test = test
        self.reader: Reader | None = None
        self.client: PsamClient | None = None
        self.busy = False
        self.terminal_id: bytes | None = None  # kept after the PSAM leaves: its records stay the station's
        self.last_try = 0.0
        self.problem = ""

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def kind(self) -> PsamKind:
        return self.slot.kind

    @property
    def present(self) -> bool:
        return self.client is not None

    def join(self) -> bool:
        """Open (or reconnect) the slot and read the PSAM; True when it answers as its kind."""
        self.last_try = time.monotonic()
        try:
            if self.reader is None:
                self.reader = self._opener(self.slot.uri)
            self.reader.connect()
            # a PSAM joining is in a state nobody knows (another program may have left it inside its
            # application, where the terminal number is not found): reset it first
            self.reader.disconnect(Disposition.RESET)
            self.reader.connect()
            client = PsamClient(Channel(self.reader), test=self._test)
        except YktError as exc:
            self.problem = str(exc)
            self.client = None
            return False
        expected_tunion = self.kind is PsamKind.TUNION
        if (client.key_index == self.tunion_key_index) != expected_tunion:
            self.problem = (f"PSAM in {self.name} has key index {client.key_index}: not a {self.kind.value} PSAM"
                            f" (T-Union PSAMs use key index {self.tunion_key_index})")
            self.client = None
            return False
        self.problem = ""
        self.client = client
        self.terminal_id = client.terminal_id
        return True

    def leave(self, why: str) -> None:
        self.client = None
        self.problem = why

    def close(self) -> None:
        self.client = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None


class SamPool:
    """PSAMs by kind, allocated one transaction at a time (thread-safe)."""

    def __init__(self, slots: list[SamSlot], opener: Callable[[str], Reader], *, test: bool = False,
                 strategy: str = "first", timeout: float = 2.0, retry: float = 0.5,
                 rng: random.Random | None = None, log: Callable[[str], None] | None = None,
                 tunion_key_index: int = TUNION_KEY_INDEX) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"pool.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
        if timeout < 0 or retry < 0:
            raise ConfigError("pool: timeout and retry must not be negative")
        names = [s.name for s in slots]
        if len(set(names)) != len(names):
            raise ConfigError(f"psam: two slots share a name ({', '.join(sorted(names))})")
        self.strategy = strategy
        self.timeout = timeout
        self.retry = retry
        self._rng = rng or random.Random()
        self._log = log or (lambda line: None)
        self._cond = threading.Condition()
        self.sams = [PooledSam(s, opener, test, tunion_key_index) for s in slots]
        self._next: dict[PsamKind, int] = {}

    @property
    def kinds(self) -> set[PsamKind]:
        return {s.kind for s in self.sams}

    def start(self) -> None:
        """Open every slot; a slot that does not answer stays out until it does (logged)."""
        for sam in self.sams:
            if sam.join():
                self._log(f"psam {sam.name}: {sam.kind.value}, terminal {sam.client.terminal_id.hex().upper()}"  # type: ignore[union-attr]
                          f" key index {sam.client.key_index}")  # type: ignore[union-attr]
            else:
                self._log(f"psam {sam.name}: not in the pool ({sam.problem})")

    def close(self) -> None:
        with self._cond:
            for sam in self.sams:
                sam.close()

    def present(self, kind: PsamKind | None = None) -> list[PooledSam]:
        return [s for s in self.sams if s.present and (kind is None or s.kind is kind)]

    def terminal_ids(self) -> set[bytes]:
        """The terminal numbers of every PSAM that has been in the pool (their records are this station's)."""
        with self._cond:
            return {s.terminal_id for s in self.sams if s.terminal_id is not None}

    def _rejoin(self, kind: PsamKind) -> None:
        """Try the slots of ``kind`` that have left, at most every ``retry`` seconds each (under the lock)."""
        now = time.monotonic()
        for sam in self.sams:
            if sam.kind is kind and not sam.present and not sam.busy and now - sam.last_try >= self.retry:
                if sam.join():
                    self._log(f"psam {sam.name}: back in the pool")

    def _pick(self, kind: PsamKind) -> PooledSam | None:
        free = [s for s in self.sams if s.kind is kind and s.present and not s.busy]
        if not free:
            return None
        if self.strategy == "random":
            return self._rng.choice(free)
        if self.strategy == "cyclic":
            order = [s for s in self.sams if s.kind is kind]
            start = self._next.get(kind, 0)
            for i in range(len(order)):
                sam = order[(start + i) % len(order)]
                if sam in free:
                    self._next[kind] = (order.index(sam) + 1) % len(order)
                    return sam
        return free[0]

    def allocate(self, kind: PsamKind, timeout: float | None = None) -> PooledSam:
        """A free PSAM of ``kind``, waiting up to ``timeout`` (the pool's by default)."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                self._rejoin(kind)
                sam = self._pick(kind)
                if sam is not None:
                    sam.busy = True
                    return sam
                left = deadline - time.monotonic()
                if left <= 0:
                    have = [s for s in self.sams if s.kind is kind]
                    present = [s for s in have if s.present]
                    what = (f"all {len(present)} in use" if present else
                            f"none present of {len(have)} configured" if have else "none configured")
                    raise NoSamAvailableError(f"no {kind.value} PSAM free within {wait:g} s ({what})")
                self._cond.wait(min(left, self.retry) if self.retry > 0 else left)

    def release(self, sam: PooledSam) -> None:
        """Give the PSAM back (also after it was lost); wakes a lane waiting for one."""
        with self._cond:
            sam.busy = False
            self._cond.notify_all()

    def lost(self, sam: PooledSam, why: str) -> None:
        """The PSAM stopped answering: it leaves the pool until it answers again."""
        with self._cond:
            if sam.present:
                self._log(f"psam {sam.name}: left the pool ({why})")
            sam.leave(why)

    @contextmanager
    def use(self, kind: PsamKind, timeout: float | None = None) -> Iterator[PooledSam]:
        """``with pool.use(kind) as sam:`` — released however the block ends."""
        sam = self.allocate(kind, timeout)
        try:
            yield sam
        finally:
            self.release(sam)


__all__ = ["STRATEGIES", "NoSamAvailableError", "PooledSam", "PsamUnavailableError", "SamPool", "SamSlot",
           "TransportError"]
