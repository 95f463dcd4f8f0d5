#!/usr/bin/env bash
# The benchmarks (tests/bench, docs/performance.md), all of them by default:
#   scripts/bench.sh                 # B1..B6 and B10 at full size (under ~10 minutes on 2 cores)
#   scripts/bench.sh B2 B4           # some of them
#   scripts/bench.sh --quick         # tiny sizes: proves they run, the figures mean nothing
#   scripts/bench.sh --json out.json # also every figure and the machine as JSON
# Knobs: YKT_BENCH_DENY_N (B4, default 10M), YKT_BENCH_SETTLE_N (B6, default 1M),
# YKT_BENCH_B1_N, YKT_BENCH_B2_N, YKT_BENCH_B5_N, YKT_BENCH_B3_BLOCKS, YKT_BENCH_QUICK=1,
# YKT_BENCH_VICC=0 (B3 without vicc), YKT_BENCH_B9_SECONDS (B9, default 30 per block). Sizes take 10M, 250k or digits.
# B2, B3 and B9 need pcscd with the vpcd driver (started as root when none runs, stopped after;
# B9 its six station slots, .ci/setup-system.sh);
# B3 needs vicc (vsmartcard-vpicc) and pycryptodome: .ci/setup-system.sh and the dev extra.
# Exit status: 0 every target met, 1 some target MISSED, 2 some benchmark could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${YKT_VENV:-.venv}"
exec "$venv/bin/python" -m tests.bench "$@"
