"""The call's devices and its microphone: the output and the input opened and the microphone's
track published (`open_audio`), the Python path's microphone pump, the native path's levels, and
the move from the native path to the Python path mid-call (`fall_back`).

A microphone that cannot open or stops leaves the call up, listen-only, said once; a call moved
to the Python path opens its devices again the way setup did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from pathlib import Path

import numpy as np
from livekit import rtc

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.meter import Level
from wespoke_tui.audio.mixing import TrackMixer
from wespoke_tui.errors import AUDIO_FALLBACK, MICROPHONE_ERROR, SPEAKER_ERROR, CallError, ErrorCode
from wespoke_tui.events import ErrorEvent
from wespoke_tui.session.host import SessionHost
from wespoke_tui.session.native_levels import NativeView
from wespoke_tui.session.parts import DEVICE_CLOSE_TIMEOUT_S, MIC_TRACK_NAME, SOURCE_QUEUE_MS, CallParts
from wespoke_tui.session.playback import Playback
from wespoke_tui.session.recording import CallRecorder
from wespoke_tui.session.silence import silence_event
from wespoke_tui.settings import Settings

log = logging.getLogger(__name__)


class AudioPath:
    """Opens the call's devices and carries the microphone, for `CallSession`."""

    def __init__(self, host: SessionHost, settings: Settings, recorder: CallRecorder, playback: Playback) -> None:
        self._host = host
        self._settings = settings
        self._recorder = recorder
        self._playback = playback

    async def open_audio(self, call: CallParts) -> None:
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
        call.mixer = TrackMixer(lambda frame: self._playback.play_frame(call, frame))
        for track in list(call.pending_tracks.values()):
            self._playback.start(call, track)
        call.pending_tracks.clear()

        mic = backend.open_input()
        try:
            await mic.start()
        except Exception as exc:
            message = exc.message if isinstance(exc, CallError) else f"{type(exc).__name__}: {exc}"
            error = CallError.of(MICROPHONE_ERROR, message)
            log.warning("microphone unavailable, listen-only: %s", message)
            self._host.emit(ErrorEvent(error, fatal=False))
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
        if self._host.muted:
            call.mic_track.mute()

    async def pump_mic(self, call: CallParts) -> None:
        assert call.input is not None
        call.mic_is_levels_clock = True
        try:
            async for frame in call.input.frames():
                level = call.mic_meter.update(frame)
                now = time.monotonic()
                if call.levels_limiter.ready(now):
                    self._playback.emit_levels(call, level)
                self._watch_silence(call, frame)
                captured_at = getattr(call.input, "last_captured_at", None)
                call.response.caller(frame.size, call.mic_meter.last_frame_dbfs,
                                      captured_at if captured_at is not None else now)
                if self._recorder.active:
                    self._recorder.mic(frame, self._host.muted or call.source is None, captured_at)
                if self._host.muted or call.source is None:
                    continue  # muted: not one frame more reaches the room
                audio = rtc.AudioFrame(frame.tobytes(), SAMPLE_RATE, 1, frame.size)
                await call.source.capture_frame(audio)
        except CallError as exc:
            log.warning("microphone stopped: %s", exc)
            self._host.emit(ErrorEvent(CallError.of(MICROPHONE_ERROR, exc.message), fatal=False))
        except Exception as exc:
            # A fault of ours or the SDK's: the call goes on listen-only, as for a dead device,
            # and the user is told (a microphone that stops without a word sends silence).
            if call.hangup.is_set():
                return
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.warning("microphone stopped: %s: %s (at %s:%d)", type(exc).__name__, exc,
                        Path(where.filename).name, where.lineno or 0)
            message = f"the microphone stopped: {type(exc).__name__}"
            self._host.emit(ErrorEvent(CallError.of(MICROPHONE_ERROR, message), fatal=False))
        finally:
            call.mic_is_levels_clock = False

    def native_view(self, call: CallParts) -> NativeView:
        """What the native path's level task needs of this session."""
        return NativeView(muted=lambda: self._host.muted, emit=self._host.emit,
                          emit_levels=lambda mic: self._native_levels_out(call, mic),
                          response=lambda: call.response, lost=lambda why: self._host.spawn(self.fall_back(call, why)))

    async def fall_back(self, call: CallParts, reason: str, *, code: ErrorCode = AUDIO_FALLBACK) -> None:
        """The native module lost a device mid-call (or a recording needs frames): the call goes on
        on the Python path, said once (`code`).

        The module's microphone track is unpublished and the module closed; the assistant's
        tracks wait as at setup (`call.output` None) and `open_audio` runs again, now on the
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
            self._playback.stop(call, sid)
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
            self._host.emit(ErrorEvent(CallError.of(code, reason), fatal=False))
            if not call.hangup.is_set():
                await self.open_audio(call)
        except CallError as exc:
            self._host.spawn(self._host.teardown(call, exc))
            return
        if call.input is not None and not call.hangup.is_set():
            self._host.call_task(call, self.pump_mic(call), "mic-pump")

    def _native_levels_out(self, call: CallParts, mic: Level) -> None:
        call.mic_is_levels_clock = True
        self._playback.emit_levels(call, mic)

    def _watch_silence(self, call: CallParts, frame: np.ndarray) -> None:
        """A device microphone giving exact zeros while unmuted: say why, once (WAV and scripted
        inputs say nothing of it: their silence is the file's)."""
        digital = getattr(call.input, "last_frame_digital_silence", None)
        if digital is None:
            return
        change = call.silence.frame(frame.size / SAMPLE_RATE, bool(digital), self._host.muted)
        if (event := silence_event(change)) is not None:
            self._host.emit(event)
