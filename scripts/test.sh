#!/usr/bin/env bash
# Install everything the tests need (system packages as root: pcscd, the vpcd
# driver, libpcsclite-dev for pyscard, libnfc-bin for the nfc-list check) and
# run the whole suite: ruff, mypy (strict for cardlib), pytest.
# With CI=true no test may skip for a missing pcscd, vpcd or pty.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .ci/setup-system.sh ]; then
    bash .ci/setup-system.sh
fi
bash scripts/bootstrap.sh dev
venv="${YKT_VENV:-.venv}"
echo "== ruff"
"$venv/bin/ruff" check cardlib terminal simulators cli clearing tests
echo "== mypy"
"$venv/bin/mypy" cardlib terminal simulators cli clearing
echo "== pytest"
set +e
"$venv/bin/pytest" -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests" >&2
fi
exit "$rc"
