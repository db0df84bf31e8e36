"""The test side of the LiveKit Agents assistant (`tests.stack.agents_assistant`): its script,
the worker process, and its log.

Standard library only: the worker runs in its own venv (`.venv-agents`, see
scripts/setup-and-test.sh) and imports the script constants from here, while the tests import
this module in the project's venv. `livekit-agents` pins the `livekit` rtc SDK to an exact 1.1.x
release, and the client is tested on the SDK it ships with (1.2.x), so the two cannot share one
environment.

    worker = AgentsWorker(livekit.url, log_path).start()   # registered once this returns
    ... calls whose token dispatches AGENT_NAME ...
    worker.log.wait_for("agent_state", lambda r: r["state"] == "speaking")
    worker.stop()
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENTS_PYTHON_ENV = "WESPOKE_AGENTS_PYTHON"
DEFAULT_AGENTS_PYTHON = REPO_ROOT / ".venv-agents" / "bin" / "python"

AGENT_NAME = "wespoke-test-agent"
ASSISTANT_ID = "asst_agents"
ASSISTANT_NAME = "Agents Assistant"

# What the assistant says and how it "understands": deterministic, so tests can assert on it.
GREETING = "Hello! I am the LiveKit Agents test assistant."
THINK_S = 0.5
REPLY_TAIL = "I am a test agent, and I keep talking for a while, so that you can interrupt me."
USER_TRANSCRIPT = re.compile(r"^heard (\d+\.\d) seconds of speech$")


# The answer of a call told to answer wrong (`AgentControl.wrong_every`), instead of reply_to's.
WRONG_ANSWER = "Sorry, I would rather talk about the weather today."
# How the assistant hears (`AgentControl.recognizer`): "duration" describes an utterance as how
# long its speech lasted (describe_speech); "pocketsphinx" recognizes its words (English only).
RECOGNIZERS = ("duration", "pocketsphinx")
CONTROL_KEY = "testAgent"  # the call's metadata under this key: an AgentControl


def describe_speech(seconds: float) -> str:
    """The STT's "transcript" of an utterance: how long the speech in it lasted."""
    return f"heard {seconds:.1f} seconds of speech"


def reply_to(user_text: str) -> str:
    """The LLM's answer to one user turn (spoken or typed)."""
    return f"You said: {user_text.strip().rstrip('.')}. {REPLY_TAIL}"


@dataclasses.dataclass(frozen=True)
class AgentControl:
    """What a call asks of the test assistant: its metadata (the caller's `--metadata`, or a
    scenario's `[assistant] metadata`) under CONTROL_KEY, which reaches the worker in the dispatch
    metadata. Anything missing or malformed is the default: the assistant as it always was.

    interruptible    False: the agent talks over the caller (LiveKit Agents' interruptions off; what
                     the caller says while it speaks is dropped, as the framework does)
    wrong_every      N > 0: every Nth answer, counted over all calls with the same `counter`, is
                     WRONG_ANSWER (deterministic: answers 3, 6, 9 … for N = 3)
    counter          the name of that count (a test's own, so other tests' calls do not move it);
                     empty: each call counts its own answers
    report_barge_in  send `{"type": "barge_in"}` on the data channel when the caller cuts the agent
                     short (as Wespoke's own agent does)
    recognizer       one of RECOGNIZERS
    resumes          False: speech cut short by the caller is not resumed when no words came of the
                     caller's speech within 2 s (LiveKit Agents' "false interruption" resume, on by
                     default): a recognizer slowed down by a loaded machine makes the agent take up
                     its old speech again before it hears what it was told
    """

    interruptible: bool = True
    wrong_every: int = 0
    counter: str = ""
    report_barge_in: bool = False
    recognizer: str = "duration"
    resumes: bool = True

    def metadata(self) -> dict[str, Any]:
        return {CONTROL_KEY: {"interruptible": self.interruptible, "wrongEvery": self.wrong_every,
                              "counter": self.counter, "reportBargeIn": self.report_barge_in,
                              "recognizer": self.recognizer, "resumes": self.resumes}}

    def toml(self) -> str:
        """The metadata as a TOML inline table, for a scenario's `[assistant] metadata = …`."""
        fields = self.metadata()[CONTROL_KEY]
        inner = ", ".join(f"{key} = {json.dumps(value)}" for key, value in fields.items())
        return f"{{ {CONTROL_KEY} = {{ {inner} }} }}"

    @classmethod
    def from_dispatch(cls, dispatch_metadata: str) -> AgentControl:
        """From the job's dispatch metadata (the local API server's: {"metadata": {...}, ...})."""
        try:
            doc = json.loads(dispatch_metadata) if dispatch_metadata else {}
        except ValueError:
            return cls()
        call_metadata = doc.get("metadata") if isinstance(doc, dict) else None
        raw = call_metadata.get(CONTROL_KEY) if isinstance(call_metadata, dict) else None
        if not isinstance(raw, dict):
            return cls()

        def get(key: str, kind: type, default: Any) -> Any:
            value = raw.get(key, default)
            return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else default

        recognizer = get("recognizer", str, "duration")
        return cls(
            interruptible=get("interruptible", bool, True),
            wrong_every=max(0, get("wrongEvery", int, 0)),
            counter=get("counter", str, ""),
            report_barge_in=get("reportBargeIn", bool, False),
            recognizer=recognizer if recognizer in RECOGNIZERS else "duration",
            resumes=get("resumes", bool, True),
        )

    def answer(self, user_text: str, number: int) -> str:
        """The answer to the `number`th turn (from 1) of this control's count."""
        if self.wrong_every and number % self.wrong_every == 0:
            return WRONG_ANSWER
        return reply_to(user_text)


STARTUP_TIMEOUT_S = 60.0  # imports and the VAD model on a busy 2-core machine
STOP_TIMEOUT_S = 15.0
# The assistant stands in for a service on a machine of its own: on a loaded test machine it is
# scheduled ahead of the rest, so what the tests measure is the client, not a starved assistant
# (seen: its VAD 6 s behind the call with the machine at load 9). Without the right to raise it
# (not root), it runs at the normal priority.
WORKER_NICE = -10


def agents_python() -> Path:
    """The interpreter of the agents venv; a clear failure (never a skip) when it is missing."""
    path = Path(os.environ.get(AGENTS_PYTHON_ENV) or DEFAULT_AGENTS_PYTHON)
    if not path.exists():
        raise RuntimeError(
            f"{path} not found: the LiveKit Agents assistant runs in its own venv; "
            "scripts/setup-and-test.sh creates it (pip install '.[agents-assistant]' into .venv-agents)"
        )
    return path


class WorkerLog:
    """The worker's log file: one JSON record a line; records with "event" are its reports.

    Every record has "wall" (time.time()) and "mono" (time.monotonic(), the same clock as the
    tests' since both run on this machine), "level", "logger" and "msg".
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            self._read_new()
            return list(self._records)

    def events(self, name: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [
            r for r in self.records()
            if "event" in r and (name is None or r["event"] == name) and all(r.get(k) == v for k, v in match.items())
        ]

    def wait_for(
        self, name: str, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 30.0,
        *, alive: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """The first report `name` (matching `predicate`), already written or arriving in `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.events(name):
                if predicate is None or predicate(record):
                    return record
            if time.monotonic() > deadline or (alive is not None and not alive()):
                why = "the worker exited" if alive is not None and not alive() else f"timed out after {timeout}s"
                raise AssertionError(f"no {name!r} report in the agents worker log ({why}); tail:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in self.records()[-lines:])

    def _read_new(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # a line still being written
        for line in lines:
            if line.strip():
                try:
                    self._records.append(json.loads(line))
                except ValueError:  # a stray non-JSON line (a native library's print): kept as text
                    self._records.append({"msg": line.decode("utf-8", "replace"), "level": "RAW"})


class AgentsWorker:
    """One `tests.stack.agents_assistant` process, registered with one LiveKit server.

    Its stdin is a pipe this object holds: if the test process dies, the pipe closes and the
    worker shuts down by itself (`--exit-on-stdin-eof`), so no worker outlives its tests.
    """

    def __init__(
        self,
        livekit_url: str,
        log_path: Path,
        *,
        api_key: str = "devkey",
        api_secret: str = "secret",
        agent_name: str = AGENT_NAME,
    ) -> None:
        self.livekit_url = livekit_url
        self.log_path = log_path
        self.log = WorkerLog(log_path)
        self.agent_name = agent_name
        self._argv = [
            str(agents_python()), "-m", "tests.stack.agents_assistant",
            "--url", livekit_url, "--api-key", api_key, "--api-secret", api_secret,
            "--agent-name", agent_name, "--log-file", str(log_path), "--exit-on-stdin-eof",
            "--nice", str(WORKER_NICE),
        ]
        self.stderr_path = log_path.with_suffix(".stderr.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> AgentsWorker:
        """Start the worker and return once LiveKit has accepted its registration."""
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                self._argv,
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # a Ctrl+C in the terminal goes to pytest, which stops us
            )
        try:
            self.log.wait_for("registered", timeout=timeout, alive=lambda: self.running)
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}\nstderr:\n{self.stderr_tail()}") from None
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Close its stdin (the worker's own graceful exit), then SIGTERM, then SIGKILL; always reaps."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        return proc.returncode

    def stderr_tail(self, chars: int = 3000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
