"""`CallSession`: one Wespoke call at a time over a real LiveKit room, as a stream of events.

The session owns the state machine, the room, the audio devices (through `AudioBackend`) and
the API client; it knows nothing of Textual. The TUI and the headless runner drive it the same
way (`CallController`).

Rules it keeps whatever happens:
- a hang-up works from every state and always ends with the room left and the devices closed;
- an in-flight `Room.connect` is never cancelled (the FFI can panic, python-sdks #784): a
  hang-up during connect lets it finish or fail, then disconnects at once;
- `Room.disconnect()` is bounded by a timeout (after the server removed the room it may never
  answer, python-sdks #199), and every task of ours ends regardless;
- `/end` is sent after the disconnect, in the background, and never delays the hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc

from wespoke_tui.api import CallToken, WespokeClient
from wespoke_tui.audio.base import SAMPLE_RATE, AudioBackend, played_tap_of, preflight_of
from wespoke_tui.audio.meter import Level
from wespoke_tui.audio.mixing import TrackMixer
from wespoke_tui.conversation import ControllerCore
from wespoke_tui.errors import (
    AUDIO_FALLBACK,
    CONNECTION_ERROR,
    INVALID_REQUEST,
    MICROPHONE_ERROR,
    RECORDING_NEEDS_PYTHON,
    SPEAKER_ERROR,
    UNKNOWN_ERROR,
    CallError,
    ErrorCode,
)
from wespoke_tui.events import (
    VOICE,
    AssistantLevel,
    AssistantSpeaking,
    AudioHealth,
    CallEvent,
    CallRecordDeleted,
    CallStarted,
    CallState,
    ErrorEvent,
    MicLevel,
    MuteChanged,
    RateLimitInfo,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.session.data import DataHandler
from wespoke_tui.session.leave import let_join_settle, let_publish_settle
from wespoke_tui.session.native_levels import NativeView, native_levels
from wespoke_tui.session.parts import (
    CONNECT_ATTEMPTS,
    CONNECT_BACKOFF,
    CONNECT_BASE_DELAY_S,
    CONNECT_TIMEOUT_S,
    DEVICE_CLOSE_TIMEOUT_S,
    DISCONNECT_TIMEOUT_S,
    HEALTH_INTERVAL_S,
    MIC_TRACK_NAME,
    POLL_INTERVAL_S,
    QUALITY_STATS_TIMEOUT_S,
    SOURCE_QUEUE_MS,
    STREAM_CAPACITY_FRAMES,
    STREAM_CLOSE_TIMEOUT_S,
    STREAM_FRAME_MS,
    CallParts,
    HungUp,
    close_stream,
    is_auth_failure,
    logged,
    register_secret,
    scrub_token,
)
from wespoke_tui.session.recording import CallRecorder
from wespoke_tui.session.room_events import RoomEventHandler
from wespoke_tui.session.silence import silence_event
from wespoke_tui.settings import Settings

log = logging.getLogger(__name__)

class CallSession(ControllerCore):
    """The call controller over LiveKit. One call at a time; many calls in a row. The state, the
    event stream and the start guard are `ControllerCore`'s, as for the chat and the demo."""

    capabilities = VOICE

    def __init__(
        self,
        settings: Settings,
        backend_factory: Callable[[], AudioBackend],
        client_factory: Callable[[], WespokeClient] | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._backend_factory = backend_factory
        self._client_factory = client_factory or self._default_client
        self._client: WespokeClient | None = None
        self._muted = False
        self._call: CallParts | None = None
        self._background: set[asyncio.Task[Any]] = set()  # hang-ups and `/end`: awaited, not cancelled
        self.last_setup_s: float | None = None  # token request → connected, for measurements
        self._recorder = CallRecorder(settings.record_dir, Texts(settings.lang), self._emit)
        self._room_events = RoomEventHandler(
            state=lambda: self._state,
            set_state=self._set_state,
            emit=self._emit,
            call_task=self._call_task,
            spawn=self._spawn,
            teardown=self._teardown,
            start_playback=self._start_playback,
            stop_playback=self._stop_playback,
        )

    # ------------------------------------------------------------------ CallController

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def call_id(self) -> str | None:
        call = self._call
        return call.token.call_id if call and call.token else None

    @property
    def room(self) -> rtc.Room | None:
        """The live room of the current call (for diagnostics and tests)."""
        return self._call.room if self._call else None

    async def start(self) -> None:
        if not self._may_start():
            return
        if self._call is not None and not self._call.setup_finished:
            return  # a call checking its devices (still idle) is already starting
        call = CallParts()  # everything this call holds, new: nothing of the last call is reset by hand
        self._call = call
        setup = asyncio.get_running_loop().create_task(self._setup(call), name="call-setup")
        try:
            # Shielded: cancelling start() must never cancel a Room.connect in flight.
            await asyncio.shield(setup)
        except asyncio.CancelledError:
            call.hangup.set()
            if call.token_task is not None:
                call.token_task.cancel()
            raise

    async def hang_up(self) -> None:
        call = self._call
        if call is None or call.done.is_set():
            return
        if not call.hangup.is_set():
            call.hangup.set()
            if self._state in (CallState.REQUESTING_TOKEN, CallState.CONNECTING, CallState.CONNECTED, CallState.RECONNECTING):
                self._set_state(CallState.ENDING)
            if call.token_task is not None and not call.token_task.done():
                call.token_task.cancel()
            if call.setup_finished:
                self._spawn(self._teardown(call, None))
        # Setup (if still running) sees the flag at its next step and tears down itself.
        await call.done.wait()

    async def set_muted(self, muted: bool) -> None:
        if muted == self._muted:
            return
        self._muted = muted
        call = self._call
        if call is not None and call.source is not None and muted:
            call.source.clear_queue()  # what is queued but not sent yet is not sent
        if call is not None and call.mic_track is not None:
            with contextlib.suppress(Exception):
                call.mic_track.mute() if muted else call.mic_track.unmute()
        self._emit(MuteChanged(muted))
        if call is not None and call.token and call.token.call_id and self._state in (CallState.CONNECTED, CallState.RECONNECTING):
            self._spawn(self._tell_api_muted(call.token.call_id, muted))

    async def send_text(self, text: str) -> None:
        """Type to the assistant: each line reaches it once (README, "Typed text").

        `POST …/messages` always (the contract: the Wespoke backend records the line and
        forwards it to its assistant, which says it is one with `"role": "assistant"` in its
        metadata). A plain LiveKit Agents assistant (kind AGENT, without that metadata) is no
        backend's: it hears typed text only on the `lk.chat` text stream, and only from the
        caller it is linked to, so the line also goes there, to it alone. The user sees an error
        only when the path that reaches the assistant failed.
        """
        text = text.strip()
        call = self._call
        if not text or call is None or call.token is None or not call.token.call_id:
            return
        if call.data is not None:
            for event in call.data.typed_line(text):
                self._emit(event)
        room, identity = call.room, call.assistant_identity
        participant = room.remote_participants.get(identity) if room is not None and identity else None
        plain_agent: str | None = None  # the identity that gets the line on lk.chat
        if participant is not None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            try:
                metadata = json.loads(participant.metadata) if participant.metadata else None
            except ValueError:
                metadata = None
            if not (isinstance(metadata, dict) and metadata.get("role") == "assistant"):
                plain_agent = participant.identity
        chat_error: CallError | None = None
        if plain_agent is not None and room is not None:
            try:
                # Bounded: a stalled room must not hold back the /messages request below.
                await asyncio.wait_for(
                    room.local_participant.send_text(text, topic="lk.chat", destination_identities=[plain_agent]), 5.0
                )
            except Exception as exc:
                log.warning("sending a message on lk.chat failed: %r", exc)
                chat_error = CallError.of(CONNECTION_ERROR, f"lk.chat send failed: {type(exc).__name__}")
        try:
            await self._api().send_message(call.token.call_id, text)
        except CallError as exc:
            log.warning("sending a message failed: %s", exc)
            if plain_agent is None:
                self._emit(ErrorEvent(exc, fatal=False))
        if chat_error is not None:
            self._emit(ErrorEvent(chat_error, fatal=False))

    async def set_recording(self, on: bool) -> bool:
        call = self._call
        if not on:
            self._recorder.stop()
            return True
        if call is None or call.token is None or self._state is not CallState.CONNECTED:
            return False
        if call.native_mic:  # the native module hands out no frames: the call moves to the Python path
            await self._fall_back(call, "recording needs the python audio path", code=RECORDING_NEEDS_PYTHON)
            if call.native_mic or call.hangup.is_set():
                return False
        return self._recorder.start(call.token.call_id or "call", call.token.assistant.name)

    async def delete_record(self) -> bool:
        """`DELETE /api/v1/calls/{id}` of the last call, in the order docs/api-contract.md gives ("REST calls").

        Only once the call is over (its room left: a delete never ends a live call) and after its
        `/end` had its answer, so the backend closes the call before it forgets it.
        """
        call = self._call
        if call is None or not call.done.is_set() or call.token is None or not call.token.call_id:
            return False
        if call.record_deleted:
            return True
        if call.end_task is not None:
            await asyncio.wait({call.end_task})
        call_id = call.token.call_id
        try:
            await self._api().delete_call(call_id)
        except CallError as exc:
            log.warning("deleting the call record failed: %s", exc)
            self._emit(ErrorEvent(exc, fatal=False))
            return False
        call.record_deleted = True
        self._emit(CallRecordDeleted(call_id))
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        await self.hang_up()
        self._closed = True
        if self._background:
            await asyncio.wait(set(self._background), timeout=3.0)
        for task in list(self._background):
            task.cancel()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
        self._close_stream()

    # ------------------------------------------------------------------ setup

    def _default_client(self) -> WespokeClient:
        s = self._settings
        return WespokeClient(s.api_url, s.api_key or "", origin=s.origin)

    def _api(self) -> WespokeClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    async def _setup(self, call: CallParts) -> None:
        started = time.monotonic()
        try:
            # The devices first, before any word of a token: a token creates (and bills) a call.
            backend = self._backend_factory()
            call.backend = backend
            check = preflight_of(backend)
            if check is not None:
                await asyncio.to_thread(check)
            fallback = getattr(backend, "fallback_reason", None)
            if fallback:  # the native module cannot carry this call: said once, the call goes on
                self._emit(ErrorEvent(CallError.of(AUDIO_FALLBACK, fallback), fatal=False))
            if call.hangup.is_set():
                return await self._teardown(call, None)
            self._set_state(CallState.REQUESTING_TOKEN)
            token = await self._fetch_token(call)
            if token is None or call.hangup.is_set():
                return await self._teardown(call, None)
            call.token = token
            register_secret(token.token)
            self._emit(
                CallStarted(
                    call_id=token.call_id or "",
                    room_name=token.room_name,
                    assistant_id=token.assistant.id,
                    assistant_name=token.assistant.name,
                )
            )
            if token.rate_limit is not None:
                rl = token.rate_limit
                self._emit(RateLimitInfo(remaining=rl.remaining, limit=rl.limit, reset_at=rl.reset_at))
            self._set_state(CallState.CONNECTING)
            call.data = DataHandler()
            room = await self._connect(call, token)
            call.room = room
            if call.hangup.is_set():
                return await self._teardown(call, None)
            await self._open_audio(call)
            if call.hangup.is_set():
                return await self._teardown(call, None)
            self._start_call_tasks(call)
            call.setup_finished = True
            self.last_setup_s = time.monotonic() - started
            log.info("call %s connected in %.2f s", token.call_id, self.last_setup_s)
            self._set_state(CallState.CONNECTED)
            if self._settings.record_calls:
                self._recorder.start(token.call_id or "call", token.assistant.name)
            if self._muted and token.call_id:  # muted before the call was up: the API learns now
                self._spawn(self._tell_api_muted(token.call_id, True))
            self._room_events.scan_participants(call)
        except HungUp:
            await self._teardown(call, None)
        except CallError as exc:
            await self._teardown(call, exc)
        except Exception as exc:  # never a traceback at the user: log it, fail the call
            log.exception("call setup failed")
            await self._teardown(call, CallError.of(UNKNOWN_ERROR, f"setup failed: {type(exc).__name__}"))
        finally:
            call.setup_finished = True

    async def _fetch_token(self, call: CallParts) -> CallToken | None:
        s = self._settings
        if not s.assistant_id:
            raise CallError.of(INVALID_REQUEST, "no assistant id")
        call.token_task = asyncio.get_running_loop().create_task(
            self._api().create_token(s.assistant_id, s.token_metadata(), s.assistant_overrides())
        )
        await asyncio.wait({call.token_task})
        if call.token_task.cancelled():
            return None
        return call.token_task.result()

    async def _connect(self, call: CallParts, token: CallToken) -> rtc.Room:
        last_error: BaseException | None = None
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            room = rtc.Room()
            call.token_refreshed.clear()
            self._room_events.wire(call, room)
            try:
                await room.connect(token.url, token.token, rtc.RoomOptions(auto_subscribe=True, connect_timeout=CONNECT_TIMEOUT_S))
                call.connected_at = time.monotonic()
                return room
            except rtc.ConnectError as exc:
                last_error = exc
                log.warning("connect attempt %d/%d failed: %s", attempt, CONNECT_ATTEMPTS, scrub_token(str(exc), token))
                if is_auth_failure(exc) or attempt == CONNECT_ATTEMPTS or call.hangup.is_set():
                    break
                delay = CONNECT_BASE_DELAY_S * CONNECT_BACKOFF ** (attempt - 1)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(call.hangup.wait(), delay)
                if call.hangup.is_set():
                    break
        if call.hangup.is_set():
            raise HungUp()
        message = scrub_token(str(last_error), token) if last_error else "connect failed"
        raise CallError.of(CONNECTION_ERROR, f"room connect failed: {message}")

    async def _open_audio(self, call: CallParts) -> None:
        backend = call.backend
        assert backend is not None, "made (and checked) before the token"
        output = backend.open_output()
        try:
            await output.start()
        except CallError as exc:
            raise CallError.of(SPEAKER_ERROR, exc.message) from None
        except Exception as exc:
            raise CallError.of(SPEAKER_ERROR, f"output failed: {type(exc).__name__}: {exc}") from None
        call.output = output
        call.mixer = TrackMixer(lambda frame: self._play_frame(call, frame))
        for track in list(call.pending_tracks.values()):
            self._start_playback(call, track)
        call.pending_tracks.clear()

        mic = backend.open_input()
        try:
            await mic.start()
        except Exception as exc:
            message = exc.message if isinstance(exc, CallError) else f"{type(exc).__name__}: {exc}"
            error = CallError.of(MICROPHONE_ERROR, message)
            log.warning("microphone unavailable, listen-only: %s", message)
            self._emit(ErrorEvent(error, fatal=False))
            with contextlib.suppress(Exception):
                await mic.aclose()
            return
        call.input = mic
        assert call.room is not None
        native = getattr(mic, "native_source", None)
        if native is not None:  # the module captures and sends by itself: its source is the track's
            call.mic_track = rtc.LocalAudioTrack.create_audio_track(MIC_TRACK_NAME, native)
        else:
            call.source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=SOURCE_QUEUE_MS)
            call.mic_track = rtc.LocalAudioTrack.create_audio_track(MIC_TRACK_NAME, call.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        call.mic_published_at = None
        await call.room.local_participant.publish_track(call.mic_track, options)
        call.mic_published_at = time.monotonic()
        if self._muted:
            call.mic_track.mute()

    def _start_call_tasks(self, call: CallParts) -> None:
        if call.native_mic:
            self._call_task(call, native_levels(self._native_view(call), call), "native-levels")
        elif call.input is not None:
            self._call_task(call, self._pump_mic(call), "mic-pump")
        self._call_task(call, self._report_health(call), "audio-health")
        if call.token is not None and call.token.call_id:
            self._call_task(call, self._poll_messages(call), "poll-messages")

    # ------------------------------------------------------------------ audio paths

    def _start_playback(self, call: CallParts, track: rtc.RemoteAudioTrack) -> None:
        if track.sid in call.streams or call.mixer is None:
            return
        tap_ms = getattr(call.backend, "tap_frame_ms", None)  # the native module plays it itself
        stream = rtc.AudioStream(
            track, sample_rate=SAMPLE_RATE, num_channels=1, capacity=STREAM_CAPACITY_FRAMES,
            frame_size_ms=tap_ms or STREAM_FRAME_MS,
        )
        call.streams[track.sid] = stream
        call.mixer.add_track(track.sid)
        self._call_task(call, self._play_track(call, track.sid, stream), f"play-{track.sid}")

    def _stop_playback(self, call: CallParts, track_sid: str) -> None:
        call.pending_tracks.pop(track_sid, None)
        stream = call.streams.pop(track_sid, None)
        if call.mixer is not None:
            call.mixer.remove_track(track_sid)
        if stream is not None:
            self._spawn(close_stream(stream))

    async def _play_track(self, call: CallParts, track_sid: str, stream: rtc.AudioStream) -> None:
        async for event in stream:
            frame = event.frame
            samples = np.frombuffer(frame.data, dtype=np.int16)
            if frame.num_channels > 1:
                samples = samples.reshape(-1, frame.num_channels)[:, 0]
            if call.mixer is not None:
                call.mixer.push(track_sid, samples)

    def _play_frame(self, call: CallParts, frame: np.ndarray) -> None:
        if call.output is None:
            return
        delay = getattr(call.output, "delay_s", None)
        delay_s = delay() if delay is not None else 0.0
        if self._recorder.active and not self._record_played(call):
            self._recorder.speaker(frame, delay_s)  # an output without a tap: as written, + its delay
        call.output.write(frame)
        call.assistant_meter.update(frame)
        now = time.monotonic()
        call.response.assistant(frame.size, call.assistant_meter.last_frame_dbfs, now + delay_s)
        if not call.mic_is_levels_clock and call.levels_limiter.ready(now):
            self._emit_levels(call)  # listen-only: the assistant's frames are the meters' clock

    def _record_played(self, call: CallParts) -> bool:
        """Hand the recording what the speaker played since last time, stamped when heard; False
        when the output cannot tell (then frames are recorded as written)."""
        tap = played_tap_of(call.output)
        if tap is None:
            return False
        tap.set_on(self._recorder.active)
        for heard_at, block in tap.drain():
            self._recorder.played(block, heard_at)
        return True

    def _emit_levels(self, call: CallParts, mic: Level | None = None) -> None:
        if mic is not None:
            self._emit(MicLevel(mic.rms_dbfs, mic.peak_dbfs, self._muted))
        assistant = call.assistant_meter.level
        self._emit(AssistantLevel(assistant.rms_dbfs, assistant.peak_dbfs))

    async def _pump_mic(self, call: CallParts) -> None:
        assert call.input is not None
        call.mic_is_levels_clock = True
        try:
            async for frame in call.input.frames():
                level = call.mic_meter.update(frame)
                now = time.monotonic()
                if call.levels_limiter.ready(now):
                    self._emit_levels(call, level)
                self._watch_silence(call, frame)
                captured_at = getattr(call.input, "last_captured_at", None)
                call.response.caller(frame.size, call.mic_meter.last_frame_dbfs,
                                      captured_at if captured_at is not None else now)
                if self._recorder.active:
                    self._recorder.mic(frame, self._muted or call.source is None, captured_at)
                if self._muted or call.source is None:
                    continue  # muted: not one frame more reaches the room
                audio = rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, frame.size)
                await call.source.capture_frame(audio)
        except CallError as exc:
            log.warning("microphone stopped: %s", exc)
            self._emit(ErrorEvent(CallError.of(MICROPHONE_ERROR, exc.message), fatal=False))
        except Exception as exc:
            # A fault of ours or the SDK's: the call goes on listen-only, as for a dead device,
            # and the user is told (a microphone that stops without a word sends silence).
            if call.hangup.is_set():
                return
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.warning("microphone stopped: %s: %s (at %s:%d)", type(exc).__name__, exc,
                        Path(where.filename).name, where.lineno or 0)
            message = f"the microphone stopped: {type(exc).__name__}"
            self._emit(ErrorEvent(CallError.of(MICROPHONE_ERROR, message), fatal=False))
        finally:
            call.mic_is_levels_clock = False

    def _native_view(self, call: CallParts) -> NativeView:
        """What the native path's level task needs of this session."""
        return NativeView(muted=lambda: self._muted, emit=self._emit,
                          emit_levels=lambda mic: self._native_levels_out(call, mic),
                          response=lambda: call.response, lost=lambda why: self._spawn(self._fall_back(call, why)))

    async def _fall_back(self, call: CallParts, reason: str, *, code: ErrorCode = AUDIO_FALLBACK) -> None:
        """The native module lost a device mid-call (or a recording needs frames): the call goes on
        on the Python path, said once (`code`).

        The module's microphone track is unpublished and the module closed; the assistant's
        tracks wait as at setup (`call.output` None) and `_open_audio` runs again, now on the
        Python path, whose own errors (no device at all, a microphone that does not open) are
        what the user then sees."""
        fall_back_now = getattr(call.backend, "fall_back_now", None)
        room = call.room
        if call.hangup.is_set() or fall_back_now is None or room is None or not call.native_mic:
            return  # (a second cause while the first moves the call: no longer native_mic)
        log.warning("audio: %s; the call moves to the Python audio path", reason)
        track, call.mic_track = call.mic_track, None
        if track is not None and track.sid:
            with contextlib.suppress(Exception):
                await room.local_participant.unpublish_track(track.sid)
        devices, call.input, call.output = (call.input, call.output), None, None
        for sid in list(call.streams):
            self._stop_playback(call, sid)
        assistant = room.remote_participants.get(call.assistant_identity or "")
        for publication in assistant.track_publications.values() if assistant is not None else ():
            if isinstance(publication.track, rtc.RemoteAudioTrack):
                call.pending_tracks[publication.track.sid] = publication.track
        for device in devices:
            if device is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(device.aclose(), DEVICE_CLOSE_TIMEOUT_S)
        try:
            await asyncio.to_thread(fall_back_now, reason)
            self._emit(ErrorEvent(CallError.of(code, reason), fatal=False))
            if not call.hangup.is_set():
                await self._open_audio(call)
        except CallError as exc:
            self._spawn(self._teardown(call, exc))
            return
        if call.input is not None and not call.hangup.is_set():
            self._call_task(call, self._pump_mic(call), "mic-pump")

    def _native_levels_out(self, call: CallParts, mic: Level) -> None:
        call.mic_is_levels_clock = True
        self._emit_levels(call, mic)

    def _watch_silence(self, call: CallParts, frame: np.ndarray) -> None:
        """A device microphone giving exact zeros while unmuted: say why, once (WAV and scripted
        inputs say nothing of it: their silence is the file's)."""
        digital = getattr(call.input, "last_frame_digital_silence", None)
        if digital is None:
            return
        change = call.silence.frame(frame.size / SAMPLE_RATE, bool(digital), self._muted)
        if (event := silence_event(change)) is not None:
            self._emit(event)

    async def _report_health(self, call: CallParts) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            if call.backend is None:
                continue
            try:
                counters = call.backend.health()
            except Exception:
                log.debug("audio health unavailable", exc_info=True)
                continue
            log.debug("audio health: %s", counters)
            if call.output is not None:
                self._record_played(call)  # also while no assistant track plays
            self._recorder.tick(counters)
            self._emit(
                AudioHealth(
                    playback_underruns=int(counters.get("playback_underruns", 0)),
                    playback_overruns=int(counters.get("playback_overruns", 0)),
                    playback_trims=int(counters.get("playback_trims", 0)),
                    capture_dropped_frames=int(counters.get("capture_dropped_frames", 0)),
                    capture_queue_depth=int(counters.get("capture_queue_depth", 0)),
                    playback_queue_ms=float(counters.get("playback_queue_ms", 0.0)),
                )
            )
            await self._report_quality(call, counters)

    async def _report_quality(self, call: CallParts, counters: dict[str, float]) -> None:
        if call.room is None or call.hangup.is_set():
            return
        try:
            stats = await asyncio.wait_for(call.room.get_rtc_stats(), QUALITY_STATS_TIMEOUT_S)
        except Exception:  # a room going away, a slow FFI: the next second tries again
            log.debug("call statistics unavailable", exc_info=True)
            return
        if call.hangup.is_set() or not (stats.publisher_stats or stats.subscriber_stats):
            return  # a room being left has no figures to show, only zeros
        self._emit(call.quality.sample(list(stats.publisher_stats), list(stats.subscriber_stats), counters,
                                       call.response.last_ms))

    async def _poll_messages(self, call: CallParts) -> None:
        """The web SDK's fallback for data messages lost on the way: the history, every 2 s."""
        assert call.token is not None and call.token.call_id and call.data is not None
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                messages = await self._api().list_messages(call.token.call_id)
            except CallError as exc:
                log.info("message poll failed: %s", exc)
                continue
            for event in call.data.history(messages):
                self._emit(event)

    async def _tell_api_muted(self, call_id: str, muted: bool) -> None:
        try:
            await self._api().set_muted(call_id, muted)
        except CallError as exc:
            log.warning("telling the API about mute=%s failed: %s", muted, exc)

    async def _send_end(self, call_id: str) -> None:
        try:
            await self._api().end_call(call_id)
        except CallError as exc:
            log.info("/end failed (the disconnect already ended the call): %s", exc)

    # ------------------------------------------------------------------ teardown

    async def _teardown(self, call: CallParts, error: CallError | None) -> None:
        """Leave the room, then close everything; ends in `ended` or `failed(error)`. Runs once."""
        if call.torn_down:
            await call.done.wait()
            return
        call.torn_down = True
        call.hangup.set()
        if error is None and self._state != CallState.ENDING:
            self._set_state(CallState.ENDING)
        current = asyncio.current_task()
        mic_tasks = [t for t in call.tasks if t.get_name() == "mic-pump" and t is not current]
        for task in mic_tasks:
            task.cancel()
        room = call.room
        if room is not None:
            await let_join_settle(call, room)
            await let_publish_settle(call, call.mic_published_at)
            try:
                await asyncio.wait_for(room.disconnect(), DISCONNECT_TIMEOUT_S)
            except (asyncio.TimeoutError, Exception) as exc:
                log.warning("room disconnect did not finish cleanly: %s", type(exc).__name__)
        if call.token is not None and call.token.call_id:
            call.end_task = self._spawn(self._send_end(call.token.call_id))
        for task in list(call.tasks):
            if task is not current:
                task.cancel()
        others = [t for t in call.tasks if t is not current]
        if others:
            await asyncio.wait(others, timeout=STREAM_CLOSE_TIMEOUT_S)
        for sid in list(call.streams):
            self._stop_playback(call, sid)
        if call.source is not None:
            with contextlib.suppress(Exception):
                await call.source.aclose()
        for device in (call.input, call.output):
            if device is not None:
                try:
                    await asyncio.wait_for(device.aclose(), DEVICE_CLOSE_TIMEOUT_S)
                except (asyncio.TimeoutError, Exception) as exc:
                    log.warning("closing an audio device failed: %s", type(exc).__name__)
        if call.room is not None:
            with contextlib.suppress(Exception):
                call.room.unregister_text_stream_handler("lk.transcription")
        if call.assistant_speaking:
            call.assistant_speaking = False
            self._emit(AssistantSpeaking(False))
        self._recorder.stop()
        if error is None:
            self._set_state(CallState.ENDED)
        else:
            self._emit(ErrorEvent(error, fatal=True))
            self._set_state(CallState.FAILED, error)
        call.done.set()

    # ------------------------------------------------------------------ helpers

    def _emit(self, event: CallEvent) -> None:
        self._recorder.event(event)
        super()._emit(event)

    def _call_task(self, call: CallParts, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(logged(coro, name), name=name)
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)
        return task

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(logged(coro, "background"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
