"""One run of a scenario: a real call whose microphone says each turn's audio on cue, then waits
for the assistant's answer and checks it.

An answer is over when the assistant, having spoken after the turn, is back to listening
(`lk.agent.state`), or, for an assistant that sends no states, when its audio has been quiet for
`QUIET_END_S`; at the latest after the turn's timeout. Response times are measured at the client,
from the end of the turn (the last sample of its audio leaving the microphone, or the typed text
sent) to the first sound of the answer handed to the player, and to its first transcript text.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.meter import rms_dbfs
from wespoke_tui.audio.wav import WavOutput
from wespoke_tui.errors import Lang, describe
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    CallController,
    CallEnding,
    CallStarted,
    CallState,
    ErrorEvent,
    MetricsEvent,
    RecordingChanged,
    Role,
    StateChanged,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.scenario.audio_checks import AudioFinding
from wespoke_tui.scenario.model import Scenario, Turn
from wespoke_tui.settings import Settings

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
ANSWER_DBFS = -40.0  # the assistant's audio louder than this is an answer (its silence is far below)
QUIET_END_S = 1.5
SETTLE_S = 0.3  # after an answer, before the next turn speaks


SPEECH_LEVEL = 328  # |sample| above −40 dBFS: where the speech of a turn's audio ends (not its padding)


class ScriptedMicrophone:
    """An `AudioInput`: silence in real time, and each `say()`'s audio when its turn comes."""

    def __init__(self) -> None:
        self._pending: deque[tuple[np.ndarray, asyncio.Future[float]]] = deque()
        self._current: tuple[np.ndarray, asyncio.Future[float]] | None = None
        self._position = 0
        self._speech_end = 0  # in the current audio: the sample after its last loud one
        self._speech_end_at: float | None = None
        self._closed = asyncio.Event()
        self.last_captured_at: float | None = None

    async def start(self) -> None:
        return None

    def say(self, samples: np.ndarray) -> asyncio.Future[float]:
        """Queue `samples`; once they are all sent, the future gives the (monotonic) time the
        speech in them ended (its last sample above −40 dBFS: a WAV's or espeak's trailing
        silence is not speech)."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending.append((samples, done))
        return done

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
            self._current, self._position = self._pending.popleft(), 0
            loud = np.flatnonzero(np.abs(self._current[0].astype(np.int32)) > SPEECH_LEVEL)
            self._speech_end = int(loud[-1]) + 1 if loud.size else self._current[0].size
            self._speech_end_at = None
        if self._current is not None:
            samples, done = self._current
            begin = self._position
            chunk = samples[begin:begin + FRAME_SAMPLES]
            frame[:chunk.size] = chunk
            self._position += chunk.size
            if begin < self._speech_end <= self._position:
                self._speech_end_at = at + (self._speech_end - begin) / SAMPLE_RATE
            if self._position >= samples.size:
                if not done.done():
                    done.set_result(self._speech_end_at if self._speech_end_at is not None else at)
                self._current = None
        return frame

    async def aclose(self) -> None:
        self._closed.set()
        for _, done in [*self._pending, *([self._current] if self._current else [])]:
            if not done.done():
                done.cancel()


class ListeningSpeaker(WavOutput):
    """An `AudioOutput` that keeps when each sound of the assistant reached the player."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path)
        self.loud_at: list[float] = []

    def write(self, frame: np.ndarray) -> None:
        super().write(frame)
        if rms_dbfs(frame) > ANSWER_DBFS:
            self.loud_at.append(time.monotonic())


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


@dataclass
class TurnResult:
    turn: Turn
    failures: list[str] = field(default_factory=list)
    said: str = ""  # the assistant's words during the turn
    tools: list[str] = field(default_factory=list)
    response_ms: float | None = None  # end of the turn → first sound of the answer at the player
    transcript_ms: float | None = None  # end of the turn → first text of the answer
    metrics: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    ended_at: float | None = None  # epoch seconds: the end of the turn (to match other logs)
    answered_at: float | None = None  # epoch seconds: the answer's first sound at the player
    spoke_at: float | None = None  # epoch seconds: the caller's speech in this turn began
    heard: str | None = None  # spoken turns: the assistant's own transcript of the caller
    wer: float | None = None  # `say` turns: word error rate of `heard` against the text said, 0..1+
    stop_ms: float | None = None  # barge-in turns: the caller's speech began → the answer silent at the player
    barge_in_reported: bool = False  # barge-in turns: the assistant said so (its `barge_in` message)
    audio: list[AudioFinding] = field(default_factory=list)  # what the recording shows (audio_checks.py)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class RunResult:
    scenario: Scenario
    run: int
    call_id: str | None = None
    error: str | None = None  # the call itself failed: its user message
    error_code: str | None = None  # and its code (errors.py), to tell infrastructure from the assistant
    turns: list[TurnResult] = field(default_factory=list)
    seconds: float = 0.0
    recording: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and len(self.turns) == len(self.scenario.turns) and all(t.passed for t in self.turns)


class CallWatcher:
    """Reads the call's events and answers what the runner asks: has the assistant answered?"""

    def __init__(self, controller: CallController, speaker: ListeningSpeaker, lang: Lang) -> None:
        self.speaker = speaker
        self._lang = lang
        self.changed = asyncio.Event()
        self.agent_states: list[tuple[float, AgentState]] = []
        self.texts: dict[str, tuple[float, str]] = {}  # assistant item id → (first seen, latest text)
        self.tools: list[tuple[float, str]] = []
        self.metrics: list[tuple[float, dict[str, Any]]] = []
        self.ended_at: float | None = None
        self.ending: CallEnding | None = None
        self.call_id: str | None = None
        self.recording: str | None = None
        self.error: str | None = None
        self.error_code: str | None = None
        self._task = asyncio.get_running_loop().create_task(self._read(controller))

    async def _read(self, controller: CallController) -> None:
        async for event in controller.events():
            now = time.monotonic()
            match event:
                case AgentStateChanged(state=state):
                    self.agent_states.append((now, state))
                case TranscriptItem(role=Role.ASSISTANT, id=item_id, text=text):
                    first = self.texts.get(item_id, (now, ""))[0]
                    self.texts[item_id] = (first, text)
                case ToolEvent(tool_name=name):
                    self.tools.append((now, name))
                case MetricsEvent(raw=raw, latency_ms=latency):
                    self.metrics.append((now, dict(raw) or {"latency_ms": latency}))
                case CallEnding():
                    self.ending = event
                case CallStarted(call_id=call_id):
                    self.call_id = call_id
                case RecordingChanged(path=path) if path:
                    self.recording = path
                case ErrorEvent(error=error, fatal=True):
                    self.error = describe(error, self._lang)
                    self.error_code = error.code
                case StateChanged(state=state) if state in (CallState.ENDED, CallState.FAILED, CallState.ENDING):
                    self.ended_at = self.ended_at or now
            self.changed.set()

    async def close(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, 5)

    def answer_over(self, since: float, now: float) -> bool:
        if self.ended_at is not None and self.ended_at >= since:
            return True
        before = [s for t, s in self.agent_states if t < since]
        # Still speaking when the turn ended (an echo, an answer begun early) counts as speaking.
        states = [(since, before[-1])] if before else []
        states += [(t, s) for t, s in self.agent_states if t >= since]
        spoke = [t for t, s in states if s is AgentState.SPEAKING]
        if spoke and any(t > spoke[0] and s in (AgentState.LISTENING, AgentState.IDLE) for t, s in states):
            return True
        if not self.agent_states:  # an assistant without states: its audio tells
            loud = [t for t in self.speaker.loud_at if t >= since]
            return bool(loud) and now - loud[-1] >= QUIET_END_S
        return False

    async def wait_answer(self, since: float, timeout: float) -> bool:
        """True once the answer after `since` is over; False at the timeout."""
        deadline = since + timeout
        while True:
            now = time.monotonic()
            if self.answer_over(since, now):
                return True
            if now >= deadline:
                return False
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(0.2, deadline - now))


def scenario_settings(settings: Settings, scenario: Scenario) -> Settings:
    """The settings of a scenario's calls: its assistant options over the command line's."""
    return dataclasses.replace(
        settings,
        first_message=scenario.first_message or settings.first_message,
        system_prompt=scenario.system_prompt or settings.system_prompt,
        variables={**settings.variables, **scenario.variables},
        metadata={**settings.metadata, **scenario.metadata},
        overrides={**settings.overrides, **scenario.overrides},
    )


async def run_scenario(settings: Settings, scenario: Scenario, audio: dict[int, np.ndarray], run: int) -> RunResult:
    """One call through the scenario. `audio`: each `say`/`say_wav` turn's samples, by number."""
    from wespoke_tui.session import CallSession

    started = time.monotonic()
    result = RunResult(scenario, run)
    backend = ScenarioBackend(None)
    session = CallSession(scenario_settings(settings, scenario), lambda: backend)
    watcher = CallWatcher(session, backend.speaker, settings.lang)
    try:
        await session.start()
        if session.state is not CallState.CONNECTED:
            result.error = watcher.error or "the call did not connect"
            result.error_code = watcher.error_code
            return result
        if scenario.greeting_timeout_s > 0:
            await watcher.wait_answer(time.monotonic(), scenario.greeting_timeout_s)
        for turn in scenario.turns:
            if watcher.ended_at is not None:
                result.turns.append(TurnResult(turn, ["the call had ended before this turn"]))
                continue
            result.turns.append(await _run_turn(session, backend, watcher, turn, audio.get(turn.number)))
            await asyncio.sleep(SETTLE_S)
    finally:
        await session.aclose()
        await watcher.close()
        result.call_id = watcher.call_id
        if watcher.error is not None and result.error is None:  # the call failed mid-scenario
            result.error, result.error_code = watcher.error, watcher.error_code
        result.recording = watcher.recording
        result.seconds = time.monotonic() - started
    return result


async def _run_turn(session: CallController, backend: ScenarioBackend, watcher: CallWatcher, turn: Turn,
                    samples: np.ndarray | None) -> TurnResult:
    began = time.monotonic()
    result = TurnResult(turn)
    if turn.action == "type":
        await session.send_text(turn.text or "")
        end = time.monotonic()
    else:
        assert samples is not None
        end = await backend.microphone.say(samples)
    answered = await watcher.wait_answer(end, turn.timeout_s)
    texts = sorted((first, text) for first, text in watcher.texts.values() if first >= began)
    result.said = " ".join(text for _, text in texts).strip()
    result.tools = list(dict.fromkeys(name for at, name in watcher.tools if at >= began))  # each once, in order
    result.metrics = [m for at, m in watcher.metrics if at >= began]
    loud = [t for t in backend.speaker.loud_at if t >= end]
    result.response_ms = (loud[0] - end) * 1000 if loud else None
    to_wall = time.time() - time.monotonic()
    result.ended_at = end + to_wall
    result.answered_at = loud[0] + to_wall if loud else None
    after = [first for first, _ in texts if first >= end]
    result.transcript_ms = (after[0] - end) * 1000 if after else None
    result.seconds = time.monotonic() - began
    if not answered and not loud and not texts:
        result.failures.append(f"no answer within {turn.timeout_s:g} s")
    result.failures += check(turn, result, ended=watcher.ended_at is not None and watcher.ended_at >= began)
    return result


def check(turn: Turn, result: TurnResult, *, ended: bool) -> list[str]:
    """Why the turn's answer does not meet its expectations (nothing when it does)."""
    said, lowered = result.said, result.said.lower()
    quoted = f'"{said}"' if said else "nothing"
    failures = []
    for text in turn.expect.contains:
        if text.lower() not in lowered:
            failures.append(f'expected "{text}" in the answer; the assistant said {quoted}')
    for text in turn.expect.not_contains:
        if text.lower() in lowered:
            failures.append(f'expected no "{text}" in the answer; the assistant said {quoted}')
    for pattern in turn.expect.regex:
        if re.search(pattern, said) is None:
            failures.append(f"expected a match of /{pattern}/ in the answer; the assistant said {quoted}")
    for tool in turn.expect.tool:
        if tool not in result.tools:
            seen = ", ".join(result.tools) or "none"
            failures.append(f'expected the tool "{tool}" to run; tools seen: {seen}')
    if turn.expect.call_ends is True and not ended:
        failures.append("expected the call to end during this turn; it went on")
    if turn.expect.call_ends is False and ended:
        failures.append("expected the call to go on; it ended during this turn")
    return failures
