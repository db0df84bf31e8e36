#!/usr/bin/env bash
# Sets up a fresh Debian machine for wespoke-tui's tests and runs every one of them:
# Debian packages (PortAudio, PulseAudio, tmux), the Python venv, the real LiveKit server
# (built from the Go module proxy, cached), then pytest. Extra arguments go to pytest.
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

# The LiveKit Agents test assistant runs in a venv of its own: livekit-agents pins the livekit
# SDK to an exact older release, and the client is tested on the SDK it ships with. Only the
# `agents-assistant` extra goes in (read from pyproject.toml), not wespoke-tui itself.
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
exec .venv/bin/python -m pytest "$@"
