"""The test side of the test assistant: spawn it, send it commands, wait for what it reports.

`AssistantProcess` runs `python -m tests.stack.assistant` for one call; `make_dispatcher` gives
the local API server a `dispatch(call_record, server)` hook that starts one per minted token.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.stack.livekit_server import LiveKitServer

REPO_ROOT = Path(__file__).resolve().parents[2]
Predicate = Callable[[dict[str, Any]], bool]


def assistant_identity(call_id: str) -> str:
    return f"assistant-{call_id}"


class AssistantProcess:
    """One test assistant process. Its stdout reports are collected by a reader thread."""

    def __init__(
        self,
        url: str,
        token: str,
        call_id: str,
        api_url: str | None = None,
        *,
        options: dict[str, Any] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.call_id = call_id
        self.identity = assistant_identity(call_id)
        self.reports: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        argv = [sys.executable, "-m", "tests.stack.assistant", "--url", url, "--token", token, "--call-id", call_id]
        if api_url:
            argv += ["--api-url", api_url]
        argv += options_to_argv(options or {})
        self.options = dict(options or {})
        self.stderr_path = (log_dir or Path("/tmp")) / f"assistant-{call_id}.stderr.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - kept open for the process' life
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"assistant-reader-{call_id}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"event": "stdout", "line": raw.decode("utf-8", "replace").rstrip()}
            event.setdefault("received", time.time())
            with self._cond:
                self.reports.append(event)
                self._cond.notify_all()
        with self._cond:
            self.reports.append({"event": "process_exit", "received": time.time()})
            self._cond.notify_all()

    # -- querying ---------------------------------------------------------------------------
    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.reports if name is None or e["event"] == name]

    def wait_for(self, name: str, predicate: Predicate | None = None, timeout: float = 15.0) -> dict[str, Any]:
        """The first report `name` (matching `predicate`), already received or arriving in `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.reports:
                    if event["event"] == name and (predicate is None or predicate(event)):
                        return event
                exited = any(e["event"] == "process_exit" for e in self.reports)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or exited:
                    why = "exited" if exited else f"timed out after {timeout}s"
                    raise AssertionError(
                        f"assistant {self.call_id}: no {name!r} report ({why}); "
                        f"got {[e['event'] for e in self.reports]}; stderr:\n{self.stderr_tail()}"
                    )
                self._cond.wait(remaining)

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0) -> None:
        """Wait until `predicate(all reports so far)` holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.reports)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"assistant {self.call_id}: condition not met in {timeout}s")
                self._cond.wait(remaining)

    def stderr_tail(self, chars: int = 3000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- control ---------------------------------------------------------------------------
    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """quit, then SIGTERM, then SIGKILL; always reaps the process."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        for stream in (self.proc.stdin,):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        self._reader.join(timeout=2)
        self._stderr.close()
        return self.proc.returncode


def options_to_argv(options: dict[str, Any]) -> list[str]:
    """{"report_frames": True, "greeting_delay_s": 0.5} → ["--report-frames", "--greeting-delay-s", "0.5"]."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (False, None):
            argv += [flag, str(value)]
    return argv


class AssistantPool:
    """The assistants started for a stack's calls, reachable by call id."""

    def __init__(self) -> None:
        self.assistants: list[AssistantProcess] = []
        self._cond = threading.Condition()
        # Options for the next assistants started (e.g. {"report_frames": True}); tests set it
        # before starting a call.
        self.options: dict[str, Any] = {}

    def add(self, proc: AssistantProcess) -> None:
        with self._cond:
            self.assistants.append(proc)
            self._cond.notify_all()

    def assistant_for(self, call_id: str, timeout: float = 10.0) -> AssistantProcess:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for proc in self.assistants:
                    if proc.call_id == call_id:
                        return proc
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no assistant was started for call {call_id} within {timeout}s")
                self._cond.wait(remaining)

    def stop_all(self) -> None:
        with self._cond:
            procs = list(self.assistants)
        for proc in procs:
            proc.stop()


def make_dispatcher(
    livekit: LiveKitServer,
    pool: AssistantPool | None = None,
    *,
    log_dir: Path | None = None,
) -> tuple[Callable[[Any, Any], None], AssistantPool]:
    """A `dispatch(call_record, server)` hook for `WespokeServer`: one assistant per minted token."""
    pool = pool or AssistantPool()

    def dispatch(record: Any, server: Any) -> None:
        identity = assistant_identity(record.call_id)
        token = livekit.token(identity, record.room_name, metadata=json.dumps({"role": "assistant"}))
        pool.add(
            AssistantProcess(
                livekit.url, token, record.call_id, server.url, options=dict(pool.options), log_dir=log_dir
            )
        )

    return dispatch, pool
