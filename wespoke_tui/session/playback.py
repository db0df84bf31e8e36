"""The assistant's audio to the speaker: one stream per track of the assistant, mixed
(`TrackMixer`), written to the call's output, metered, and handed to the recording as heard.

A track plays only once the call has an output and a mixer (until then `CallParts.pending_tracks`
holds it), and a stopped track's stream is closed in the background, bounded.
"""

from __future__ import annotations

import time

import numpy as np
from livekit import rtc

from wespoke_tui.audio.base import SAMPLE_RATE, played_tap_of
from wespoke_tui.audio.meter import Level
from wespoke_tui.events import AssistantLevel, MicLevel
from wespoke_tui.session.host import SessionHost
from wespoke_tui.session.parts import STREAM_CAPACITY_FRAMES, STREAM_FRAME_MS, CallParts, close_stream
from wespoke_tui.session.recording import CallRecorder


class Playback:
    """The playback of the assistant's tracks and the meters' levels, for `CallSession`."""

    def __init__(self, host: SessionHost, recorder: CallRecorder) -> None:
        self._host = host
        self._recorder = recorder

    def start(self, call: CallParts, track: rtc.RemoteAudioTrack) -> None:
        if track.sid in call.streams or call.mixer is None:
            return
        tap_ms = getattr(call.backend, "tap_frame_ms", None)  # the native module plays it itself
        stream = rtc.AudioStream(
            track, sample_rate=SAMPLE_RATE, num_channels=1, capacity=STREAM_CAPACITY_FRAMES,
            frame_size_ms=tap_ms or STREAM_FRAME_MS,
        )
        call.streams[track.sid] = stream
        call.mixer.add_track(track.sid)
        self._host.call_task(call, self._play_track(call, track.sid, stream), f"play-{track.sid}")

    def stop(self, call: CallParts, track_sid: str) -> None:
        call.pending_tracks.pop(track_sid, None)
        stream = call.streams.pop(track_sid, None)
        if call.mixer is not None:
            call.mixer.remove_track(track_sid)
        if stream is not None:
            self._host.spawn(close_stream(stream))

    async def _play_track(self, call: CallParts, track_sid: str, stream: rtc.AudioStream) -> None:
        async for event in stream:
            frame = event.frame
            samples = np.frombuffer(frame.data, dtype=np.int16)
            if frame.num_channels > 1:
                samples = samples.reshape(-1, frame.num_channels)[:, 0]
            if call.mixer is not None:
                call.mixer.push(track_sid, samples)

    def play_frame(self, call: CallParts, frame: np.ndarray) -> None:
        if call.output is None:
            return
        delay = getattr(call.output, "delay_s", None)
        delay_s = delay() if delay is not None else 0.0
        if self._recorder.active and not self.record_played(call):
            self._recorder.speaker(frame, delay_s)  # an output without a tap: as written, + its delay
        call.output.write(frame)
        call.assistant_meter.update(frame)
        now = time.monotonic()
        call.response.assistant(frame.size, call.assistant_meter.last_frame_dbfs, now + delay_s)
        if not call.mic_is_levels_clock and call.levels_limiter.ready(now):
            self.emit_levels(call)  # listen-only: the assistant's frames are the meters' clock

    def record_played(self, call: CallParts) -> bool:
        """Hand the recording what the speaker played since last time, stamped when heard; False
        when the output cannot tell (then frames are recorded as written)."""
        tap = played_tap_of(call.output)
        if tap is None:
            return False
        tap.set_on(self._recorder.active)
        for heard_at, block in tap.drain():
            self._recorder.played(block, heard_at)
        return True

    def emit_levels(self, call: CallParts, mic: Level | None = None) -> None:
        if mic is not None:
            self._host.emit(MicLevel(mic.rms_dbfs, mic.peak_dbfs, self._host.muted))
        assistant = call.assistant_meter.level
        self._host.emit(AssistantLevel(assistant.rms_dbfs, assistant.peak_dbfs))
