"""The jitter buffer: device-rate samples between the loop, which writes, and the device's
callback, which reads; it never makes either wait.

Its life, per utterance:
- IDLE: nothing to play; the callback outputs silence.
- BUFFERING: audio arrived; the callback keeps outputting silence until the buffer holds the
  target depth (`jitter_buffer_ms`) or the writer has gone quiet (a short last utterance), then
  starts with a short fade-in. This prebuffer is what stops the crackle at utterance starts.
- PLAYING: the callback pulls one block (`FRAME_MS`) per call. When it takes the last samples
  it fades them out (no click) and the buffer goes DRY.
- DRY: if audio arrives within `UNDERRUN_WINDOW_S` of running dry, the writer was still
  talking and we starved: that is one **underrun**. Otherwise the utterance simply ended (the
  silence between utterances is not an underrun). Either way the next audio prebuffers again.
A write that would overflow the bound (`max_ms`) drops the oldest samples: an **overrun**.

WebRTC's NetEQ (inside the SDK's `AudioStream`) already absorbs the network's jitter, so this
buffer only has to cover the phase between the stream's frames and the device's callbacks,
plus the event loop's scheduling: its target starts small. Each underrun is proof that this
machine needs more, so it raises the target by `TARGET_STEP_MS` (up to half the bound) for the
rest of the call, as NetEQ does with its own.

An assistant's track streams without pause (silence included), so the buffer may never run
dry, and a burst of late frames would then stay queued as latency for the rest of the call.
So the buffer watches its lowest depth over each `TRIM_WINDOW_S` while PLAYING: what stays
above the target by more than `TRIM_SLACK_MS` the whole window is standing latency, not
jitter, and is trimmed by skipping blocks, quiet ones by preference (inaudible), a loud one
with a fade-in only if no quiet one came within `TRIM_DEADLINE_S`. Each is a **trim**.

No device here: `playback.py` puts this buffer in front of the sound device.
"""

from __future__ import annotations

import enum
import threading

import numpy as np

from wespoke_tui.audio.base import FRAME_MS

UNDERRUN_WINDOW_S = 0.1
TARGET_STEP_MS = 10
FADE_MS = 5
MIN_MAX_MS = 200  # the bound is max(4 × target, 200 ms)
TRIM_WINDOW_S = 1.0
TRIM_SLACK_MS = 10
TRIM_DEADLINE_S = 2.0
QUIET_DBFS = -50.0
QUIET_PEAK = 32768.0 * 10 ** (QUIET_DBFS / 20)
QUIET_MEAN_SQUARE = QUIET_PEAK**2


class BufferState(enum.Enum):
    IDLE = "idle"
    BUFFERING = "buffering"
    PLAYING = "playing"
    DRY = "dry"


class JitterBuffer:
    """The thread-safe sample FIFO between `write()` (loop) and the callback (PortAudio)."""

    def __init__(self, rate: int, target_ms: float, max_ms: float | None = None) -> None:
        self.rate = rate
        self.target = max(1, int(rate * target_ms / 1000))
        self.capacity = max(self.target * 4, int(rate * (max_ms or MIN_MAX_MS) / 1000))
        self._max_target = self.capacity // 2
        self._target_step = int(rate * TARGET_STEP_MS / 1000)
        self._ring = np.zeros(self.capacity, dtype=np.int16)
        self._start = 0
        self._size = 0
        self._lock = threading.Lock()
        self._fade_in = np.linspace(0.0, 1.0, rate * FADE_MS // 1000, dtype=np.float32)
        self.state = BufferState.IDLE
        self._last_write = 0.0
        self._dry_since = 0.0
        self._draining = False  # after clear(): running dry ends the utterance, no underrun
        self.underruns = 0
        self.overruns = 0  # in 10 ms frames dropped
        self.trims = 0  # 10 ms blocks skipped to bring a standing excess back to the target
        self.max_size = 0
        # Samples ever written, and ever taken out (played, trimmed, dropped or cleared): the
        # stream position of what is queued, to tell when a sample written now will play.
        self.written_total = 0
        self.consumed_total = 0
        self._slack = int(rate * TRIM_SLACK_MS / 1000)
        self._window_end: float | None = None
        self._window_min = 0
        self._trim_pending = 0
        self._trim_deadline = 0.0

    @property
    def size(self) -> int:
        return self._size

    def ms(self, samples: int) -> float:
        return samples * 1000.0 / self.rate

    def write(self, samples: np.ndarray, now: float) -> None:
        with self._lock:
            if self.state is BufferState.DRY and now - self._dry_since <= UNDERRUN_WINDOW_S:
                self.underruns += 1
                self.target = min(self._max_target, self.target + self._target_step)
            if self.state in (BufferState.IDLE, BufferState.DRY):
                self.state = BufferState.BUFFERING
            self._last_write = now
            self._draining = False
            self._push(samples)

    def _push(self, samples: np.ndarray) -> None:
        n = samples.size
        self.written_total += n
        if n >= self.capacity:
            self.consumed_total += n - self.capacity
            samples, n = samples[-self.capacity :], self.capacity
        overflow = self._size + n - self.capacity
        if overflow > 0:  # drop the oldest: latency stays bounded
            self._start = (self._start + overflow) % self.capacity
            self._size -= overflow
            self.consumed_total += overflow
            self.overruns += max(1, round(overflow / (self.rate * FRAME_MS / 1000)))
        end = (self._start + self._size) % self.capacity
        first = min(n, self.capacity - end)
        self._ring[end : end + first] = samples[:first]
        self._ring[: n - first] = samples[first:]
        self._size += n
        if self._size > self.max_size:
            self.max_size = self._size

    def read_into(self, out: np.ndarray, now: float) -> None:
        """Fill `out` (the callback's block) with audio or silence; never waits for the writer."""
        n = out.size
        with self._lock:
            if self.state is BufferState.BUFFERING:
                writer_quiet = now - self._last_write > self.ms(self.target) / 1000
                if self._size >= self.target or (self._size > 0 and writer_quiet):
                    self.state = BufferState.PLAYING
                    fade_in = True
                else:
                    out.fill(0)
                    return
            else:
                fade_in = False
            if self.state is not BufferState.PLAYING:
                out.fill(0)
                return
            if self._trim_block(n, now):
                fade_in = True
            take = min(n, self._size)
            first = min(take, self.capacity - self._start)
            out[:first] = self._ring[self._start : self._start + first]
            out[first:take] = self._ring[: take - first]
            out[take:] = 0
            self._start = (self._start + take) % self.capacity
            self._size -= take
            self.consumed_total += take
            ran_dry = self._size == 0
            if ran_dry:
                self.state = BufferState.IDLE if self._draining else BufferState.DRY
                self._draining = False
                self._dry_since = now
                self._window_end = None
                self._trim_pending = 0
            else:
                self._watch_depth(now)
        if fade_in:
            ramp = self._fade_in[: min(self._fade_in.size, take)]
            out[: ramp.size] = (out[: ramp.size] * ramp).astype(np.int16)
        if ran_dry and take:
            fade = min(self._fade_in.size, take)
            out[take - fade : take] = (out[take - fade : take] * self._fade_in[:fade][::-1]).astype(np.int16)

    def _watch_depth(self, now: float) -> None:
        """Track the lowest depth over each window; a standing excess becomes blocks to trim."""
        if self._window_end is None:
            self._window_end, self._window_min = now + TRIM_WINDOW_S, self._size
            return
        self._window_min = min(self._window_min, self._size)
        if now < self._window_end:
            return
        if self._trim_pending == 0 and self._window_min > self.target + self._slack:
            self._trim_pending = self._window_min - self.target
            self._trim_deadline = now + TRIM_DEADLINE_S
        self._window_end, self._window_min = now + TRIM_WINDOW_S, self._size

    def _trim_block(self, n: int, now: float) -> bool:
        """Skip the next `n` samples if a trim is due and they are quiet (or time is up).

        True when a loud block was skipped (the caller fades in over the seam).
        """
        if self._trim_pending < n or self._size < n + self.target:
            return False
        head = self._peek(n).astype(np.float64)
        quiet = float(np.dot(head, head)) / n <= QUIET_MEAN_SQUARE
        if not quiet and now < self._trim_deadline:
            return False
        self._start = (self._start + n) % self.capacity
        self._size -= n
        self.consumed_total += n
        self._trim_pending -= n
        self.trims += 1
        if self._trim_pending < n:
            self._trim_pending = 0
            self._window_end = None  # measure afresh from here
        return not quiet

    def _peek(self, n: int) -> np.ndarray:
        first = min(n, self.capacity - self._start)
        if first == n:
            return self._ring[self._start : self._start + n]
        return np.concatenate((self._ring[self._start :], self._ring[: n - first]))

    def clear(self) -> None:
        """Barge-in: keep only the next 10 ms, which the callback fades out."""
        with self._lock:
            keep = min(self._size, self.rate * FRAME_MS // 1000) if self.state is BufferState.PLAYING else 0
            self.consumed_total += self._size - keep
            self._size = keep
            self._draining = keep > 0
            if keep == 0:
                self.state = BufferState.IDLE
