"""The local stack for the benchmarks, outside pytest: LiveKit, the local API, assistants, the rig.

The same parts the tests use (tests/stack/), started once for the whole benchmark run, and the
ways the benchmarks run a call: the floor, the baseline, the app's session driver, the headless
CLI and the TUI in tmux, each as a process of its own on the rig's sound devices. The headless
CLI and the TUI run this tree's code or, for the before/after figures, an older commit's
(`BenchStack.checkout`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.procstat import children_of
from tests.stack.assistant_control import AssistantPool, AssistantProcess, make_dispatcher
from tests.stack.livekit_server import LiveKitServer
from tests.stack.pulse_rig import PulseRig
from tests.stack.tmux_pane import TmuxPane
from tests.stack.wespoke_fixtures import TestWespokeServer, start_wespoke_server

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("wespoke-tui")


@dataclass(frozen=True, slots=True)
class Code:
    """Which `wespoke_tui` a subject runs: the directory it is imported from and the command.

    The last word of `command` is in the process's command line, which is how the TUI's
    process is found under its terminal.
    """

    root: Path
    command: tuple[str, ...]

    def env(self, stack: BenchStack, **extra: str) -> dict[str, str]:
        return stack.env(PYTHONPATH=str(self.root), **extra)


# This tree, through the installed console script, as a user runs it.
CURRENT = Code(REPO, (str(SCRIPT),))


class BenchStack:
    """Starts everything in `__enter__`, stops it in `__exit__`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wespoke-bench-"))
        self.livekit = LiveKitServer(log_dir=self.dir / "livekit")
        self.rig = PulseRig()
        self.pool = AssistantPool()
        self.api: TestWespokeServer | None = None
        self._dispatch: Any = None
        self._checkouts: dict[str, Code] = {}

    def __enter__(self) -> BenchStack:
        self.livekit.start()
        self.rig.start()
        self._dispatch, self.pool = make_dispatcher(self.livekit, self.pool, log_dir=self.dir)
        self.api = start_wespoke_server(livekit_url=self.livekit.url, dispatch=self._dispatch)
        # The assistants of long runs would otherwise hit the key's default rate limit.
        self.api.set_rate_limit(self.api.api_key, 10_000, 60.0)
        self.api.set_credits(self.api.api_key, 10_000)
        return self

    def __exit__(self, *exc: object) -> None:
        for code in self._checkouts.values():
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(code.root)],
                           capture_output=True)
        self.pool.stop_all()
        if self.api is not None:
            self.api.stop()
        self.rig.stop()
        self.livekit.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- what the calls need

    @property
    def server(self) -> TestWespokeServer:
        assert self.api is not None
        return self.api

    def assistants_on(self, on: bool) -> None:
        """With assistants off no test assistant joins (pure setup measurements)."""
        self.server.dispatch = self._dispatch if on else None

    def env(self, **extra: str) -> dict[str, str]:
        """A process environment on the rig's devices, with the key in WESPOKE_API_KEY."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WESPOKE_")}
        env.update(self.rig.env)
        env["WESPOKE_API_KEY"] = self.server.api_key
        env["PYTHONPATH"] = str(REPO)
        env.update(extra)
        return env

    def call_args(self) -> list[str]:
        return ["--api-url", self.server.url, "--assistant-id", self.server.assistant_id]

    def checkout(self, commit: str) -> Code:
        """`commit`'s tree as a git worktree in the stack's directory, run with this venv's python.

        The venv has this tree installed editable, and its console script would import it, so the
        checkout runs as `python -m wespoke_tui` with itself first on the path; that it is the one
        imported is checked here, before any figure depends on it.
        """
        if commit not in self._checkouts:
            root = self.dir / f"tree-{commit}"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(root), commit],
                           check=True)
            code = Code(root, (sys.executable, "-m", "wespoke_tui"))
            self._checkouts[commit] = code
            imported = subprocess.run(
                [sys.executable, "-c", "import wespoke_tui; print(wespoke_tui.__file__)"],
                cwd=root, env=code.env(self), capture_output=True, text=True, check=True,
            ).stdout.strip()
            if not Path(imported).is_relative_to(root):
                raise RuntimeError(f"the checkout of {commit} imports {imported}, not its own wespoke_tui")
        return self._checkouts[commit]

    def last_assistant(self, known: int, timeout: float = 20.0) -> AssistantProcess:
        """The assistant started after the first `known` ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.pool.assistants) > known:
                return self.pool.assistants[known]
            time.sleep(0.05)
        raise RuntimeError(f"no assistant was dispatched within {timeout} s")


class MarkedProcess:
    """A benchmark process that prints JSON milestone lines (`baseline.py`, `app_call.py`)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.marks: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                mark = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.marks.append(mark)
                self._cond.notify_all()

    def wait_mark(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mark in self.marks:
                    if mark["event"] == event:
                        return mark
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no {event!r} mark; marks {self.marks}; stderr:\n{self.stderr_tail()}")
                self._cond.wait(0.2)

    def first(self, event: str) -> dict[str, Any] | None:
        with self._cond:
            return next((m for m in self.marks if m["event"] == event), None)

    def all(self, event: str) -> list[dict[str, Any]]:
        with self._cond:
            return [m for m in self.marks if m["event"] == event]

    def finish(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            return self.proc.wait(10)

    def stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()[-2000:]


def floor(stack: BenchStack, duration: float | None, frame_ms: int) -> MarkedProcess:
    argv = [sys.executable, "-m", "tests.bench.floor", *stack.call_args(), "--frame-ms", str(frame_ms)]
    if duration is not None:
        argv += ["--duration", str(duration)]
    return MarkedProcess(argv, stack.env())


def baseline(stack: BenchStack, duration: float | None, *, aec: bool = True) -> MarkedProcess:
    argv = [sys.executable, "-m", "tests.bench.baseline", *stack.call_args()]
    if duration is not None:
        argv += ["--duration", str(duration)]
    if not aec:
        argv.append("--no-aec")
    return MarkedProcess(argv, stack.env())


def app_session(stack: BenchStack, duration: float | None, *, aec: bool = True, engine: str = "python",
                processing: bool = True) -> MarkedProcess:
    """`CallSession` as `call --no-tui` runs it, on `engine`; `processing=False`: no noise
    suppression or gain control (the echo canceller alone)."""
    argv = [sys.executable, "-m", "tests.bench.app_call", *stack.call_args(), "--audio-engine", engine]
    if duration is not None:
        argv += ["--duration", str(duration)]
    if not aec:
        argv.append("--no-aec")
    if not processing:
        argv += ["--no-ns", "--no-agc"]
    return MarkedProcess(argv, stack.env())


def engine_args(engine: str | None) -> list[str]:
    """`--audio-engine ENGINE`, or nothing for the product's default (and code that predates the option)."""
    return ["--audio-engine", engine] if engine else []


def headless(stack: BenchStack, duration: float, *, aec: bool = True, code: Code = CURRENT,
             engine: str | None = None) -> subprocess.Popen[str]:
    """The real `wespoke-tui call --no-tui` on the rig's devices, on `engine` (None: the default)."""
    argv = [*code.command, "call", "--no-tui", *stack.call_args(), "--lang", "en", "--duration", str(duration),
            *engine_args(engine)]
    if not aec:
        argv.append("--no-aec")
    return subprocess.Popen(argv, cwd=code.root, env=code.env(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class Tui(TmuxPane):
    """`wespoke-tui` in a tmux pane of its own (a real terminal), consent already given."""

    def __init__(self, stack: BenchStack, *args: str, code: Code = CURRENT, engine: str | None = None) -> None:
        xdg = stack.dir / f"xdg-{uuid.uuid4().hex[:8]}"
        (xdg / "wespoke-tui").mkdir(parents=True)
        config = xdg / "wespoke-tui" / "config.toml"
        config.write_text("mic_consent_given = true\n")
        config.chmod(0o600)
        self.code = code
        app = shlex.join([*code.command, *stack.call_args(), "--lang", "en", *engine_args(engine), *args])
        command = f"cd {shlex.quote(str(code.root))} && {app}; sleep 30"
        env = code.env(stack, XDG_CONFIG_HOME=str(xdg), TERM="xterm-256color")
        super().__init__(command, env, prefix="bench")

    def seconds_until(self, text: str, timeout: float = 30.0, poll_s: float = 0.05) -> float:
        """Seconds from the start until `text` is on screen."""
        self.wait_screen(text, timeout, poll_s)
        return time.monotonic() - self.started

    def app_pid(self, timeout: float = 10.0) -> int:
        return self.process_pid(self.code.command[-1], timeout)

    def server_pid(self) -> int:
        """The tmux server: the terminal that renders the app's output (a private one per pane)."""
        return int(self.flag("pid"))

    def close(self) -> None:
        """End the app as a user would (SIGTERM: hang up, exit), then the terminal."""
        for pid in children_of(self.shell_pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        self.close_terminal()


def tui_pilot(stack: BenchStack, duration: float = 0.5, *, engine: str = "python") -> MarkedProcess:
    argv = [sys.executable, "-m", "tests.bench.tui_call", *stack.call_args(), "--duration", str(duration),
            "--audio-engine", engine]
    return MarkedProcess(argv, stack.env())
