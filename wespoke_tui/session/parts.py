"""What one call holds, the connect policy, and small helpers of `CallSession`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable
from typing import Any

from livekit import rtc

from wespoke_tui.api import CallToken
from wespoke_tui.audio.base import AudioBackend, AudioInput, AudioOutput
from wespoke_tui.audio.meter import METER_HZ, LevelMeter, RateLimiter
from wespoke_tui.audio.mixing import TrackMixer
from wespoke_tui.errors import CallError, ErrorCode
from wespoke_tui.session.data import DataHandler
from wespoke_tui.session.quality import QualityMonitor
from wespoke_tui.session.silence import SilenceWatch
from wespoke_tui.session.turns import ResponseTimer

log = logging.getLogger(__name__)

MIC_TRACK_NAME = "microphone"
# The AudioSource queue holds one 20 ms frame: the SDK's 10 ms timer drains it, and capture_frame
# waits until no more than this is queued, so a late loop wake-up leaves at most 20 ms standing
# (a longer queue lets more build up). No queue, which takes exactly 10 ms frames, plays a little
# sooner but costs two FFI round trips per 20 ms instead of one; the figures of both and of the
# 50 ms queue: see BENCHMARKS.md, "Figures that were in module docstrings".
SOURCE_QUEUE_MS = 20
# The assistant's audio in 20 ms frames, the Opus packet size: half the FFI events, frame
# objects and loop wake-ups of 10 ms frames, for less CPU and no later sound than 10 ms frames
# (see BENCHMARKS.md, "Figures that were in module docstrings"). The jitter buffer covers the
# 20 ms phase.
STREAM_FRAME_MS = 20
# Remote audio frames buffered per track before the oldest are dropped (10 × 20 ms).
STREAM_CAPACITY_FRAMES = 10
# The Wespoke web SDK's connect policy: 3 attempts, waiting 2 s × 1.5^(n−1) between them.
CONNECT_ATTEMPTS = 3
CONNECT_BASE_DELAY_S = 2.0
CONNECT_BACKOFF = 1.5
CONNECT_TIMEOUT_S = 5.0
DISCONNECT_TIMEOUT_S = 2.0
STREAM_CLOSE_TIMEOUT_S = 1.0
DEVICE_CLOSE_TIMEOUT_S = 2.0
HEALTH_INTERVAL_S = 1.0
QUALITY_STATS_TIMEOUT_S = 0.5  # the room's statistics, asked once a second
POLL_INTERVAL_S = 2.0


def reconnect_schedule() -> list[float]:
    """Seconds waited before attempts 2..n; also the watchdog's pacing of a reconnect."""
    return [CONNECT_BASE_DELAY_S * CONNECT_BACKOFF ** (n - 1) for n in range(1, CONNECT_ATTEMPTS)]


def is_assistant(participant: rtc.RemoteParticipant) -> bool:
    """A participant of kind AGENT (what LiveKit Agents joins as); else the contract's rule:
    metadata `role == "assistant"`, else `agent`/`assistant` in the identity."""
    if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
        return True
    try:
        meta = json.loads(participant.metadata) if participant.metadata else None
    except ValueError:
        meta = None
    if isinstance(meta, dict) and meta.get("role") == "assistant":
        return True
    identity = participant.identity.lower()
    return "agent" in identity or "assistant" in identity


def is_auth_failure(error: BaseException) -> bool:
    """A connect error the signal server gave for a bad token (401/403): retrying cannot help."""
    text = str(error).lower()
    return any(mark in text for mark in ("401", "403", "unauthorized", "forbidden", "invalid token"))


class CallParts:
    """Everything one call holds; dropped whole when the call ends."""

    def __init__(self) -> None:
        self.hangup = asyncio.Event()
        self.done = asyncio.Event()
        self.silence = SilenceWatch()  # the microphone's digital silence (MICROPHONE_SILENT)
        self.setup_finished = False
        self.torn_down = False
        self.token_task: asyncio.Task[CallToken] | None = None
        self.token: CallToken | None = None
        self.room: rtc.Room | None = None
        self.connected_at: float | None = None  # monotonic; when `Room.connect` returned
        # The server's first message after the join is a token refresh (livekit-server
        # `rtcSessionWorker`); `leave.let_join_settle` holds an early Leave until it arrived.
        self.token_refreshed = asyncio.Event()
        self.input: AudioInput | None = None
        self.output: AudioOutput | None = None
        self.source: rtc.AudioSource | None = None
        self.mic_track: rtc.LocalAudioTrack | None = None
        self.mixer: TrackMixer | None = None
        self.streams: dict[str, rtc.AudioStream] = {}
        self.pending_tracks: dict[str, rtc.RemoteAudioTrack] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.assistant_identity: str | None = None
        self.assistant_speaking = False
        self.call_ending_seen = False
        self.reconnect_attempt = 0
        self.reconnect_watchdog: asyncio.Task[None] | None = None
        self.data: DataHandler | None = None
        self.end_task: asyncio.Task[Any] | None = None  # `/end` after the room was left
        self.record_deleted = False
        # The audio side: the devices' backend, made before the token; the meters, which share
        # one limiter (both levels leave together: a screen repaints both in one pass); whether
        # the microphone (its pump or the native levels) is the meters' clock, else the
        # assistant's frames are; when the microphone's track went up; the turn timer and the
        # quality panel's monitor.
        self.backend: AudioBackend | None = None
        self.mic_meter = LevelMeter()
        self.assistant_meter = LevelMeter()
        self.levels_limiter = RateLimiter(METER_HZ)
        self.mic_is_levels_clock = False
        self.mic_published_at: float | None = None  # monotonic
        self.response = ResponseTimer()
        self.quality = QualityMonitor()

    @property
    def native_mic(self) -> bool:
        """The microphone track is the native module's source: no frames reach Python."""
        return self.input is not None and self.source is None and self.mic_track is not None


class HungUp(CallError):
    """Internal: the user hung up while the connect was being retried."""

    def __init__(self) -> None:
        super().__init__(code=ErrorCode.HUNG_UP, message="hung up during connect")


async def logged(coro: Awaitable[Any], name: str) -> Any:
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("task %s failed", name)
        return None


async def close_stream(stream: rtc.AudioStream) -> None:
    try:
        await asyncio.wait_for(stream.aclose(), STREAM_CLOSE_TIMEOUT_S)
    except (asyncio.TimeoutError, Exception) as exc:
        log.warning("audio stream did not close cleanly: %r", exc)


def scrub_token(text: str, token: CallToken) -> str:
    return text.replace(token.token, "<token>") if token.token else text


def register_secret(secret: str) -> None:
    """Hand the LiveKit token to the log redactor, if the logging module is there."""
    try:
        from wespoke_tui.logs import register_secret
    except ImportError:
        return
    with contextlib.suppress(Exception):
        register_secret(secret)
