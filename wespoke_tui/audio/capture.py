"""Microphone capture: a sounddevice InputStream → 48 kHz mono int16 20 ms frames on the asyncio loop.

The device runs in 20 ms blocks, the frame the room is sent: a 10 ms block would only wait
for the next one, so 10 ms blocks would add wake-ups, not speed. The PortAudio callback
resamples its block when the device is not at 48 kHz, runs the APM on it 10 ms at a time (the
APM's unit; one FFI call each that computes and returns: it never waits on the loop), after the
far end the playback callback queued, and assembles one processed 20 ms frame. Only then does
it touch the loop side: the frame goes into a bounded deque and, when the consumer is waiting,
`loop.call_soon_threadsafe` wakes it. So the callback and the loop each wake 50 times a second
for the microphone, and each loop wake-up carries one `AudioSource.capture_frame` of 20 ms (the
Opus packet size WebRTC sends anyway). The callback never awaits, never touches asyncio
objects directly (not thread-safe), and drops the OLDEST frame when the loop falls behind,
counting it in 10 ms frames.

A device that dies may just stop calling back (livekit/agents #6075): `frames()` watches the
callback cadence and raises `CallError(MICROPHONE_ERROR)` when the callbacks stop or the stream
finishes on its own.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from wespoke_tui.audio.base import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.clock import DeviceClock
from wespoke_tui.audio.devices import (
    AudioUnavailable,
    native_stderr_to_log,
    pick_rate,
    resolve_device,
    sounddevice,
)
from wespoke_tui.audio.processing import VoiceProcessor
from wespoke_tui.errors import MICROPHONE_ERROR, CallError

log = logging.getLogger(__name__)

CAPTURE_FRAME_MS = 20
CAPTURE_FRAME_SAMPLES = SAMPLE_RATE * CAPTURE_FRAME_MS // 1000
QUEUE_FRAMES = 10  # 200 ms of audio between the callback and the loop; more is latency
# After a stall the consumer catches up only as fast as the room takes audio (real time), so a
# backlog would stay as latency for the rest of the call: frames that stayed queued after every
# read for a whole BACKLOG_WINDOW_S are shed, the oldest first.
BACKLOG_WINDOW_S = 1.0
STALL_S = 0.5  # no callback for this long while running: the device is gone
STARTUP_GRACE_S = 3.0  # time allowed for the first callback after start()


class SoundDeviceCapture:
    """`AudioInput` on a sounddevice input stream."""

    def __init__(
        self,
        device: str | int | None,
        processor: VoiceProcessor | None,
        *,
        queue_frames: int = QUEUE_FRAMES,
        stall_s: float = STALL_S,
        startup_grace_s: float = STARTUP_GRACE_S,
        rate: int | None = None,
    ) -> None:
        self._device_spec = device
        self._processor = processor
        self._queue_frames = queue_frames
        self._stall_s = stall_s
        self._startup_grace_s = startup_grace_s
        # Each frame with when its first sample entered the microphone (monotonic seconds).
        self._frames: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self._frame_at = 0.0
        self.last_captured_at: float | None = None  # of the frame `frames()` gave last
        # When the newest 10 ms block with any non-zero sample from the device (before the APM)
        # entered the microphone: a device without permission (macOS, Windows) gives exact zeros.
        self._raw_sound_at: float | None = None
        self._assembly = np.zeros(CAPTURE_FRAME_SAMPLES, dtype=np.int16)
        self._filled = 0
        self._carry = np.zeros(0, dtype=np.int16)  # resampled samples short of a 10 ms block
        self._callback_failed = False
        self._lock = threading.Lock()
        self._wakeup = asyncio.Event()
        self._waiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None
        self._finished = False
        self._closed = False
        self._started_at = 0.0
        self._last_callback = 0.0
        self._resampler: Any = None
        self._rtc: Any = None
        self._clock: DeviceClock | None = None
        self.device_index: int | None = None
        self.device_name = ""
        self._forced_rate = rate  # None: 48 kHz if the device takes it, else its default rate
        self.rate = SAMPLE_RATE
        self.input_latency_s = 0.0
        self.callbacks = 0
        self.device_overflows = 0  # PortAudio's own: input lost before our callback ran
        self.dropped_frames = 0  # in 10 ms frames
        self.trimmed_frames = 0  # in 10 ms frames: shed from a standing backlog
        self._window_end = 0.0
        self._window_min = 0
        self.max_queue_depth = 0  # in 20 ms frames

    # ---- AudioInput -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            sd = sounddevice()
        except AudioUnavailable as exc:
            raise CallError.of(MICROPHONE_ERROR, str(exc)) from None
        self.device_index = resolve_device(self._device_spec, "input")
        try:
            with native_stderr_to_log():
                info = sd.query_devices(self.device_index)
                self.device_name = str(info["name"])
                self.rate = self._forced_rate or pick_rate(sd, self.device_index, "input")
                if self.rate != SAMPLE_RATE:  # before the stream starts: its first callback needs it
                    from livekit import rtc

                    self._rtc = rtc
                    self._resampler = rtc.AudioResampler(self.rate, SAMPLE_RATE, num_channels=1)
                self._clock = DeviceClock(self.rate)
                self._stream = sd.InputStream(
                    device=self.device_index,
                    samplerate=self.rate,
                    channels=1,
                    dtype="int16",
                    blocksize=self.rate * CAPTURE_FRAME_MS // 1000,
                    latency="low",
                    callback=self._callback,
                    finished_callback=self._on_finished,
                )
                self._started_at = time.monotonic()
                self._stream.start()
        except Exception as exc:  # PortAudioError, ValueError: the device cannot be opened
            self._close_stream()
            raise CallError.of(
                MICROPHONE_ERROR, f"cannot open input device [{self.device_index}] {self.device_name}: {exc}"
            ) from None
        log.info("capture on [%s] %s at %d Hz", self.device_index, self.device_name, self.rate)

    async def frames(self) -> AsyncIterator[np.ndarray]:
        """20 ms frames (CAPTURE_FRAME_SAMPLES), already through the APM."""
        while not self._closed:
            frame = await self._next_frame()
            if frame is None:
                return
            yield frame

    async def aclose(self) -> None:
        self._closed = True
        self._close_stream()
        self._wakeup.set()

    # ---- health -----------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._frames)

    # ---- the PortAudio thread ---------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic()
        self._last_callback = now
        self.callbacks += 1
        if status.input_overflow:
            self.device_overflows += 1
        try:
            latency = max(0.0, float(time_info.currentTime - time_info.inputBufferAdcTime))
        except Exception:  # some host APIs give no timestamps
            latency = 0.0
        self.input_latency_s = latency
        clock = self._clock
        captured_at = (now - latency if clock is None
                       else clock.first_sample_at(now, frames, latency, overflow=bool(status.input_overflow)))
        try:
            self._take(self._resample(indata[:, 0]), latency, captured_at)
        except Exception:  # an exception would stop the stream: log once, keep the call
            if not self._callback_failed:
                self._callback_failed = True
                log.warning("capture processing failed", exc_info=True)

    def _take(self, samples: np.ndarray, latency: float, captured_at: float) -> None:
        """Process 10 ms blocks through the APM into the 20 ms frame being assembled.

        `captured_at`: when the first of the new samples entered the microphone."""
        first_at = captured_at - self._carry.size / SAMPLE_RATE
        first_waited = latency + (captured_at - first_at)  # since the first sample entered the microphone
        if self._carry.size:
            samples = np.concatenate((self._carry, samples))
        usable = samples.size - samples.size % FRAME_SAMPLES
        self._carry = samples[usable:].copy() if usable < samples.size else samples[:0]
        for start in range(0, usable, FRAME_SAMPLES):
            block = samples[start : start + FRAME_SAMPLES]
            if block.any():
                self._raw_sound_at = first_at + start / SAMPLE_RATE
            if self._processor is not None:
                block = self._processor.process_capture(block, SAMPLE_RATE, first_waited - start / SAMPLE_RATE)
            if self._filled == 0:
                self._frame_at = first_at + start / SAMPLE_RATE
            self._assembly[self._filled : self._filled + FRAME_SAMPLES] = block
            self._filled += FRAME_SAMPLES
            if self._filled == CAPTURE_FRAME_SAMPLES:
                self._filled = 0
                self._deliver(self._assembly.copy(), self._frame_at)

    @property
    def last_frame_digital_silence(self) -> bool:
        """Whether the device gave exact zeros, before any processing, for the frame `frames()`
        gave last (and everything since): no sound at all, not a quiet room."""
        at = self.last_captured_at
        return at is not None and (self._raw_sound_at is None or self._raw_sound_at < at)

    def _deliver(self, frame: np.ndarray, captured_at: float) -> None:
        with self._lock:
            if len(self._frames) >= self._queue_frames:
                self._frames.popleft()  # the loop fell behind: lose the oldest audio, keep the newest
                self.dropped_frames += CAPTURE_FRAME_MS // FRAME_MS
            self._frames.append((frame, captured_at))
            depth = len(self._frames)
            wake = self._waiting
            self._waiting = False
        if depth > self.max_queue_depth:
            self.max_queue_depth = depth
        if wake and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def _on_finished(self) -> None:
        self._finished = True
        if self._loop is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    # ---- the loop side ----------------------------------------------------------------------

    async def _next_frame(self) -> np.ndarray | None:
        while True:
            with self._lock:
                if self._frames:
                    self._shed_standing_backlog()
                    frame, self.last_captured_at = self._frames.popleft()
                    return frame
                self._waiting = True
                self._wakeup.clear()
            if self._closed:
                return None
            self._check_alive()
            try:
                # asyncio.timeout, not wait_for: wait_for makes a task for every wait, 50 a second.
                async with asyncio.timeout(self._stall_s / 2):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _shed_standing_backlog(self) -> None:
        """Called under the lock at each read: the lowest depth left behind over a window is
        standing latency, and that many of the oldest frames go."""
        depth = len(self._frames) - 1  # what stays queued after this read
        now = time.monotonic()
        # This read's depth counts too: the window's lowest must never be more than what is queued
        # now (a window whose lowest was 3 ended on a read of the only frame, and shedding 3
        # emptied the queue under that read and stopped the microphone).
        self._window_min = min(self._window_min, depth)
        if now < self._window_end:
            return
        if self._window_end and self._window_min > 0:
            for _ in range(self._window_min):
                self._frames.popleft()
                self.trimmed_frames += CAPTURE_FRAME_MS // FRAME_MS
        self._window_end, self._window_min = now + BACKLOG_WINDOW_S, len(self._frames) - 1

    def _check_alive(self) -> None:
        now = time.monotonic()
        if self._stream is None:
            raise CallError.of(MICROPHONE_ERROR, "input stream is not open")
        if self._finished or not self._stream.active:
            raise CallError.of(MICROPHONE_ERROR, f"input device {self.device_name!r} stopped")
        if self.callbacks == 0:
            if now - self._started_at > self._startup_grace_s:
                raise CallError.of(
                    MICROPHONE_ERROR, f"input device {self.device_name!r} sent nothing in {self._startup_grace_s:.1f} s"
                )
        elif now - self._last_callback > self._stall_s:
            raise CallError.of(
                MICROPHONE_ERROR,
                f"input device {self.device_name!r} stopped calling back ({now - self._last_callback:.2f} s)",
            )

    def _resample(self, samples: np.ndarray) -> np.ndarray:
        resampler = self._resampler
        if resampler is None:
            return samples
        out = resampler.push(self._rtc.AudioFrame(samples.tobytes(), self.rate, 1, samples.size))
        if not out:
            return samples[:0]
        return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in out])

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()
            stream.close()
        except Exception:
            log.debug("closing the input stream failed", exc_info=True)
