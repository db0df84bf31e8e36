"""Echo cancellation, noise suppression, high-pass and auto gain: one `rtc.AudioProcessingModule`.

The SDK's APM is used as is. What this wrapper adds:
- the far end (what the speaker plays) is queued by the playback callback and goes into the APM
  from the capture callback, right before the microphone's frames, all as exact 10 ms frames.
  Every APM call is an FFI request, and on this kind of machine (a VM whose CPUs sleep between
  callbacks) one made from a thread that just woke costs many times one made right after
  another call (see BENCHMARKS.md); so the APM is called from one thread, its calls back to back;
- the stream delay is the measured one: the output latency (PortAudio's outputBufferDacTime
  minus currentTime, reported by playback) plus the capture-to-processing time of each frame
  (ADC time to the moment `process_capture` runs, including our own queue), minus the time the
  far end waited in its queue;
- `set_stream_delay_ms` can raise on large delays (livekit/agents #2854): the delay is clamped
  to what WebRTC accepts and any error is logged once and ignored; the call never dies of it;
- the cost per 10 ms stays at one FFI call per stream: each stream has one `AudioFrame` whose
  buffer is reused (numpy writes into it, the APM processes it in place), and the delay is sent
  only when its whole-millisecond value changes.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from wespoke_tui.audio.base import FRAME_MS

if TYPE_CHECKING:
    from livekit import rtc  # imported when a processor is made (__init__)

log = logging.getLogger(__name__)

MAX_STREAM_DELAY_MS = 500  # WebRTC's AEC accepts 0..500 ms
DELAY_SMOOTHING = 0.05  # per frame: the delay estimate follows real changes in ~0.2 s, not jitter
REVERSE_BACKLOG_FRAMES = 20  # 200 ms: with no microphone running the far end is not needed


class VoiceProcessor:
    """The APM of one call, shared by capture (forward stream) and playback (reverse stream).

    No Python lock: the far end crosses threads in a deque (its append and popleft are atomic),
    and only the capture side calls the APM.
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
        self._frames: dict[tuple[str, int], tuple[rtc.AudioFrame, np.ndarray]] = {}
        self._delay_failed = False
        self.errors = 0
        self.reverse_frames = 0
        self.reverse_dropped = 0
        # (far-end samples, their rate, when queued): bounded, the oldest dropped
        self._reverse: collections.deque[tuple[np.ndarray, int, float]] = collections.deque(maxlen=REVERSE_BACKLOG_FRAMES)
        self._reverse_wait_ms = 0.0

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

    def _frame(self, stream: str, rate: int) -> tuple[rtc.AudioFrame, np.ndarray]:
        """The reusable 10 ms frame of one stream at one rate, and a numpy view of its samples."""
        key = (stream, rate)
        made = self._frames.get(key)
        if made is None:
            samples = rate * FRAME_MS // 1000
            buffer = bytearray(samples * 2)
            made = (self._rtc.AudioFrame(buffer, rate, 1, samples), np.frombuffer(buffer, dtype=np.int16))
            self._frames[key] = made
        return made

    def queue_reverse(self, samples: np.ndarray, rate: int, now: float) -> None:
        """From the playback callback: one 10 ms int16 block exactly as it is about to be played."""
        if len(self._reverse) == REVERSE_BACKLOG_FRAMES:
            self.reverse_dropped += 1
        self._reverse.append((samples.copy(), rate, now))

    def process_capture(self, samples: np.ndarray, rate: int, capture_delay_s: float) -> np.ndarray:
        """The near end: one 10 ms int16 frame, after the far end queued so far; returns the
        processed copy."""
        self._process_reverse()
        frame, view = self._frame("capture", rate)
        view[:] = samples
        if self.echo_cancellation:
            self._set_delay(self._output_delay_ms + max(0.0, capture_delay_s * 1000.0) - self._reverse_wait_ms)
        try:
            self._apm.process_stream(frame)
        except Exception:
            self._count_error("forward stream")
            return samples
        return view.copy()

    def _process_reverse(self) -> None:
        if not self._reverse:  # the second 10 ms block of a capture callback finds it drained
            return
        now = time.monotonic()
        while self._reverse:
            samples, rate, queued_at = self._reverse.popleft()
            self._reverse_wait_ms = (now - queued_at) * 1000.0
            frame, view = self._frame("reverse", rate)
            view[:] = samples
            try:
                self._apm.process_reverse_stream(frame)
                self.reverse_frames += 1
            except Exception:
                self._count_error("reverse stream")

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
