"""WAV files as a call's microphone and speaker, in real time (headless runs and tests).

The input plays a WAV file into the call as 10 ms frames paced by the event loop's clock
(scheduled against the start time, so it never drifts), then silence until closed. The output
behaves like a sound card with a short buffer: frames are laid down at the moment they arrive,
a gap longer than the buffer becomes silence, so the written file is time-aligned with the call
and a test can measure *when* things were heard; `clear()` drops what was queued ahead of now.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wespoke_tui.audio.base import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.errors import MICROPHONE_ERROR, SPEAKER_ERROR, CallError

if TYPE_CHECKING:
    import numpy.typing as npt

FRAME_S = FRAME_MS / 1000
# How far the output may fall behind real time before the gap is filled with silence: the
# jitter a real device's buffer would absorb.
OUTPUT_SLACK_SAMPLES = 3 * FRAME_SAMPLES


def read_wav_48k_mono(path: Path) -> np.ndarray:
    """Any PCM WAV (8/16/24/32-bit, any rate, any channels) as 48 kHz mono int16."""
    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        rate = wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (bytes3[:, 0].astype(np.int32) | (bytes3[:, 1].astype(np.int32) << 8) | (bytes3[:, 2].astype(np.int32) << 16))
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float64) / float(1 << 23)
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:
        raise ValueError(f"unsupported sample width {width}")
    mono: npt.NDArray[np.float64] = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
    if rate != SAMPLE_RATE and mono.size:
        duration = mono.size / rate
        target = np.arange(round(duration * SAMPLE_RATE)) / SAMPLE_RATE
        mono = np.interp(target, np.arange(mono.size) / rate, mono)
    return np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)


def write_wav_48k_mono(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())


class WavInput:
    """A WAV file (or nothing: silence) as the microphone, in real time."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._samples = np.zeros(0, dtype=np.int16)
        self._closed = asyncio.Event()
        self.frames_sent = 0
        self.started_at: float | None = None  # loop time of the first frame
        # When the last frame's audio began, on the file's own clock (the loop's, which is
        # time.monotonic): a late wake-up of the loop delays the frame, not the sound in it, so
        # what is timed against the microphone (the recording, response times) keeps the file's
        # own spacing, as it keeps a real device's ADC times.
        self.last_captured_at: float | None = None

    async def start(self) -> None:
        if self._path is None:
            return
        try:
            self._samples = await asyncio.to_thread(read_wav_48k_mono, self._path)
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            raise CallError.of(MICROPHONE_ERROR, f"cannot read input WAV: {type(exc).__name__}: {exc}") from None

    async def frames(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.started_at = start
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        index = 0
        while not self._closed.is_set():
            delay = start + index * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._closed.is_set():
                return
            begin = index * FRAME_SAMPLES
            chunk = self._samples[begin : begin + FRAME_SAMPLES]
            if chunk.size < FRAME_SAMPLES:
                chunk = np.concatenate((chunk, silence[: FRAME_SAMPLES - chunk.size])) if chunk.size else silence
            self.last_captured_at = start + (index - 1) * FRAME_S
            index += 1
            self.frames_sent = index
            yield chunk

    async def aclose(self) -> None:
        self._closed.set()


class WavOutput:
    """The speaker as a time-aligned 48 kHz mono WAV file (or nowhere, when no path)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._chunks: list[np.ndarray] = []
        self._cursor = 0  # samples laid down so far, from start()
        self._start: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.frames_written = 0
        self.gaps_filled = 0
        self.frames_cleared = 0

    async def start(self) -> None:
        if self._path is not None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with open(self._path, "ab"):
                    pass
            except OSError as exc:
                raise CallError.of(SPEAKER_ERROR, f"cannot write output WAV: {exc}") from None
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    def _now_samples(self) -> int:
        assert self._loop is not None and self._start is not None
        return int((self._loop.time() - self._start) * SAMPLE_RATE)

    def write(self, frame: np.ndarray) -> None:
        if self._start is None:
            return
        now = self._now_samples()
        if now - self._cursor > OUTPUT_SLACK_SAMPLES:
            # The player ran dry: real time went on, so does the file.
            self._chunks.append(np.zeros(now - self._cursor, dtype=np.int16))
            self._cursor = now
            self.gaps_filled += 1
        self._chunks.append(np.asarray(frame, dtype=np.int16).copy())
        self._cursor += frame.size
        self.frames_written += frame.size // FRAME_SAMPLES

    def clear(self) -> None:
        """Drop what was queued beyond now, as a player flushing its buffer would."""
        if self._start is None:
            return
        now = self._now_samples()
        excess = self._cursor - now
        if excess <= 0:
            return
        data = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        self._chunks = [data[: data.size - excess]]
        self._cursor -= excess
        self.frames_cleared += excess // FRAME_SAMPLES

    def delay_s(self) -> float:
        """From now until a frame written now is heard, as a sound card's output says it: the
        file lays the frame after what is queued (a burst after a late wake-up of the loop runs
        ahead of now), or at now after a gap longer than the slack, or up to the slack behind now
        (then the figure is that small negative). With it the call times what it plays where the
        file has it: the response time, the recording's assistant side."""
        if self._start is None:
            return 0.0
        now = self._now_samples()
        at = now if now - self._cursor > OUTPUT_SLACK_SAMPLES else self._cursor
        return (at - now) / SAMPLE_RATE

    @property
    def queued_ms(self) -> float:
        if self._start is None:
            return 0.0
        return max(0, self._cursor - self._now_samples()) * 1000 / SAMPLE_RATE

    def samples(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    async def aclose(self) -> None:
        if self._path is not None and self._start is not None:
            await asyncio.to_thread(write_wav_48k_mono, self._path, self.samples())
        self._start = None


class WavBackend:
    """`AudioBackend` on WAV files; one input and one output per call."""

    def __init__(self, input_wav: Path | None, output_wav: Path | None) -> None:
        self._input_wav = input_wav
        self._output_wav = output_wav
        self.input: WavInput | None = None
        self.output: WavOutput | None = None

    def open_input(self) -> WavInput:
        self.input = WavInput(self._input_wav)
        return self.input

    def open_output(self) -> WavOutput:
        self.output = WavOutput(self._output_wav)
        return self.output

    def health(self) -> dict[str, float]:
        out = self.output
        return {
            "playback_underruns": float(out.gaps_filled if out else 0),
            "playback_overruns": 0.0,
            "playback_trims": 0.0,
            "capture_dropped_frames": 0.0,
            "capture_queue_depth": 0.0,
            "playback_queue_ms": out.queued_ms if out else 0.0,
            "frames_played": float(out.frames_written if out else 0),
            "frames_captured": float(self.input.frames_sent if self.input else 0),
        }
