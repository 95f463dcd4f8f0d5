"""B2: per-APDU cost of our channel over PC/SC vs bare pyscard, on the same card.

The simulated social security card is served behind pcscd through vpcd
(``simulators.vpcd.VpcdBridge``, in a process of its own). Ours: ``Channel(PcscReader(...)).transmit``
of SELECT of the purse AID (as ``ykt bench``); bare: ``smartcard.scard.
SCardTransmit`` of the same APDU (as the list of ints pyscard takes) on the
same connection (the reader's context and card handle): two connections
differ by up to ~5 % between themselves on these machines, the same one
leaves only the code.

Two ways of alternating, both printed: blocks of 400 APDUs of each side
(ABBA), judged by the median of the per-block ratios (target ≤ 1.10), and,
beside it, pairs — one APDU of each side, the order swapped every pair, each
timed on its own (the ratio of the two sides' median APDU) — since the blocks
showed position effects between identical code paths on these machines
(docs/performance.md, B2). Both give 1.07–1.16 across runs here.
"""

from __future__ import annotations

import statistics
import time

from cardlib.channel import Channel
from cardlib.readers.pcsc import PcscReader
from tests.bench.common import Result, alternate, banner, knob, median, say, us
from tests.bench.pcsc import served_sample_card, start_pcscd, stop_pcscd

NAME = "B2"
TITLE = "our channel over PC/SC vs bare pyscard SCardTransmit, per APDU (same card, pcscd + vpcd)"
SELECT_PURSE = bytes.fromhex("00A4040008A000000632010105")
PORT = 35963
TARGET = 1.10


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    total = knob("YKT_BENCH_B2_N", 16_000, 40, quick)
    blocks = 40 if not quick else 2
    per_block = max(1, total // blocks)
    daemon = start_pcscd()
    try:
        with served_sample_card(PORT) as name:
            reader = PcscReader(name)
            reader.connect()
            channel = Channel(reader)
            from smartcard import scard

            handle, pci = reader._card, reader._send_pci  # our connection, used bare
            try:
                ours_sw = channel.transmit(SELECT_PURSE).sw
                apdu_list = list(SELECT_PURSE)
                hresult, bare_answer = scard.SCardTransmit(handle, pci, apdu_list)
                assert ours_sw == 0x9000 and hresult == 0 and bare_answer[-2:] == [0x90, 0x00], (hex(ours_sw), hresult)
                samples: dict[str, list[float]] = {"ours": [], "bare": []}

                def ours_block() -> float:
                    transmit = channel.transmit
                    t0 = time.perf_counter()
                    for _ in range(per_block):
                        transmit(SELECT_PURSE)
                    return time.perf_counter() - t0

                def bare_block() -> float:
                    transmit = scard.SCardTransmit
                    t0 = time.perf_counter()
                    for _ in range(per_block):
                        transmit(handle, pci, apdu_list)
                    return time.perf_counter() - t0

                def single(side: str) -> None:  # the spread of one APDU, after the blocks
                    for _ in range(min(200, per_block)):
                        t0 = time.perf_counter()
                        if side == "ours":
                            channel.transmit(SELECT_PURSE)
                        else:
                            scard.SCardTransmit(handle, pci, apdu_list)
                        samples[side].append(time.perf_counter() - t0)

                def pairs(count: int) -> tuple[list[float], list[float]]:
                    ours_t: list[float] = []
                    bare_t: list[float] = []
                    clock, transmit, bare = time.perf_counter, channel.transmit, scard.SCardTransmit
                    for i in range(count):
                        if i % 2:
                            t0 = clock()
                            transmit(SELECT_PURSE)
                            t1 = clock()
                            bare(handle, pci, apdu_list)
                            t2 = clock()
                            ours_t.append(t1 - t0)
                            bare_t.append(t2 - t1)
                        else:
                            t0 = clock()
                            bare(handle, pci, apdu_list)
                            t1 = clock()
                            transmit(SELECT_PURSE)
                            t2 = clock()
                            bare_t.append(t1 - t0)
                            ours_t.append(t2 - t1)
                    return ours_t, bare_t

                for _ in range(min(50, per_block)):  # warm up
                    channel.transmit(SELECT_PURSE)
                    scard.SCardTransmit(handle, pci, apdu_list)
                times = alternate(blocks, {"ours": ours_block, "bare": bare_block})
                paired_ours, paired_bare = pairs(total // 2)
                for side in ("ours", "bare"):
                    single(side)
            finally:
                reader.close()
    finally:
        stop_pcscd(daemon)
    n = per_block * blocks
    t_ours, t_bare = sum(times["ours"]), sum(times["bare"])
    block_ratios = [o / b for o, b in zip(times["ours"], times["bare"], strict=True)]
    ratio = median(block_ratios)  # adjacent blocks share the machine's state; one stall moves one ratio only
    say(f"  {n:,} APDUs per side in {blocks} alternating blocks of {per_block}")
    result.figure("ours_us_per_apdu", round(t_ours / n * 1e6, 1),
                  f"ours (Channel → PcscReader): {us(t_ours / n)} per APDU "
                  f"(single APDUs: median {us(median(samples['ours']))}, "
                  f"p90 {us(_p90(samples['ours']))})")
    result.figure("bare_us_per_apdu", round(t_bare / n * 1e6, 1),
                  f"bare SCardTransmit: {us(t_bare / n)} per APDU "
                  f"(single APDUs: median {us(median(samples['bare']))}, p90 {us(_p90(samples['bare']))})")
    result.figure("overhead_us_per_apdu", round((t_ours - t_bare) / n * 1e6, 1),
                  f"our overhead: {us((t_ours - t_bare) / n)} per APDU")
    result.figure("ratio", round(ratio, 3), f"blocks: ratio ours/bare, median of block ratios {ratio:.3f} (of "
                  f"the totals {t_ours / t_bare:.3f}; blocks range {min(block_ratios):.2f}–{max(block_ratios):.2f})")
    pairs_n = len(paired_ours)
    p_ours, p_bare = median(paired_ours), median(paired_bare)
    pair_ratio, pair_totals = p_ours / p_bare, sum(paired_ours) / sum(paired_bare)
    say(f"  {pairs_n:,} pairs of one APDU each, the order swapped every pair")
    result.figure("pair_ratio", round(pair_ratio, 3), f"pairs: ours median {us(p_ours)}, bare median {us(p_bare)} "
                  f"per APDU: ratio {pair_ratio:.3f} (of the totals {pair_totals:.3f}; our overhead "
                  f"{us(p_ours - p_bare)})")
    result.target(f"ours ≤ {TARGET}× bare per APDU", ratio <= TARGET,
                  f"median block ratio {ratio:.3f} ({us(t_ours / n)} vs {us(t_bare / n)} per APDU over all; "
                  f"alternating pairs {pair_ratio:.3f})")
    return result


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else (values[0] if values else float("nan"))
