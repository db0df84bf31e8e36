"""Start-up: `wespoke-tui --help` wall time, and the time to the app's first painted frame."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.bench.stats import Sample


def wespoke_tui_command() -> list[str]:
    """The installed console script next to this interpreter (the venv's), as a user runs it."""
    script = Path(sys.executable).with_name("wespoke-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "wespoke_tui"]


def help_wall_time(runs: int = 20) -> Sample:
    """Wall time of `wespoke-tui --help`, process start to exit, after one warm-up run."""
    command = [*wespoke_tui_command(), "--help"]
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return Sample.of(times, "ms")


def first_paint_ms(args: list[str], marker: str, env: dict[str, str], *, timeout_s: float = 20.0) -> float:
    """Start `wespoke-tui ARGS` in a fresh tmux session (100×30) and time until `marker` is on screen.

    tmux renders what the app wrote, so `capture-pane` shows the first frame as a terminal would;
    polling adds a few ms of granularity to the figure.
    """
    tmux = shutil.which("tmux")
    if tmux is None:
        raise RuntimeError("tmux is not installed (scripts/setup-and-test.sh installs it)")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    socket = f"wespoke-bench-{os.getpid()}"
    command = shlex.join([*wespoke_tui_command(), *args])
    t0 = time.perf_counter()
    subprocess.run(
        [tmux, "-L", socket, "new-session", "-d", "-s", name, "-x", "100", "-y", "30", command],
        env=env, check=True,
    )
    try:
        deadline = t0 + timeout_s
        while time.perf_counter() < deadline:
            screen = subprocess.run(
                [tmux, "-L", socket, "capture-pane", "-p", "-t", name], env=env, capture_output=True, text=True
            ).stdout
            if marker in screen:
                return (time.perf_counter() - t0) * 1000
            time.sleep(0.005)
        raise RuntimeError(f"no {marker!r} on screen within {timeout_s} s; screen was:\n{screen}")
    finally:
        subprocess.run([tmux, "-L", socket, "kill-server"], env=env, capture_output=True)
