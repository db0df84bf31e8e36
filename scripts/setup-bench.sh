#!/usr/bin/env bash
# Sets up what the benchmarks (`python -m tests.bench`) need beyond the tests, idempotently:
# Debian's Chromium (and Node.js with npm where there is none) for the browser subject, its
# page (npm ci and the esbuild bundle in tests/bench/browser), and py-spy in .venv for the
# profiles. The tests themselves need none of it. Run scripts/setup-and-test.sh first: it
# makes .venv and installs the local stack.
set -euo pipefail
cd "$(dirname "$0")/.."

PAGE=tests/bench/browser

log() { printf '\n== %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
    echo "no .venv: run scripts/setup-and-test.sh first" >&2
    exit 1
fi

need_debs=()
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || need_debs+=(chromium)
command -v npm >/dev/null || need_debs+=(nodejs npm)
if ((${#need_debs[@]})); then
    log "installing Debian packages: ${need_debs[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_debs[@]}"
fi
chromium --version 2>/dev/null

# npm ci starts from an empty node_modules each time: only when the lock file is newer than it.
if [ ! "$PAGE/node_modules/.package-lock.json" -nt "$PAGE/package-lock.json" ]; then
    log "installing the browser page's npm packages (livekit-client, esbuild)"
    (cd "$PAGE" && npm ci --no-audit --no-fund)
fi
log "bundling the browser page ($PAGE/dist/call.js)"
(cd "$PAGE" && npm run --silent build)

log "installing py-spy into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check py-spy
