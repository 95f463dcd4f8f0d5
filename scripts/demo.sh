#!/usr/bin/env bash
# The main job on a fresh machine: install into .venv and run `ykt demo`
# on the embedded simulator. Extra arguments go to `ykt demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec "${YKT_VENV:-.venv}/bin/ykt" demo "$@"
