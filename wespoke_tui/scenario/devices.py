"""The audio devices of a scenario call: a microphone that says each turn's audio on cue (silence
otherwise, in real time), and a speaker that keeps when the assistant's sound was played.

Times are `time.monotonic()` (the event loop's clock): when a sample left the microphone is the
scheduled time of its 10 ms frame plus its offset in it; when a frame was played is where the
player laid it (now, or after what it still had queued).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.meter import rms_dbfs
from wespoke_tui.audio.wav import WavOutput

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
ANSWER_DBFS = -40.0  # the assistant's audio louder than this is an answer (its silence is far below)
SPEECH_LEVEL = 328  # |sample| above −40 dBFS: where the speech of a turn's audio begins and ends (not its padding)


@dataclass(frozen=True, slots=True)
class Utterance:
    """One `say()`: when its speech began leaving the microphone (its first sample above
    SPEECH_LEVEL; the audio's start when none is) and when it ended (its last such sample; the
    audio's end when none is). Both resolve as the audio goes out; both are cancelled if the
    microphone closes first."""

    began: asyncio.Future[float]
    ended: asyncio.Future[float]


class _Playing:
    def __init__(self, samples: np.ndarray, utterance: Utterance) -> None:
        self.samples, self.utterance, self.position = samples, utterance, 0
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SPEECH_LEVEL)
        self.speech_begin = int(loud[0]) if loud.size else 0
        self.speech_end = int(loud[-1]) + 1 if loud.size else samples.size
        self.speech_end_at: float | None = None


class ScriptedMicrophone:
    """An `AudioInput`: silence in real time, and each `say()`'s audio when its turn comes."""

    def __init__(self) -> None:
        self._pending: deque[_Playing] = deque()
        self._current: _Playing | None = None
        self._closed = asyncio.Event()
        self.last_captured_at: float | None = None

    async def start(self) -> None:
        return None

    def say(self, samples: np.ndarray) -> Utterance:
        """Queue `samples` to be said after what is queued already."""
        loop = asyncio.get_running_loop()
        utterance = Utterance(loop.create_future(), loop.create_future())
        self._pending.append(_Playing(samples, utterance))
        return utterance

    async def frames(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        index = 0
        while not self._closed.is_set():
            at = start + index * FRAME_S
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._closed.is_set():
                return
            index += 1
            self.last_captured_at = at
            yield self._next_frame(at)

    def _next_frame(self, at: float) -> np.ndarray:
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self._current is None and self._pending:
            self._current = self._pending.popleft()
        playing = self._current
        if playing is None:
            return frame
        begin = playing.position
        chunk = playing.samples[begin:begin + FRAME_SAMPLES]
        frame[:chunk.size] = chunk
        playing.position += chunk.size
        began, ended = playing.utterance.began, playing.utterance.ended
        if begin <= playing.speech_begin < playing.position and not began.done():
            began.set_result(at + (playing.speech_begin - begin) / SAMPLE_RATE)
        if begin < playing.speech_end <= playing.position:
            playing.speech_end_at = at + (playing.speech_end - begin) / SAMPLE_RATE
        if playing.position >= playing.samples.size:
            if not began.done():  # empty audio
                began.set_result(at)
            if not ended.done():
                ended.set_result(playing.speech_end_at if playing.speech_end_at is not None else at)
            self._current = None
        return frame

    async def aclose(self) -> None:
        self._closed.set()
        for playing in [*self._pending, *([self._current] if self._current else [])]:
            for future in (playing.utterance.began, playing.utterance.ended):
                if not future.done():
                    future.cancel()


class ListeningSpeaker(WavOutput):
    """An `AudioOutput` that keeps when each sound of the assistant was played: `loud_at`, the
    times of the 10 ms frames louder than ANSWER_DBFS, in order. A frame dropped from the queue
    unplayed (`clear()`, at a barge-in) is taken out again."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path)
        self.loud_at: list[float] = []
        self.on_loud: Callable[[], None] | None = None

    def write(self, frame: np.ndarray) -> None:
        at = time.monotonic() + self.delay_s()  # where the player lays it
        super().write(frame)
        for i in range(0, frame.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            if rms_dbfs(frame[i:i + FRAME_SAMPLES]) > ANSWER_DBFS:
                self.loud_at.append(at + i / SAMPLE_RATE)
                if self.on_loud is not None:
                    self.on_loud()

    def clear(self) -> None:
        super().clear()
        now = time.monotonic()
        while self.loud_at and self.loud_at[-1] > now:
            self.loud_at.pop()


class ScenarioBackend:
    """An `AudioBackend` of one call: the scripted microphone and the listening speaker."""

    def __init__(self, speaker_wav: Path | None) -> None:
        self.microphone = ScriptedMicrophone()
        self.speaker = ListeningSpeaker(speaker_wav)

    def open_input(self) -> ScriptedMicrophone:
        return self.microphone

    def open_output(self) -> ListeningSpeaker:
        return self.speaker

    def health(self) -> dict[str, float]:
        return {}
