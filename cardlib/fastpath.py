"""The speed tricks of cardlib, in one place, each with the figure that keeps it.

Everything else in cardlib is written plainly: frozen dataclasses built by
their generated ``__init__``, a fresh cipher context per call, no caches of
keys. A trick lives here only when a benchmark guard (docs/performance.md)
would be missed, or nearly, without it; each has a property test in
tests/cardlib/test_fastpath.py that it gives what the plain path gives.

1. :func:`chained_cbc_mac` — one CBC context for every MAC under one key.
   Settlement checks every TAC of a card under the same key (B6, one core
   ≥ 0.8× a bare DES-MAC loop that builds a cipher per MAC). Setting up a
   cipher context costs more than the MAC of a 20-byte TAC input: with a
   fresh context per MAC, ``verify_records`` ran at 0.62× the bare loop, under
   the guard; with the chained context at 1.02× (same run, one core;
   docs/performance.md, "Readable core"). The caller holds the function for
   one card or one batch and drops it after: the key lives no longer than that.

2. :func:`response` — the channel's answer built without the dataclass's
   ``__init__`` and ``__post_init__`` check: a status word read from two bytes
   is always in range. Every APDU of every reader goes through it (B2, our
   channel ≤ 1.10× bare pyscard, 0.017 of margin before this change). In
   process, ``Channel.transmit`` of a SELECT over a reader that answers at once
   (best of seven runs of 100,000, same run): 0.54–0.72 µs on main's code,
   1.14–1.21 µs written plainly, 0.74–0.80 µs with this; through pcscd the
   difference grows several times (docs/performance.md, B2).

3. :func:`scard_transmit` — pyscard's ``scard.SCardTransmit`` is a Python
   function that only passes its arguments on to the SWIG module's; calling
   the SWIG function saves one Python call per APDU (B2, our channel ≤ 1.10×
   bare pyscard, with a margin of a few per cent).

One more stays where it acts, because a call would cost what it saves:
``Channel.transmit`` sends a command given as bytes of 4 to limit + 5 bytes
as it is, without parsing it for chaining (B2 alternating with main's tree:
1.047 and 1.051 with it, main 1.052 and 1.056; without it 1.086 and 1.097).
Its property test: a command as bytes crosses the wire as the same command
given as a value.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from cardlib.apdu import ResponseAPDU


def chained_cbc_mac(update: Callable[[bytes], bytes], block: int) -> Callable[[int, int], bytes]:
    """The 4-byte purse MAC (ISO/IEC 9797-1 algorithm 1, padding method 2, zero IV) of many
    messages, through ``update``: the encryptor of ONE CBC context with a zero IV, under the
    key, whose blocks are ``block`` bytes. The function returned takes a message as its
    big-endian value and its length in bytes; a value that does not fit raises OverflowError.

    A CBC context XORs its next input block with the last block it gave out. XORing that
    block into the message's first block cancels the chaining, so every message comes out
    as from a fresh context with a zero IV. One caller at a time.
    """
    chain = 0  # the last block the context gave out, as a number
    layouts: dict[int, tuple[int, int, int]] = {}

    def layout(size: int) -> tuple[int, int, int]:
        """Padded size, shift and pad of a ``size``-byte message: 80, then zeros to the block."""
        padded = block * (size // block + 1)
        zeros = 8 * (padded - size - 1)
        layouts[size] = found = (padded, zeros + 8, 0x80 << zeros)
        return found

    def mac(value: int, size: int) -> bytes:
        nonlocal chain
        padded, shift, pad = layouts.get(size) or layout(size)
        message = value << shift | pad
        out = update((message ^ chain << 8 * (padded - block)).to_bytes(padded, "big"))
        chain = int.from_bytes(out[-block:], "big")
        return out[-block : 4 - block]

    return mac


def scard_transmit(scard: ModuleType) -> Callable[[Any, Any, list[int]], tuple[int, list[int]]]:
    """pyscard's SCardTransmit without its Python wrapper: the SWIG module's function when
    pyscard has one (``smartcard.scard._scard``), else the wrapper itself."""
    swig = getattr(scard, "_scard", None)
    transmit: Callable[[Any, Any, list[int]], tuple[int, list[int]]] = getattr(
        swig, "SCardTransmit", scard.SCardTransmit)
    return transmit


_new = object.__new__
# the slots' own setters: a frozen dataclass's __setattr__ refuses every assignment
_set_data: Callable[[ResponseAPDU, bytes], None] = vars(ResponseAPDU)["data"].__set__
_set_sw: Callable[[ResponseAPDU, int], None] = vars(ResponseAPDU)["sw"].__set__


def response(data: bytes, sw: int) -> ResponseAPDU:
    """``ResponseAPDU(data, sw)`` for a ``sw`` known to be two bytes (read from the wire)."""
    answer = _new(ResponseAPDU)
    _set_data(answer, data)
    _set_sw(answer, sw)
    return answer
