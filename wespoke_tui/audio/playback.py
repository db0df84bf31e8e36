"""Speaker playback: a jitter buffer in front of one sounddevice OutputStream.

The jitter buffer holds device-rate samples. Its life, per utterance:
- IDLE: nothing to play; the callback outputs silence.
- BUFFERING: audio arrived; the callback keeps outputting silence until the buffer holds the
  target depth (`jitter_buffer_ms`) or the writer has gone quiet (a short last utterance), then
  starts with a short fade-in. This prebuffer is what stops the crackle at utterance starts.
- PLAYING: the callback pulls 10 ms per call. When it takes the last samples it fades them out
  (no click) and the buffer goes DRY.
- DRY: if audio arrives within `UNDERRUN_WINDOW_S` of running dry, the writer was still
  talking and we starved: that is one **underrun**. Otherwise the utterance simply ended (the
  silence between utterances is not an underrun). Either way the next audio prebuffers again.
A write that would overflow the bound (`max_ms`) drops the oldest samples: an **overrun**.

WebRTC's NetEQ (inside the SDK's `AudioStream`) already absorbs the network's jitter, so this
buffer only has to cover the phase between the stream's 20 ms frames and the device's 10 ms
callbacks, plus the event loop's scheduling: its target starts small. Each underrun is proof
that this machine needs more, so it raises the target by `TARGET_STEP_MS` (up to half the bound)
for the rest of the call, as NetEQ does with its own.

An assistant's track streams without pause (silence included), so the buffer may never run
dry, and a burst of late frames would then stay queued as latency for the rest of the call.
So the buffer watches its lowest depth over each `TRIM_WINDOW_S` while PLAYING: what stays
above the target by more than `TRIM_SLACK_MS` the whole window is standing latency, not
jitter, and is trimmed by skipping 10 ms blocks, quiet ones by preference (inaudible), a
loud one with a fade-in only if no quiet one came within `TRIM_DEADLINE_S`. Each is a **trim**.

Everything the callback outputs (after fades) is queued for the APM as the far end, in 10 ms
blocks; the capture callback hands them to the APM (processing.py says why there).

The device side has its own buffer, set by the stream's latency (PortAudio's "low" to start).
On a busy machine the callback thread can be scheduled too late for it: PortAudio flags an
**output underflow** (counted as `device_underflows`), and the speaker has a gap. Two within
`UNDERFLOW_RECUR_S` are proof that this machine needs a deeper device buffer, so the stream is
reopened with `LATENCY_STEP_S` more latency (up to `MAX_OUTPUT_LATENCY_S`). A step, not a
doubling: whatever the device's latency grows by adds to the round trip for the rest of the call. An
underflow with no other in the `UNDERFLOW_RECUR_S` before it is forgiven (counted, no raise):
one late callback is a one-off (a process starting, the room connecting), and raising the
latency for it would cost the rest of the call. What doubling and raising on one-offs did on the
rig: see BENCHMARKS.md, "Figures that were in module docstrings". A reopen loses what the old
stream still held, so it waits for a quiet moment: nothing loud handed to the device for longer
than its latency by a callback that is running (one held up hands nothing, loud or quiet), or,
failing that within `LATENCY_RAISE_DEADLINE_S`, does it anyway. The reopen runs on a worker
thread (opening a device can take tens of milliseconds); the jitter buffer keeps filling
meanwhile. The APM's delay needs no help: it is measured from every callback's timestamps, so
it follows the new latency.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from typing import Any

import numpy as np

from wespoke_tui.audio.base import FRAME_MS, SAMPLE_RATE
from wespoke_tui.audio.devices import (
    AudioUnavailable,
    native_stderr_to_log,
    pick_rate,
    resolve_device,
    sounddevice,
)
from wespoke_tui.audio.played import PlayedTap
from wespoke_tui.audio.processing import VoiceProcessor
from wespoke_tui.errors import SPEAKER_ERROR, CallError

log = logging.getLogger(__name__)

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
MAX_OUTPUT_LATENCY_S = 0.16  # past this, the delay hurts a conversation more than the gaps do
LATENCY_STEP_S = 0.02
LATENCY_RAISE_DEADLINE_S = 2.0
CALLBACK_LATE_S = 3 * FRAME_MS / 1000  # the callback comes every FRAME_MS
UNDERFLOW_RECUR_S = 60.0


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


class SoundDevicePlayback:
    """`AudioOutput` on a sounddevice output stream."""

    def __init__(
        self,
        device: str | int | None,
        processor: VoiceProcessor | None,
        *,
        jitter_buffer_ms: float = 60,
        rate: int | None = None,
    ) -> None:
        self._device_spec = device
        self._processor = processor
        self._target_ms = jitter_buffer_ms
        self._stream: Any = None
        self._stream_lock = threading.Lock()  # the loop closes, a worker thread reopens
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resampler: Any = None
        self.buffer: JitterBuffer | None = None
        self.device_index: int | None = None
        self.device_name = ""
        self._forced_rate = rate  # None: 48 kHz if the device takes it, else its default rate
        self.rate = SAMPLE_RATE
        self.output_latency_s = 0.0  # measured: until what the callback writes now reaches the DAC
        # (when the end of the last block reaches the speaker, the stream position there)
        self._block_end: tuple[float, int] | None = None
        self.latency_s = 0.0  # the stream's latency, as PortAudio reports it when opening
        self.callbacks = 0
        self.device_underflows = 0  # PortAudio's own: the callback came too late for the device
        self.raised_at: list[float] = []  # time.monotonic() of each reopen with more latency
        self._latency_asked = 0.0
        self.forgiven_underflows = 0
        self._underflows_to_handle = 0  # the callback's count, without the forgiven ones
        self._underflows_handled = 0  # the loop's
        self._last_underflow_at: float | None = None
        self._raise_due: float | None = None
        self._reopening: asyncio.Future[None] | None = None
        self._loud_at = 0.0  # when the callback last handed the device something above QUIET_DBFS
        self._called_at = 0.0  # when the callback last ran
        self.tap: PlayedTap | None = None  # what the speaker played, when heard (for a recording)

    @property
    def latency_raises(self) -> int:
        return len(self.raised_at)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            sd = sounddevice()
        except AudioUnavailable as exc:
            raise CallError.of(SPEAKER_ERROR, str(exc)) from None
        self.device_index = resolve_device(self._device_spec, "output")
        try:
            with native_stderr_to_log():
                info = sd.query_devices(self.device_index)
                self.device_name = str(info["name"])
                self.rate = self._forced_rate or pick_rate(sd, self.device_index, "output")
                self.buffer = JitterBuffer(self.rate, self._target_ms)
                self._stream = self._open_stream(sd, "low")
                self._stream.start()
                self._latency_asked = self.latency_s
        except Exception as exc:
            self._close_stream()
            raise CallError.of(
                SPEAKER_ERROR, f"cannot open output device [{self.device_index}] {self.device_name}: {exc}"
            ) from None
        if self.rate != SAMPLE_RATE:
            from livekit import rtc

            self._resampler = rtc.AudioResampler(SAMPLE_RATE, self.rate, num_channels=1)
        log.info("playback on [%s] %s at %d Hz, jitter buffer %d ms", self.device_index, self.device_name, self.rate, self._target_ms)

    def write(self, frame: np.ndarray) -> None:
        if self.buffer is None:
            return
        samples = np.asarray(frame, dtype=np.int16)
        if self._resampler is not None:
            from livekit import rtc

            out = self._resampler.push(rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, samples.size))
            if not out:
                return
            samples = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in out])
        now = time.monotonic()
        self.buffer.write(samples, now)
        self._raise_latency_when_due(now)

    def clear(self) -> None:
        if self.buffer is not None:
            self.buffer.clear()

    def delay_s(self) -> float:
        """From now until a frame written now is heard.

        While playing: from the last callback, which knows when the end of its block reaches the
        speaker and how far into the stream that is, so the next sample written plays the
        queued rest later. Before that: the prebuffer a new utterance waits for, plus the
        device's output latency."""
        buffer = self.buffer
        if buffer is None:
            return 0.0
        block_end = self._block_end
        if buffer.state is BufferState.PLAYING and block_end is not None:
            heard_at, position = block_end
            return max(0.0, heard_at + (buffer.written_total - position) / buffer.rate - time.monotonic())
        return max(buffer.size, buffer.target) / buffer.rate + self.output_latency_s

    async def aclose(self) -> None:
        if self._reopening is not None:
            await asyncio.wait([self._reopening])
        self._close_stream()
        await asyncio.sleep(0)

    # ---- the device's latency ---------------------------------------------------------------

    def _open_stream(self, sd: Any, latency: str | float) -> Any:
        block = self.rate * FRAME_MS // 1000
        if self.tap is None:
            self.tap = PlayedTap(self.rate, block)
        else:
            self.tap.restart()
        stream = sd.OutputStream(
            device=self.device_index,
            samplerate=self.rate,
            channels=1,
            dtype="int16",
            blocksize=block,
            latency=latency,
            callback=self._callback,
        )
        self.latency_s = float(stream.latency)
        return stream

    def _raise_latency_when_due(self, now: float) -> None:
        """On the loop, after each write: start a reopen once an underflow calls for one."""
        pending = self._underflows_to_handle
        if pending == self._underflows_handled or self._reopening is not None:
            return
        if self._latency_asked >= MAX_OUTPUT_LATENCY_S:
            self._underflows_handled = pending
            return
        if self._raise_due is None:
            self._raise_due = now + LATENCY_RAISE_DEADLINE_S
        callback_runs = now - self._called_at < CALLBACK_LATE_S
        device_holds_quiet = callback_runs and now - self._loud_at > self.output_latency_s + FRAME_MS / 1000
        if not device_holds_quiet and now < self._raise_due:
            return
        self._underflows_handled = pending
        self._raise_due = None
        self._latency_asked = min(MAX_OUTPUT_LATENCY_S, self._latency_asked + LATENCY_STEP_S)
        assert self._loop is not None
        self._reopening = self._loop.run_in_executor(None, self._reopen, self._latency_asked)
        self._reopening.add_done_callback(self._reopened)

    def _reopen(self, latency: float) -> None:
        """On a worker thread: replace the stream by one of `latency` s, or of the old latency
        if the device refuses that."""
        previous = self.latency_s
        with self._stream_lock:
            if self._stream is None:  # closed meanwhile
                return
            aborted_at = time.monotonic()
            self._abort(self._stream)
            self._stream = self._start_stream(latency)
            if self._stream is not None:
                self.raised_at.append(aborted_at)
                log.info("output device %r underflowed: latency %.0f → %.0f ms", self.device_name, previous * 1000, self.latency_s * 1000)
            else:
                self._stream = self._start_stream(previous)

    def _start_stream(self, latency: float) -> Any:
        try:
            with native_stderr_to_log():
                stream = self._open_stream(sounddevice(), latency)
                stream.start()
        except Exception as exc:
            log.warning("cannot reopen output device %r with %.0f ms latency: %s", self.device_name, latency * 1000, exc)
            return None
        return stream

    def _reopened(self, future: asyncio.Future[None]) -> None:
        self._reopening = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("reopening the output device failed", exc_info=future.exception())

    # ---- the PortAudio thread ---------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic()
        self._called_at = now
        self.callbacks += 1
        underflow = bool(status.output_underflow)
        if underflow:
            self.device_underflows += 1
            if self._last_underflow_at is None or now - self._last_underflow_at > UNDERFLOW_RECUR_S:
                self.forgiven_underflows += 1
            else:
                self._underflows_to_handle += 1
            self._last_underflow_at = now
        block = outdata[:, 0]
        assert self.buffer is not None
        self.buffer.read_into(block, now)
        if block.max() > QUIET_PEAK or block.min() < -QUIET_PEAK:
            self._loud_at = now
        try:
            self.output_latency_s = max(0.0, float(time_info.outputBufferDacTime - time_info.currentTime))
        except Exception:
            self.output_latency_s = 0.0
        self._block_end = (now + self.output_latency_s + frames / self.rate, self.buffer.consumed_total)
        if self.tap is not None:
            self.tap.played(now, block, self.output_latency_s, underflow=underflow)
        if self._processor is not None:
            self._processor.set_output_delay(self.output_latency_s)
            step = self.rate * FRAME_MS // 1000
            for start in range(0, frames - step + 1, step):
                self._processor.queue_reverse(block[start : start + step], self.rate, now)

    def _close_stream(self) -> None:
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            self._abort(stream)

    @staticmethod
    def _abort(stream: Any) -> None:
        try:
            stream.abort()
            stream.close()
        except Exception:
            log.debug("closing the output stream failed", exc_info=True)
