"""Microphone capture: a sounddevice InputStream → 48 kHz mono int16 10 ms frames on the asyncio loop.

The PortAudio callback only copies its block into a bounded deque and, when the consumer is
waiting, wakes it with `loop.call_soon_threadsafe`. It never awaits, never touches asyncio
objects directly (not thread-safe), and drops the OLDEST block when the loop falls behind,
counting it. Resampling (when the device does not run at 48 kHz) and the APM run on the loop.

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

QUEUE_BLOCKS = 20  # 200 ms of audio between the callback and the loop; more is latency
STALL_S = 0.5  # no callback for this long while running: the device is gone
STARTUP_GRACE_S = 3.0  # time allowed for the first callback after start()


class SoundDeviceCapture:
    """`AudioInput` on a sounddevice input stream."""

    def __init__(
        self,
        device: str | int | None,
        processor: VoiceProcessor | None,
        *,
        queue_blocks: int = QUEUE_BLOCKS,
        stall_s: float = STALL_S,
        startup_grace_s: float = STARTUP_GRACE_S,
        rate: int | None = None,
    ) -> None:
        self._device_spec = device
        self._processor = processor
        self._queue_blocks = queue_blocks
        self._stall_s = stall_s
        self._startup_grace_s = startup_grace_s
        self._blocks: collections.deque[tuple[np.ndarray, float]] = collections.deque()
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
        self.device_index: int | None = None
        self.device_name = ""
        self._forced_rate = rate  # None: 48 kHz if the device takes it, else its default rate
        self.rate = SAMPLE_RATE
        self.input_latency_s = 0.0
        self.callbacks = 0
        self.device_overflows = 0  # PortAudio's own: input lost before our callback ran
        self.dropped_frames = 0
        self.max_queue_depth = 0

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
                self._stream = sd.InputStream(
                    device=self.device_index,
                    samplerate=self.rate,
                    channels=1,
                    dtype="int16",
                    blocksize=self.rate * FRAME_MS // 1000,
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
        if self.rate != SAMPLE_RATE:
            from livekit import rtc

            self._resampler = rtc.AudioResampler(self.rate, SAMPLE_RATE, num_channels=1)
        log.info("capture on [%s] %s at %d Hz", self.device_index, self.device_name, self.rate)

    async def frames(self) -> AsyncIterator[np.ndarray]:
        pending = np.zeros(0, dtype=np.int16)
        while not self._closed:
            block = await self._next_block()
            if block is None:
                return
            samples, adc_time = block
            pending = np.concatenate((pending, self._resample(samples)))
            while pending.size >= FRAME_SAMPLES:
                frame, pending = pending[:FRAME_SAMPLES], pending[FRAME_SAMPLES:]
                if self._processor is not None:
                    frame = self._processor.process_capture(frame, SAMPLE_RATE, time.monotonic() - adc_time)
                yield frame

    async def aclose(self) -> None:
        self._closed = True
        self._close_stream()
        self._wakeup.set()

    # ---- health -----------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._blocks)

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
        block = (indata[:, 0].copy(), now - latency)
        with self._lock:
            if len(self._blocks) >= self._queue_blocks:
                self._blocks.popleft()  # the loop fell behind: lose the oldest audio, keep the newest
                self.dropped_frames += 1
            self._blocks.append(block)
            depth = len(self._blocks)
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

    async def _next_block(self) -> tuple[np.ndarray, float] | None:
        while True:
            with self._lock:
                if self._blocks:
                    return self._blocks.popleft()
                self._waiting = True
                self._wakeup.clear()
            if self._closed:
                return None
            self._check_alive()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._stall_s / 2)
            except asyncio.TimeoutError:
                pass

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
        if self._resampler is None:
            return samples
        from livekit import rtc

        out = self._resampler.push(rtc.AudioFrame(samples.tobytes(), self.rate, 1, samples.size))
        if not out:
            return np.zeros(0, dtype=np.int16)
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
