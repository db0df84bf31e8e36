"""The real LiveKit server (Go binary `livekit-server`), run on loopback on free ports for a test.

Each instance gets its own signal port, RTC TCP port and single (muxed) RTC UDP port through a
small generated YAML config, so several servers can run on one machine at once.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

from jwt.warnings import InsecureKeyLengthWarning
from livekit import api

API_KEY = "devkey"
API_SECRET = "secret"
BINARY = "livekit-server"
STARTUP_TIMEOUT_S = 20.0


class LiveKitServerError(RuntimeError):
    pass


@contextlib.contextmanager
def _short_secret_ok() -> Iterator[None]:
    """The dev server's secret is the short word "secret": its choice, so PyJWT's warning is noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        yield


def _all_threads_stopped(pid: int) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        states = []
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                # The state follows the command name in parentheses, which may contain spaces.
                states.append(f.read().rsplit(")", 1)[1].split()[0])
    except OSError:
        return False
    return all(state in ("T", "t") for state in states)


def find_binary() -> str:
    """The `livekit-server` path; a clear failure (never a skip) when it is missing."""
    path = shutil.which(BINARY)
    if path is None:
        # The venv's bin is where setup-and-test.sh installs it; pytest may run without the venv on PATH.
        candidate = Path(sys.executable).parent / BINARY
        if candidate.exists():
            path = str(candidate)
    if path is None:
        raise LiveKitServerError(
            f"`{BINARY}` not found on PATH. Install it with scripts/setup-and-test.sh "
            "(go install github.com/livekit/livekit-server/cmd/server@v1.13.5, copied to livekit-server)."
        )
    return path


PORT_CLASH_ATTEMPTS = 3


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS says is free on 127.0.0.1 right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config_yaml(port: int, rtc_tcp_port: int, rtc_udp_port: int) -> str:
    # YAML written by hand: a few scalar keys, no need for a YAML library.
    return "\n".join(
        [
            f"port: {port}",
            "bind_addresses:",
            "  - 127.0.0.1",
            "keys:",
            f"  {API_KEY}: {API_SECRET}",
            "rtc:",
            f"  tcp_port: {rtc_tcp_port}",
            f"  udp_port: {rtc_udp_port}",
            "  node_ip: 127.0.0.1",
            "  use_external_ip: false",
            "logging:",
            "  level: info",
            "",
        ]
    )


class LiveKitServer:
    """One `livekit-server --dev` process. `start()` returns once it answers HTTP 200 "OK"."""

    def __init__(self, port: int | None = None, log_dir: Path | str | None = None) -> None:
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.rtc_tcp_port = free_port()
        self.rtc_udp_port = free_port(socket.SOCK_DGRAM)
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="livekit-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.log_dir / f"livekit-{self.port}.yaml"
        self.log_path = self.log_dir / f"livekit-{self.port}.log"
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = None

    # -- addresses and credentials -------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return API_KEY

    @property
    def api_secret(self) -> str:
        return API_SECRET

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        # free_port() only finds a port free now; another process may take it before the server
        # binds it (it happened in a CI run), so a port clash is retried on fresh ports.
        for attempt in range(1, PORT_CLASH_ATTEMPTS + 1):
            try:
                self._start_once()
                return
            except LiveKitServerError as exc:
                if "address already in use" not in str(exc) or attempt == PORT_CLASH_ATTEMPTS:
                    raise
            if not self._fixed_port:
                self.port = free_port()
            self.rtc_tcp_port = free_port()
            self.rtc_udp_port = free_port(socket.SOCK_DGRAM)

    def _start_once(self) -> None:
        if self.running:
            return
        binary = find_binary()
        self.config_path.write_text(_config_yaml(self.port, self.rtc_tcp_port, self.rtc_udp_port))
        if self._log_file is not None:
            self._log_file.close()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process' life
        started = time.monotonic()
        self._proc = subprocess.Popen(
            [binary, "--dev", "--config", str(self.config_path)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl+C in the terminal goes to pytest, not to the server
        )
        deadline = started + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LiveKitServerError(
                    f"livekit-server exited with {self._proc.returncode} at startup; log:\n{self.log_tail()}"
                )
            if self._answers():
                self.startup_seconds = time.monotonic() - started
                return
            time.sleep(0.02)
        self.kill()
        raise LiveKitServerError(f"livekit-server did not answer within {STARTUP_TIMEOUT_S}s; log:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.http_url + "/", timeout=0.5) as resp:
                return resp.status == 200 and resp.read().strip() == b"OK"
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, a second SIGTERM (the server's own "force" exit), then SIGKILL after `timeout`."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self.thaw()  # a stopped process cannot handle SIGTERM
            proc.send_signal(signal.SIGTERM)
            # The first SIGTERM starts a graceful drain that, measured, never ends by itself even
            # with no room open; a second SIGTERM is the server's own "force" exit.
            if not self._wait(proc, 0.1):
                proc.send_signal(signal.SIGTERM)
                if not self._wait(proc, timeout):
                    proc.kill()
                    proc.wait(timeout=5)
        self._finish()

    def kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        self._finish()

    def restart(self, downtime: float = 0.0) -> None:
        """Stop and start again on the same ports (clients can reconnect to the same URL)."""
        self.stop()
        if downtime:
            time.sleep(downtime)
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server stops answering without closing any socket (a hung server)."""
        if self.running:
            pid = self._proc.pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGSTOP)
            # SIGSTOP lands asynchronously: wait until every thread of the process is stopped.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not _all_threads_stopped(pid):
                time.sleep(0.005)

    def thaw(self) -> None:
        if self.running:
            os.kill(self._proc.pid, signal.SIGCONT)  # type: ignore[union-attr]

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _finish(self) -> None:
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- RoomService ------------------------------------------------------------------------
    def room_api(self) -> api.LiveKitAPI:
        """A `LiveKitAPI` for this server; the caller closes it (`async with`)."""
        return api.LiveKitAPI(self.http_url, self.api_key, self.api_secret)

    async def list_participants(self, room: str) -> list[str]:
        """Identities in `room`, as the server sees them; [] when the room does not exist."""
        with _short_secret_ok():
            async with self.room_api() as lk:
                try:
                    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
                except api.TwirpError as exc:
                    if exc.code == "not_found":
                        return []
                    raise
        return [p.identity for p in resp.participants]

    async def published_tracks(self, room: str) -> dict[str, int]:
        """How many tracks each participant in `room` has published, as the server sees it (a
        track counts once the server has answered its publish)."""
        with _short_secret_ok():
            async with self.room_api() as lk:
                try:
                    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
                except api.TwirpError as exc:
                    if exc.code == "not_found":
                        return {}
                    raise
        return {p.identity: len(p.tracks) for p in resp.participants}

    async def list_rooms(self) -> list[str]:
        with _short_secret_ok():
            async with self.room_api() as lk:
                resp = await lk.room.list_rooms(api.ListRoomsRequest())
        return [r.name for r in resp.rooms]

    def token(
        self,
        identity: str,
        room: str,
        *,
        metadata: str | None = None,
        attributes: dict[str, str] | None = None,
        ttl_s: int = 3600,
    ) -> str:
        """A join token for this server (what a test client or the assistant uses)."""
        tok = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_name(identity)
            .with_ttl(datetime.timedelta(seconds=ttl_s))
            .with_grants(
                api.VideoGrants(
                    room_join=True,
                    room=room,
                    can_publish=True,
                    can_subscribe=True,
                    can_publish_data=True,
                    can_update_own_metadata=True,
                )
            )
        )
        if metadata is not None:
            tok = tok.with_metadata(metadata)
        if attributes:
            tok = tok.with_attributes(attributes)
        with _short_secret_ok():
            return tok.to_jwt()

    def __enter__(self) -> LiveKitServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
