"""The browser subject: the Wespoke web embed's own stack, livekit-client in headless Chromium.

The page (tests/bench/browser/: index.html and call.js, bundled with esbuild into
dist/call.js by scripts/setup-bench.sh) does the product brief's basic call: the token request
to the local API, a `Room` with echo cancellation, noise suppression and auto gain, connect,
the microphone published as `microphone`, the assistant's track attached to an <audio>.

This driver serves the page from its own HTTP server on 127.0.0.1 and launches Chromium
(Debian's `chromium`, headless) on the rig's PulseAudio server, so the page captures from the
rig's default source `mic` and plays to its default sink `speaker`: real devices in real time,
no fake capture device. The page POSTs its milestones back to the same server.

Times: every mark's `t` is in CLOCK_MONOTONIC seconds, like the other subjects' marks. The page
maps performance.now() onto that clock with an offset measured over a few round trips to the
driver's /clock (call.js); the `clock` mark's `error_ms` bounds the mapping (half the shortest
round trip: about 2 ms on this loaded 2-core machine). Differences of two page marks (the setup
time: connected or first_frame minus call) come from the one page clock and carry no such error.

Marks: `clock`, `call` (just before the token request), `token`, `signal_connected`, `connected`,
`first_frame` (the microphone track published), `remote_track`, `stats` (the inbound audio's
receive statistics, once a second), `ended` (after room.disconnect()), `error` (the call
failed), `warning`.

    .venv/bin/python -m tests.bench.browser     # self-check: one call, its marks, cost, round trip
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.bench import roundtrip
from tests.bench.procstat import GroupCostMeter, session_members
from tests.bench.stack import BenchStack
from tests.stack.pulse_rig import speech_wav
from tests.support.signals import power_dbfs, read_wav

PAGE_DIR = Path(__file__).with_name("browser")
INDEX = PAGE_DIR / "index.html"
BUNDLE = PAGE_DIR / "dist" / "call.js"
SETUP_HINT = "scripts/setup-bench.sh installs Chromium and builds the page"
CONTROL_POLL_S = 20.0  # the page's long poll for "stop" is answered at least this often
CLOSE_TIMEOUT_S = 10.0


class BrowserError(RuntimeError):
    pass


def chromium_binary() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise BrowserError(f"chromium is not installed: {SETUP_HINT}")
    if not BUNDLE.exists():
        raise BrowserError(f"{BUNDLE} is missing: {SETUP_HINT}")
    return path


class BrowserCall:
    """One call of the page in a Chromium of its own, used like `stack.MarkedProcess`."""

    def __init__(self, stack: BenchStack, duration: float | None, *, aec: bool = True) -> None:
        chromium = chromium_binary()
        self.marks: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop_requested = threading.Event()
        self._closed = False
        self._bundle = BUNDLE.read_bytes()
        self._config = {
            "apiUrl": stack.server.url,
            "apiKey": stack.server.api_key,
            "assistantId": stack.server.assistant_id,
            "durationS": duration,
            "audioProcessing": aec,
        }
        self.dir = Path(tempfile.mkdtemp(prefix="browser-", dir=stack.dir))
        self._httpd = _PageServer(("127.0.0.1", 0), type("Handler", (_PageHandler,), {"call": self}))
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self.log_path = self.dir / "chromium.log"
        argv = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            f"--user-data-dir={self.dir / 'profile'}",
            # Grants the microphone without a prompt; the device itself stays the rig's real one.
            "--use-fake-ui-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            # Chromium drops loopback ICE candidates by default, and livekit-server's are all on
            # 127.0.0.1 (its node_ip).
            "--allow-loopback-in-peer-connection",
            # A visible embed's tab is not throttled; without a window Chromium would think it hidden.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--no-first-run",
            "--enable-logging=stderr",
            self.url,
        ]
        with self.log_path.open("wb") as log:
            # A session of its own: pids() finds every Chromium process by it, even one whose
            # parent has gone, and nothing of Chromium outlives stop().
            self.proc = subprocess.Popen(
                argv, env={**os.environ, **stack.rig.env}, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    # -- what the page reports (on the server's threads)

    def _add_mark(self, mark: dict[str, Any]) -> None:
        with self._cond:
            self.marks.append(mark)
            self._cond.notify_all()

    # -- MarkedProcess's interface

    def wait_mark(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mark in self.marks:
                    if mark["event"] == event:
                        return mark
                failure = next((m for m in self.marks if m["event"] == "error"), None)
                if failure is not None or self.proc.poll() is not None or time.monotonic() > deadline:
                    raise BrowserError(
                        f"no {event!r} mark; marks {[m['event'] for m in self.marks]}; "
                        f"error {failure}; Chromium log:\n{self.log_tail()}"
                    )
                self._cond.wait(0.2)

    def first(self, event: str) -> dict[str, Any] | None:
        with self._cond:
            return next((m for m in self.marks if m["event"] == event), None)

    def all(self, event: str) -> list[dict[str, Any]]:
        with self._cond:
            return sorted((m for m in self.marks if m["event"] == event), key=lambda m: m["t"])

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the call to end by itself (its `duration`), then close Chromium."""
        try:
            self.wait_mark("ended", timeout)
        except BrowserError:
            return self.stop()
        return self._close()

    def stop(self) -> int:
        """End the call now: room.disconnect() in the page, then close Chromium. Idempotent."""
        self._stop_requested.set()
        if not self._closed and self.proc.poll() is None:
            try:
                self.wait_mark("ended", CLOSE_TIMEOUT_S)
            except BrowserError:
                pass  # a page that cannot disconnect still has its browser closed below
        return self._close()

    def pids(self) -> list[int]:
        """Every live Chromium process of this call (11 here): the browser, its two zygotes, the
        GPU process, the renderers, and the network, storage, audio and video-capture services."""
        return session_members(self.proc.pid)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of Chromium's log, the page's console included, without its complaints about the
        missing D-Bus (there is none here, and they would crowd out everything else)."""
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if "dbus" not in line)[-chars:]

    def receive_stats(self) -> dict[str, float] | None:
        """The assistant's audio as the page received it, between its first and last `stats` marks.

        jitter_buffer_ms: the mean time a sample waited in WebRTC's jitter buffer;
        target_ms: the buffer's mean target delay; concealed_percent: samples WebRTC had to
        invent (loss or late packets) over samples received; packets_lost.
        """
        stats = [m for m in self.all("stats") if m.get("jitterBufferEmittedCount")]
        if len(stats) < 2:
            return None
        first, last = stats[0], stats[-1]
        emitted = last["jitterBufferEmittedCount"] - first["jitterBufferEmittedCount"]
        received = last["totalSamplesReceived"] - first["totalSamplesReceived"]
        if emitted <= 0 or received <= 0:
            return None
        return {
            "jitter_buffer_ms": 1000 * (last["jitterBufferDelay"] - first["jitterBufferDelay"]) / emitted,
            "target_ms": 1000 * (last["jitterBufferTargetDelay"] - first["jitterBufferTargetDelay"]) / emitted,
            "concealed_percent": 100 * (last["concealedSamples"] - first["concealedSamples"]) / received,
            "packets_lost": last["packetsLost"] - first["packetsLost"],
            "seconds": last["t"] - first["t"],
        }

    # -- closing

    def _close(self) -> int:
        if not self._closed:
            self._closed = True
            self._stop_requested.set()  # answers a long poll still waiting, so its thread ends now
            if self.proc.poll() is None:
                self.proc.terminate()  # Chromium's own orderly shutdown, children included
                try:
                    self.proc.wait(CLOSE_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass
            self._kill_leftovers()
            self._httpd.shutdown()
            self._httpd.server_close()
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.wait()

    def _kill_leftovers(self) -> None:
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while pids := self.pids():
            if time.monotonic() > deadline:
                raise BrowserError(f"Chromium processes {pids} outlived SIGKILL")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            if self.proc.poll() is None:
                self.proc.wait(CLOSE_TIMEOUT_S)
            time.sleep(0.05)


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _PageHandler(BaseHTTPRequestHandler):
    """The page, its configuration, the clock, the marks and the stop signal."""

    call: BrowserCall
    protocol_version = "HTTP/1.1"
    # Small answers in two writes: without this each would wait for the delayed ACK (~40 ms),
    # and the clock's round trips would be that much less precise.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Quiet: the page's requests are the benchmark's, not news."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/":
            self._send(200, INDEX.read_bytes(), "text/html; charset=utf-8")
        elif path == "/call.js":
            self._send(200, self.call._bundle, "text/javascript; charset=utf-8")
        elif path == "/config":
            self._send_json(self.call._config)
        elif path == "/clock":
            self._send_json({"t": time.monotonic()})
        elif path == "/control":
            self._send_json({"stop": self.call._stop_requested.wait(CONTROL_POLL_S)})
        else:
            self._send(404, b"", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if urlsplit(self.path).path != "/mark":
            self._send(404, b"", "text/plain")
            return
        self.call._add_mark(json.loads(body))
        self._send(204, b"", "text/plain")

    def _send_json(self, doc: Any) -> None:
        self._send(200, json.dumps(doc).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the page went away (Chromium closing mid-poll)


def start_browser(stack: BenchStack, duration: float | None = None, *, aec: bool = True) -> BrowserCall:
    """A browser call on `stack`: it ends after `duration` s (`finish()`), or at `stop()` if None.

    `aec` False turns the page's echo cancellation, noise suppression and auto gain off (the
    product brief's call has them on: docs/api-contract.md, "Joining"), for the benchmark's AEC-off rows.
    """
    return BrowserCall(stack, duration, aec=aec)


def start_for_roundtrip(stack: BenchStack, *, aec: bool = True) -> Callable[[], None]:
    """`roundtrip.measure`'s `start_call` for the browser: starts a call, returns its stop."""
    call = start_browser(stack, None, aec=aec)

    def stop() -> None:
        call.stop()

    return stop


# ---------------------------------------------------------------------------------- self-check

SELF_CHECK_S = 15.0
COST_WINDOW_S = 8.0
SPEECH = "Hello, this is the microphone of the browser subject, speaking to the echo assistant."


def audio_routes(stack: BenchStack, call: BrowserCall) -> tuple[list[str], list[str]]:
    """The rig's sources that Chromium records from and its sinks that Chromium plays to.

    Chromium's audio service opens two playback streams (one stays corked); both must be on `speaker`.
    """
    pids = {str(pid) for pid in call.pids()}

    def of(kind: str, streams: str, key: str) -> list[str]:
        names = {d["index"]: d["name"] for d in json.loads(stack.rig.pactl("--format=json", "list", kind))}
        return sorted({
            names[s[key]] for s in json.loads(stack.rig.pactl("--format=json", "list", streams))
            if s["properties"].get("application.process.id") in pids
        })

    return of("sources", "source-outputs", "source"), of("sinks", "sink-inputs", "sink")


def main() -> int:
    with BenchStack() as stack:
        known = len(stack.pool.assistants)
        call = start_browser(stack, SELF_CHECK_S)
        try:
            names = ("clock", "call", "token", "signal_connected", "connected", "first_frame")
            marks = {name: call.wait_mark(name, 60) for name in names}
            stack.last_assistant(known).wait_for("greeting_done", timeout=30)
            captures, plays = audio_routes(stack, call)
            speech = speech_wav(stack.dir / "speech.wav", SPEECH)
            recording = stack.dir / "browser-speaker.wav"
            stack.rig.start_recording_speaker(recording)
            player = stack.rig.play_into_mic(speech)
            meter = GroupCostMeter(call.pids)
            meter.start()
            time.sleep(COST_WINDOW_S)
            cost = meter.stop()
            stack.rig.stop_recording()
            player.terminate()
            call.finish(SELF_CHECK_S + 30)
        finally:
            call.stop()
        leftovers = call.pids()
        echo_dbfs = power_dbfs(read_wav(recording)[0])
        token_request = next(r for r in stack.server.requests if r.path == "/api/v1/embed/token")
        token_arrived = token_request.at - (time.time() - time.monotonic())

        def since_call(name: str) -> float:
            return (marks[name]["t"] - marks["call"]["t"]) * 1000

        print(f"clock mapping: ±{marks['clock']['error_ms']:.2f} ms; the API saw the token request "
              f"{(token_arrived - marks['call']['t']) * 1000:.1f} ms after `call` (CORS preflight included)")
        print("marks (ms after call): " + ", ".join(f"{n} {since_call(n):.0f}" for n in names[2:]))
        print(f"setup (max(connected, first_frame) − call): {max(since_call('connected'), since_call('first_frame')):.0f} ms")
        print(f"devices: Chromium records from {captures}, plays to {plays}")
        print(f"echo of the speech on the speaker: {echo_dbfs:.1f} dBFS over the window")
        print(f"cost over {cost.seconds:.1f} s, {cost.processes} Chromium processes: "
              f"{cost.cpu_percent:.1f} % of one core, PSS {cost.peak_pss_mb:.0f} MB (sum of peak RSS {cost.peak_rss_mb:.0f} MB)")
        print(f"receive side: {call.receive_stats()}")
        print(f"Chromium processes left after stop(): {leftovers}")

        bus = roundtrip.ClickBus(stack)
        try:
            trip = roundtrip.measure(stack, bus, lambda: start_for_roundtrip(stack), "browser")
        finally:
            bus.close()
        print(f"round trip: {[round(d) for d in trip.delays_ms]} ms of {trip.clicks_sent} clicks, "
              f"echo levels {[round(v, 1) for v in trip.echo_levels_db]} dB")
        ok = captures == ["mic"] and plays == ["speaker"] and not leftovers and bool(trip.delays_ms)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
