#!/usr/bin/env bash
# Sets up a fresh Debian machine for wespoke-tui's tests and runs every one of them:
# Debian packages (PortAudio, PulseAudio, tmux), the Python venv, ruff, mypy, the tests that need no
# stack on the LOWEST declared versions of the runtime dependencies (a venv of its own,
# .venv-floors), the real LiveKit server (built from the Go module proxy, cached), then pytest.
# Extra arguments go to the main pytest run. Its exit status is the script's; a ruff or mypy
# finding or a failure of the lowest-versions run fails the script too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

LIVEKIT_VERSION=v1.13.5
DEB_PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins tmux sox espeak-ng)

log() { printf '\n== %s\n' "$*"; }

need_debs=()
for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_debs+=("$pkg")
done
if ((${#need_debs[@]})); then
    log "installing Debian packages: ${need_debs[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_debs[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
log "installing wespoke-tui and its test dependencies"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"

log "ruff check wespoke_tui tests"
.venv/bin/ruff check wespoke_tui tests

log "mypy (wespoke_tui, configured in pyproject.toml)"
.venv/bin/mypy

# The floors are tested: every runtime dependency pinned to exactly the lowest version that
# pyproject.toml declares (each is written "name>=floor"), the test dependencies as usual, and
# the tests that need no stack (pytest -m "not stack") run against them.
if [ ! -x .venv-floors/bin/python ]; then
    log "creating .venv-floors"
    python3 -m venv .venv-floors
fi
FLOORS=$(.venv/bin/python - <<'PY'
import re
import tomllib

for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    m = re.fullmatch(r"([A-Za-z0-9._-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", dep.strip())
    if m is None:
        raise SystemExit(f"pyproject.toml: dependency {dep!r} is not 'name>=floor'; the floors run needs one")
    print(f"{m[1]}=={m[2]}")
PY
)
mapfile -t FLOOR_PINS <<<"$FLOORS"
log "lowest versions: installing wespoke-tui into .venv-floors with ${FLOOR_PINS[*]}"
.venv-floors/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv-floors/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" "${FLOOR_PINS[@]}"
.venv-floors/bin/python - "${FLOOR_PINS[@]}" <<'PY'
import sys
from importlib.metadata import version

from packaging.version import Version

pins = [pin.split("==") for pin in sys.argv[1:]]
wrong = [f"{name}=={floor} (installed {version(name)})" for name, floor in pins if Version(version(name)) != Version(floor)]
if wrong:
    raise SystemExit("lowest versions: not installed as pinned: " + ", ".join(wrong))
PY
log "LOWEST-VERSIONS RUN: pytest -m 'not stack' on ${FLOOR_PINS[*]} (.venv-floors)"
floors_status=0
PATH="$ROOT/.venv-floors/bin:$PATH" .venv-floors/bin/python -m pytest -m "not stack" -q -p no:cacheprovider \
    || floors_status=$?
if [ "$floors_status" -ne 0 ]; then
    log "LOWEST-VERSIONS RUN FAILED (pytest exit $floors_status) on ${FLOOR_PINS[*]}"
else
    log "lowest-versions run passed on ${FLOOR_PINS[*]}"
fi

# The LiveKit Agents test assistant runs in a venv of its own: livekit-agents pins the livekit
# SDK to an exact older release, and the client is tested on the SDK it ships with. Only the
# `agents-assistant` extra goes in (read from pyproject.toml), not wespoke-tui itself: the
# framework, the silero VAD and pocketsphinx (pinned; its wheel ships the English model, so the
# assistant recognizes the caller's words with nothing downloaded at run time).
if [ ! -x .venv-agents/bin/python ]; then
    log "creating .venv-agents"
    python3 -m venv .venv-agents
fi
log "installing the LiveKit Agents test assistant's dependencies"
mapfile -t AGENTS_REQUIREMENTS < <(.venv-agents/bin/python -c \
    'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["agents-assistant"]))')
.venv-agents/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv-agents/bin/python -m pip install -q --disable-pip-version-check "${AGENTS_REQUIREMENTS[@]}"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/wespoke-tui"
LIVEKIT_BIN="$CACHE/livekit-server-$LIVEKIT_VERSION"
if [ ! -x "$LIVEKIT_BIN" ]; then
    log "building livekit-server $LIVEKIT_VERSION from the Go module proxy (once; cached in $CACHE)"
    command -v go >/dev/null || { echo "Go is needed to build livekit-server" >&2; exit 1; }
    mkdir -p "$CACHE"
    gobin=$(mktemp -d)
    GOBIN="$gobin" go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
    mv "$gobin/server" "$LIVEKIT_BIN"
    rmdir "$gobin"
fi
ln -sf "$LIVEKIT_BIN" .venv/bin/livekit-server
"$LIVEKIT_BIN" --version

log "running the tests"
export PATH="$ROOT/.venv/bin:$PATH"
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$floors_status" -ne 0 ]; then
    log "FAILED: the lowest-versions run (above, before the main run) failed with exit $floors_status"
    [ "$status" -ne 0 ] || status=$floors_status
fi
exit "$status"
