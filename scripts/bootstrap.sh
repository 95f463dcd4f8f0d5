#!/usr/bin/env bash
# Create the project's venv (.venv, or $YKT_VENV) and install yikatong into it.
# On a fresh Debian as root it first installs what Python itself needs
# (python3-venv; gcc and headers for pyscard when the pcsc extra is asked for).
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
venv="${YKT_VENV:-.venv}"
py="${PYTHON:-python3}"

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: not root or no apt-get: not installing system packages ($*)" >&2
        return 0
    fi
    if [ ! -f /var/lib/apt/lists/.ykt-updated ] || [ -n "$(find /var/lib/apt/lists/.ykt-updated -mmin +1440 2>/dev/null)" ]; then
        apt-get update -qq && touch /var/lib/apt/lists/.ykt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv python3-pip
fi
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# editable_mode=compat: a path entry for the project folder rather than an import hook, so that
# type checkers (mypy --strict on an integrator's script) find cardlib, terminal and simulators
# and their py.typed as they find an installed package (docs/library.md)
editable=(-e ".${extras:+[$extras]}" --config-settings editable_mode=compat)
"$venv/bin/python" -m pip install -q "${editable[@]}"
echo "bootstrap: yikatong installed in $venv" >&2
