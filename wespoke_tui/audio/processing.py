"""Echo cancellation, noise suppression, high-pass and auto gain: one `rtc.AudioProcessingModule`.

The SDK's APM is used as is. What this wrapper adds:
- the far end (what the speaker plays) goes in from the playback callback, the microphone from
  the capture consumer, both as exact 10 ms frames;
- the stream delay is the measured one: the output latency (PortAudio's outputBufferDacTime
  minus currentTime, reported by playback) plus the capture-to-processing time of each frame
  (ADC time to the moment `process_capture` runs, including our own queue);
- `set_stream_delay_ms` can raise on large delays (livekit/agents #2854): the delay is clamped
  to what WebRTC accepts and any error is logged once and ignored; the call never dies of it;
- the cost per 10 ms stays at one FFI call per stream: each stream has one `AudioFrame` whose
  buffer is reused (numpy writes into it, the APM processes it in place), and the delay is sent
  only when its whole-millisecond value changes.
"""

from __future__ import annotations

import logging

import numpy as np

from wespoke_tui.audio.base import FRAME_MS

log = logging.getLogger(__name__)

MAX_STREAM_DELAY_MS = 500  # WebRTC's AEC accepts 0..500 ms
DELAY_SMOOTHING = 0.05  # per frame: the delay estimate follows real changes in ~0.2 s, not jitter


class VoiceProcessor:
    """The APM of one call, shared by capture (forward stream) and playback (reverse stream).

    No Python lock: the two streams run on different threads, and WebRTC's APM keeps its render
    and capture sides apart itself; a lock here would make the playback callback wait.
    """

    def __init__(self, *, echo_cancellation: bool, noise_suppression: bool, auto_gain: bool, high_pass: bool = True) -> None:
        from livekit import rtc

        self._rtc = rtc
        self.echo_cancellation = echo_cancellation
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=echo_cancellation,
            noise_suppression=noise_suppression,
            high_pass_filter=high_pass,
            auto_gain_control=auto_gain,
        )
        self._output_delay_ms = 0.0
        self._delay_ms: float | None = None
        self._sent_delay_ms: int | None = None
        self._frames: dict[tuple[str, int], tuple[object, np.ndarray]] = {}
        self._delay_failed = False
        self.errors = 0
        self.reverse_frames = 0

    @classmethod
    def from_flags(cls, *, aec: bool, noise_suppression: bool, auto_gain: bool) -> VoiceProcessor:
        return cls(echo_cancellation=aec, noise_suppression=noise_suppression, auto_gain=auto_gain)

    @property
    def stream_delay_ms(self) -> float:
        """The delay last given to the APM (for tests and the log)."""
        return self._delay_ms or 0.0

    def set_output_delay(self, seconds: float) -> None:
        """From the playback callback: how long until what is written now reaches the DAC."""
        self._output_delay_ms = max(0.0, seconds * 1000.0)

    def _frame(self, stream: str, rate: int) -> tuple[object, np.ndarray]:
        """The reusable 10 ms frame of one stream at one rate, and a numpy view of its samples."""
        key = (stream, rate)
        made = self._frames.get(key)
        if made is None:
            samples = rate * FRAME_MS // 1000
            buffer = bytearray(samples * 2)
            made = (self._rtc.AudioFrame(buffer, rate, 1, samples), np.frombuffer(buffer, dtype=np.int16))
            self._frames[key] = made
        return made

    def process_reverse(self, samples: np.ndarray, rate: int) -> None:
        """The far end: one 10 ms int16 block exactly as it is about to be played."""
        frame, view = self._frame("reverse", rate)
        view[:] = samples
        try:
            self._apm.process_reverse_stream(frame)
            self.reverse_frames += 1
        except Exception:
            self._count_error("reverse stream")

    def process_capture(self, samples: np.ndarray, rate: int, capture_delay_s: float) -> np.ndarray:
        """The near end: one 10 ms int16 frame; returns the processed copy."""
        frame, view = self._frame("capture", rate)
        view[:] = samples
        if self.echo_cancellation:
            self._set_delay(self._output_delay_ms + max(0.0, capture_delay_s * 1000.0))
        try:
            self._apm.process_stream(frame)
        except Exception:
            self._count_error("forward stream")
            return samples
        return view.copy()

    def _set_delay(self, measured_ms: float) -> None:
        if self._delay_ms is None:
            self._delay_ms = measured_ms
        else:
            self._delay_ms += DELAY_SMOOTHING * (measured_ms - self._delay_ms)
        delay = int(min(MAX_STREAM_DELAY_MS, max(0.0, self._delay_ms)))
        if delay == self._sent_delay_ms:
            return
        self._sent_delay_ms = delay
        try:
            self._apm.set_stream_delay_ms(delay)
        except Exception as exc:  # livekit/agents #2854: never let the delay kill the call
            if not self._delay_failed:
                log.warning("APM refused stream delay %d ms: %s", delay, exc)
                self._delay_failed = True

    def _count_error(self, where: str) -> None:
        if self.errors == 0:
            log.warning("APM %s processing failed", where, exc_info=True)
        self.errors += 1
