#!/usr/bin/env bash
# System packages the tests use: pcscd with the vpcd driver, libpcsclite-dev,
# gcc and the Python headers to build pyscard, libnfc-bin and libnfc-examples for the nfc-list and nfc-poll
# check against the PN532 emulator, pcsc-tools (pcsc_scan, scriptor),
# vsmartcard-vpicc (vicc, the emulator benchmark B3 compares our card with),
# fonts-noto-cjk (the Chinese labels of the clearing pictures).
# Then the reader configuration of the station tests: six vpcd slots on ports
# 29900-29905 (4 lanes + 2 PSAMs; below 32768, out of the ephemeral port range),
# written before pcscd starts (tests/pcsc_support.py writes the same text).
# Idempotent: installs only what is missing; without root (or apt) it says so
# and installs nothing.
set -euo pipefail
station_conf() {
    # vpcd keeps its ports in the driver's globals: entries sharing one LIBPATH share the last
    # entry's ports. Each station entry gets its own copy of the driver (tests/pcsc_support.py).
    local conf=/etc/reader.conf.d/yikatong-station libdir=/usr/local/lib/yikatong tmp base driver
    [ -d /etc/reader.conf.d ] || return 0
    driver=$(find /usr/lib/pcsc/drivers -name 'libifdvpcd.so*' | sort | head -n 1)
    [ -n "$driver" ] || return 0
    mkdir -p "$libdir"
    tmp=$(mktemp)
    echo "# yikatong station tests: vpcd slots on ports 29900-29905 (tests/pcsc_support.py)" >"$tmp"
    for base in 29900 29902 29904; do
        cmp -s "$driver" "$libdir/libifdvpcd-$base.so" || cp "$driver" "$libdir/libifdvpcd-$base.so"
        printf 'FRIENDLYNAME "YKT vpcd %d"\nDEVICENAME   /dev/null:0x%04x\nLIBPATH      %s/libifdvpcd-%d.so\nCHANNELID    0x%04x\n' \
            "$base" "$base" "$libdir" "$base" "$base" >>"$tmp"
    done
    if cmp -s "$tmp" "$conf"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$conf" && chmod 644 "$conf"
        echo "setup-system: wrote $conf (pcscd reads it when it starts)" >&2
    fi
}
pkgs=(pcscd libpcsclite-dev vsmartcard-vpcd vsmartcard-vpicc libnfc-bin libnfc-examples pcsc-tools gcc python3-dev python3-venv fonts-noto-cjk)
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: not root: not installing ${pkgs[*]}" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: no apt-get on this system: install ${pkgs[*]} by hand" >&2
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup-system: all installed (${pkgs[*]})" >&2
    station_conf
    exit 0
fi
echo "setup-system: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
station_conf
