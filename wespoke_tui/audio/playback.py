"""Speaker playback: the jitter buffer (`jitter.py`) in front of one sounddevice OutputStream.

The callback fills each device block from the jitter buffer, and everything it outputs (after
fades) is queued for the APM as the far end, one `FRAME_MS` block at a time; the capture
callback hands them to the APM (processing.py says why there).

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
thread (opening a device is slow); the jitter buffer keeps filling meanwhile. The APM's delay
needs no help: it is measured from every callback's timestamps, so it follows the new latency.
"""

from __future__ import annotations

import asyncio
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
from wespoke_tui.audio.jitter import QUIET_PEAK, BufferState, JitterBuffer
from wespoke_tui.audio.played import PlayedTap
from wespoke_tui.audio.processing import VoiceProcessor
from wespoke_tui.errors import SPEAKER_ERROR, CallError

log = logging.getLogger(__name__)

MAX_OUTPUT_LATENCY_S = 0.16  # past this, the delay hurts a conversation more than the gaps do
LATENCY_STEP_S = 0.02
LATENCY_RAISE_DEADLINE_S = 2.0
CALLBACK_LATE_S = 3 * FRAME_MS / 1000  # the callback comes every FRAME_MS
UNDERFLOW_RECUR_S = 60.0


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
