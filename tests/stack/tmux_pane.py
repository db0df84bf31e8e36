"""A real terminal for the installed app: a tmux server of our own running one command."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from tests.bench.procstat import children_of


class TmuxPane:
    """One detached tmux pane on a private server (`-L socket`); the pane's shell runs `command`."""

    def __init__(self, command: str, env: dict[str, str], *, prefix: str = "pane", columns: int = 110,
                 rows: int = 32) -> None:
        self.socket = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.started = time.monotonic()
        self.tmux("new-session", "-d", "-s", "app", "-x", str(columns), "-y", str(rows), command)
        self.shell_pid = int(self.flag("pane_pid"))

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True, check=True
        ).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def history(self) -> str:
        """Everything the pane showed, scrollback included."""
        return self.tmux("capture-pane", "-p", "-S", "-", "-t", "app")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "app", *keys)

    def flag(self, name: str) -> str:
        return self.tmux("display-message", "-p", "-t", "app", f"#{{{name}}}").strip()

    def wait_screen(self, text: str, timeout: float = 20.0, poll_s: float = 0.05) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(poll_s)
        raise AssertionError(f"{text!r} not on screen within {timeout} s:\n{screen}")

    def process_pid(self, name: str, timeout: float = 10.0) -> int:
        """The pid of the pane shell's child whose command line holds `name`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in children_of(self.shell_pid):
                try:
                    if name in Path(f"/proc/{pid}/cmdline").read_text():
                        return int(pid)
                except OSError:
                    continue
            time.sleep(0.05)
        raise AssertionError(f"no {name} process under the tmux pane; screen:\n{self.screen()}")

    def close_terminal(self) -> None:
        """The terminal goes away (its pty closes): what closing a terminal window does."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True)
