"""The offline echo assistant behind `wespoke-tui --demo`: a `CallController` with no network.

It runs on the real audio engine: a spoken greeting from `assets/`, then it listens to the
microphone with a simple energy detector and, once the user pauses, plays back what they
said. It is half-duplex on purpose: while it speaks it does not listen, so its own voice
coming back through the microphone cannot start an endless echo.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wespoke_tui.audio.base import FRAME_MS, FRAME_SAMPLES, AudioBackend, AudioInput, AudioOutput, preflight_of
from wespoke_tui.audio.meter import METER_HZ, LevelMeter, RateLimiter, rms_dbfs
from wespoke_tui.audio.wav import read_wav_48k_mono
from wespoke_tui.conversation import ControllerCore
from wespoke_tui.errors import CallError
from wespoke_tui.events import (
    SILENCE_DBFS,
    VOICE,
    AgentState,
    AgentStateChanged,
    AssistantLevel,
    AssistantSpeaking,
    CallStarted,
    CallState,
    ErrorEvent,
    MicLevel,
    MuteChanged,
    Role,
    TranscriptItem,
)
from wespoke_tui.i18n import Texts
from wespoke_tui.settings import Settings

ASSETS = Path(__file__).parent.parent / "assets"
FRAME_S = FRAME_MS / 1000

SPEECH_DBFS = -45.0
"""A frame louder than this is speech (a quiet room reads below -60 dBFS)."""
SPEECH_START_FRAMES = 5
"""50 ms of speech starts an utterance, so a click does not."""
END_SILENCE_FRAMES = 70
"""700 ms of silence after speech ends the utterance."""
MIN_UTTERANCE_FRAMES = 20
MAX_UTTERANCE_FRAMES = 1500
"""15 s at most are repeated; a longer utterance is cut there."""
PREROLL_FRAMES = 15
"""The 150 ms before the detector fired, so the first syllable is not clipped."""
PLAYBACK_LEAD_S = 0.04
"""How far ahead of real time playback writes; the engine's buffer absorbs the rest."""
TEARDOWN_TIMEOUT_S = 2.0


def greeting_path(lang: str) -> Path:
    return ASSETS / f"greeting_{lang}.wav"


class DemoController(ControllerCore):
    """The echo assistant. `backend_factory()` gives the audio backend of each call."""

    capabilities = VOICE

    def __init__(self, settings: Settings, backend_factory: Callable[[], AudioBackend],
                 *, greeting: Path | None = None) -> None:
        super().__init__()
        self._t = Texts(settings.lang)
        self._backend_factory = backend_factory
        self._greeting = greeting or greeting_path(settings.lang)
        self._muted = False
        self._calls = itertools.count(1)
        self._lines = itertools.count(1)
        self._hangup = asyncio.Event()
        self._input: AudioInput | None = None
        self._output: AudioOutput | None = None
        self._speaking = False
        self._mic_meter = LevelMeter()
        self._mic_limiter = RateLimiter(METER_HZ)

    # ------------------------------------------------------------------ CallController

    @property
    def muted(self) -> bool:
        return self._muted

    async def start(self) -> None:
        if not self._may_start():
            return
        self._hangup = asyncio.Event()
        self._set_state(CallState.REQUESTING_TOKEN)
        self._emit(CallStarted(f"demo-{next(self._calls)}", None, "demo", self._t("demo.assistant_name")))
        self._set_state(CallState.CONNECTING)
        backend = self._backend_factory()
        check = preflight_of(backend)
        try:
            if check is not None:  # as a real call does before its token: the same words
                await asyncio.to_thread(check)
        except CallError as error:
            self._emit(ErrorEvent(error, fatal=True))
            self._set_state(CallState.FAILED, error)
            return
        self._output = backend.open_output()
        try:
            await self._output.start()
        except CallError as error:  # no speaker: nothing to demo
            await self._close_devices()
            self._emit(ErrorEvent(error, fatal=True))
            self._set_state(CallState.FAILED, error)
            return
        self._input = backend.open_input()
        try:
            await self._input.start()
        except CallError as error:  # no microphone: the greeting still plays, listen-only
            self._emit(ErrorEvent(error, fatal=False))
            self._input = None
        if self._hangup.is_set():
            return  # hang_up() is tearing down
        self._set_state(CallState.CONNECTED)
        self._spawn(self._converse(self._input, self._output))

    async def hang_up(self) -> None:
        if not self._state.in_call:
            return
        self._set_state(CallState.ENDING)
        self._hangup.set()
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        # Closing the devices ends `frames()` even when a cancellation gets lost on the way
        # (asyncio.wait_for can swallow one in Python 3.11), and the loops check the flag too.
        await self._close_devices()
        if tasks:
            await asyncio.wait(tasks, timeout=TEARDOWN_TIMEOUT_S)
        self._emit(MicLevel(SILENCE_DBFS, SILENCE_DBFS, self._muted))
        self._emit(AssistantLevel(SILENCE_DBFS, SILENCE_DBFS))
        self._set_state(CallState.ENDED)

    async def set_muted(self, muted: bool) -> None:
        if muted != self._muted:
            self._muted = muted
            self._emit(MuteChanged(muted))

    async def send_text(self, text: str) -> None:
        text = text.strip()
        if not text or self._state is not CallState.CONNECTED:
            return
        self._line(Role.USER, text)
        self._line(Role.ASSISTANT, self._t("demo.you_wrote", text=text))

    async def set_recording(self, on: bool) -> bool:
        return not on  # the demo records nothing

    async def delete_record(self) -> bool:
        return False  # the demo keeps no call history

    async def aclose(self) -> None:
        if self._closed:
            return
        await self.hang_up()
        self._closed = True
        self._close_stream()

    # ------------------------------------------------------------------ the conversation

    async def _converse(self, mic: AudioInput | None, speaker: AudioOutput) -> None:
        greeting = await asyncio.to_thread(read_wav_48k_mono, self._greeting)
        self._line(Role.ASSISTANT, self._t("demo.greeting"))
        self._speaking = True
        self._spawn(self._play(speaker, greeting))
        if mic is None:
            return
        detector = UtteranceDetector()
        hangup = self._hangup
        try:
            async for frame in mic.frames():
                if hangup.is_set():
                    return
                self._meter_mic(frame)
                if self._speaking:
                    detector.reset()  # half-duplex: never record our own voice
                    continue
                utterance = detector.push(None if self._muted else frame)
                if utterance is not None:
                    self._speaking = True
                    self._spawn(self._echo(speaker, utterance, detector.last_speech_s))
        except CallError as error:  # the microphone died mid-call: say so, keep the call
            self._emit(ErrorEvent(error, fatal=False))

    async def _echo(self, speaker: AudioOutput, utterance: np.ndarray, speech_s: float) -> None:
        self._line(Role.USER, self._t("demo.you_spoke", seconds=speech_s))
        reply_id = self._line(Role.ASSISTANT, self._t("demo.repeating"), final=False)
        await self._play(speaker, utterance)
        self._emit(TranscriptItem(reply_id, Role.ASSISTANT, self._t("demo.repeated"), final=True, added=False))

    async def _play(self, speaker: AudioOutput, samples: np.ndarray) -> None:
        """Write `samples` in real time, metering them as the assistant's level."""
        loop = asyncio.get_running_loop()
        meter, limiter = LevelMeter(), RateLimiter(METER_HZ)
        self._emit(AssistantSpeaking(True))
        self._emit(AgentStateChanged(AgentState.SPEAKING))
        try:
            start = loop.time()
            hangup = self._hangup
            for index in range(0, samples.size, FRAME_SAMPLES):
                if hangup.is_set():
                    return
                frame = samples[index : index + FRAME_SAMPLES]
                if frame.size < FRAME_SAMPLES:
                    frame = np.pad(frame, (0, FRAME_SAMPLES - frame.size))
                speaker.write(frame)
                level = meter.update(frame)
                if limiter.ready(loop.time()):
                    self._emit(AssistantLevel(level.rms_dbfs, level.peak_dbfs))
                delay = start + (index // FRAME_SAMPLES + 1) * FRAME_S - PLAYBACK_LEAD_S - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(PLAYBACK_LEAD_S)  # let the last frames leave the speaker
        finally:
            self._speaking = False
            self._emit(AssistantLevel(SILENCE_DBFS, SILENCE_DBFS))
            self._emit(AssistantSpeaking(False))
            self._emit(AgentStateChanged(AgentState.LISTENING))

    # ------------------------------------------------------------------ helpers

    def _meter_mic(self, frame: np.ndarray) -> None:
        level = self._mic_meter.update(frame)
        if self._mic_limiter.ready(asyncio.get_running_loop().time()):
            self._emit(MicLevel(level.rms_dbfs, level.peak_dbfs, self._muted))

    def _line(self, role: Role, text: str, final: bool = True) -> str:
        line_id = f"demo-line-{next(self._lines)}"
        self._emit(TranscriptItem(line_id, role, text, final=final, added=True))
        return line_id

    async def _close_devices(self) -> None:
        for device in (self._input, self._output):
            if device is not None:
                with contextlib.suppress(CallError, OSError):
                    await device.aclose()
        self._input = self._output = None


class UtteranceDetector:
    """Energy-based: speech starts after SPEECH_START_FRAMES loud frames and ends after
    END_SILENCE_FRAMES quiet ones. `push(None)` is a muted frame: not recorded, counts as quiet."""

    def __init__(self) -> None:
        self._preroll: deque[np.ndarray] = deque(maxlen=PREROLL_FRAMES)
        self._recorded: list[np.ndarray] = []
        self._loud_run = 0
        self._quiet_run = 0
        self._in_speech = False
        self._speech_from = 0
        self.last_speech_s = 0.0

    def reset(self) -> None:
        self._preroll.clear()
        self._recorded = []
        self._loud_run = self._quiet_run = 0
        self._in_speech = False

    def push(self, frame: np.ndarray | None) -> np.ndarray | None:
        """The finished utterance (48 kHz int16), once the user has paused; else None."""
        loud = frame is not None and rms_dbfs(frame) > SPEECH_DBFS
        if not self._in_speech:
            if frame is None:
                self.reset()
                return None
            self._preroll.append(frame)
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= SPEECH_START_FRAMES:
                self._in_speech = True
                self._recorded = list(self._preroll)
                self._speech_from = len(self._recorded) - SPEECH_START_FRAMES
                self._quiet_run = 0
            return None
        if frame is not None:
            self._recorded.append(frame)
        self._quiet_run = 0 if loud else self._quiet_run + 1
        if self._quiet_run < END_SILENCE_FRAMES and len(self._recorded) < MAX_UTTERANCE_FRAMES:
            return None
        return self._finish()

    def _finish(self) -> np.ndarray | None:
        # Keep 200 ms of the trailing silence: a natural end, not the whole pause.
        trailing = min(self._quiet_run, len(self._recorded))
        keep = len(self._recorded) - max(0, trailing - 20)
        speech_frames = len(self._recorded) - trailing - self._speech_from
        recorded = self._recorded[:keep]
        self.reset()
        if speech_frames < MIN_UTTERANCE_FRAMES or not recorded:
            return None
        self.last_speech_s = speech_frames * FRAME_S
        return np.concatenate(recorded)
