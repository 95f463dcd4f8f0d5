"""B3: our vpcd-served card vs vsmartcard's own emulator ``vicc``, through pcscd.

Both cards are processes of their own connected to vpcd: ours is the
simulated social security card behind ``simulators.vpcd.VpcdBridge`` on port
35963 ("Virtual PCD 00 00"); theirs is ``vicc -t iso7816`` on port 35964
("Virtual PCD 00 01"). One bare pyscard client (``tests.bench.pcsc.
BareClient``) sends both the same pair, SELECT MF without answer data
(``00 A4 00 0C 02 3F 00``) and GET CHALLENGE (``00 84 00 00 08``), in
alternating blocks of about the same duration. Target: our APDUs/s at least
vicc's.

vicc (Debian ``vsmartcard-vpicc``) runs as pcsc-stack.md says: this
interpreter (it needs pycryptodome's ``Crypto``) on ``/usr/bin/vicc`` with
``PYTHONPATH=/usr/lib/python3/site-packages/virtualsmartcard`` (the package
installs its module one folder too deep). ``YKT_BENCH_VICC=0`` leaves vicc
out (ours alone is measured, no target is judged); without vicc or
pycryptodome the benchmark reports why and cannot run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

from tests.bench.common import Result, alternate, banner, knob, say, us
from tests.bench.pcsc import BareClient, card_process, served_sample_card, start_pcscd, stop_pcscd

NAME = "B3"
TITLE = "our vpcd-served card vs vsmartcard's vicc, APDUs/s through pcscd"
OUR_PORT, VICC_PORT = 35963, 35964
VICC_PATH = Path("/usr/lib/python3/site-packages/virtualsmartcard")
APDUS = (bytes.fromhex("00A4000C023F00"), bytes.fromhex("0084000008"))


def vicc_problem() -> str | None:
    """Why vicc cannot run here, or None."""
    exe = shutil.which("vicc")
    if exe is None:
        return "vicc is not installed (apt install vsmartcard-vpicc)"
    if not (VICC_PATH / "virtualsmartcard").is_dir():
        return f"vicc's module is not under {VICC_PATH} (a vsmartcard-vpicc other than Debian's 0.8 layout)"
    if importlib.util.find_spec("Crypto") is None:
        return f"vicc imports Crypto: pycryptodome is not installed in {sys.executable} (pip install pycryptodome)"
    return None


def rate_block(client: BareClient, seconds: float, counted: list[int]) -> float:
    """Send the APDU pair until ``seconds`` have passed (at least one pair); APDUs/s."""
    pair = [list(a) for a in APDUS]
    sent = 0
    t0 = time.perf_counter()
    while True:
        for apdu in pair:
            answer = client.transmit(apdu)
            if answer[-2:] != [0x90, 0x00]:
                raise RuntimeError(f"{bytes(apdu).hex().upper()} answered {bytes(answer).hex().upper()}")
        sent += 2
        spent = time.perf_counter() - t0
        if spent >= seconds:
            counted.append(sent)
            return sent / spent


def run(quick: bool = False) -> Result:
    result = Result(NAME, TITLE)
    banner(result)
    want = os.environ.get("YKT_BENCH_VICC", "1") not in ("0", "no", "false")
    problem = vicc_problem() if want else "YKT_BENCH_VICC=0"
    if want and problem:
        raise RuntimeError(f"vicc cannot run: {problem}")
    blocks = knob("YKT_BENCH_B3_BLOCKS", 12, 2, quick)
    seconds = 0.5 if not quick else 0.05
    vicc_argv = [sys.executable, shutil.which("vicc") or "vicc", "-t", "iso7816", "-P", str(VICC_PORT)]
    daemon = start_pcscd()
    try:
        with served_sample_card(OUR_PORT) as ours_name:
            ours = BareClient(ours_name)
            counts: dict[str, list[int]] = {"ours": [], "vicc": []}
            try:
                sides = {"ours": lambda: rate_block(ours, seconds, counts["ours"])}
                if problem is None:
                    with card_process(vicc_argv, VICC_PORT, {"PYTHONPATH": str(VICC_PATH)}, "vicc") as vicc_name:
                        theirs = BareClient(vicc_name)
                        try:
                            sides["vicc"] = lambda: rate_block(theirs, seconds, counts["vicc"])
                            for side in sides.values():  # warm up
                                side()
                            counts = {"ours": [], "vicc": []}
                            rates = alternate(blocks, sides)
                        finally:
                            theirs.close()
                else:
                    say(f"  vicc left out: {problem}")
                    sides["ours"]()
                    counts["ours"].clear()
                    rates = alternate(blocks, sides)
            finally:
                ours.close()
    finally:
        stop_pcscd(daemon)
    mine = sum(counts["ours"]) / sum(1 / r * c for r, c in zip(rates["ours"], counts["ours"], strict=True))
    say(f"  {blocks} alternating blocks of ~{seconds} s per side: {sum(counts['ours']):,} APDUs to ours"
        + (f", {sum(counts['vicc']):,} to vicc" if "vicc" in rates else ""))
    result.figure("ours_apdus_per_s", round(mine, 1), f"ours: {mine:,.0f} APDUs/s ({us(1 / mine)} per APDU)")
    if "vicc" not in rates:
        result.note(f"vicc not measured ({problem}): no comparison, no target judged")
        return result
    theirs_rate = sum(counts["vicc"]) / sum(1 / r * c for r, c in zip(rates["vicc"], counts["vicc"], strict=True))
    ratio = mine / theirs_rate
    result.figure("vicc_apdus_per_s", round(theirs_rate, 1),
                  f"vicc: {theirs_rate:,.1f} APDUs/s ({us(1 / theirs_rate)} per APDU)")
    result.figure("ratio", round(ratio, 1), f"ratio ours/vicc: {ratio:,.1f}")
    result.target("ours ≥ vicc in APDUs/s", ratio >= 1.0, f"{mine:,.0f} vs {theirs_rate:,.1f} APDUs/s = {ratio:,.1f}×")
    return result
