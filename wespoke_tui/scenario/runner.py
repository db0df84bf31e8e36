"""One run of a scenario: a real call whose microphone says each turn's audio on cue, then waits
for the assistant's answer and checks it.

Turns and their answers (the waits are scenario/watcher.py's):
- a `say`/`say_wav`/`type` turn is said, then its answer waited for until it is over (watcher.py)
  or the turn's timeout; the next turn comes SETTLE_S after;
- unless the next turn is a barge-in (`interrupt_after_ms`): then the wait ends at the answer's
  first sound at the player + interrupt_after_ms (for turn 1, the greeting's), and the barge-in's
  audio is said at once;
- a barge-in turn: from the caller's speech start (`spoke_at`: its first sample above −40 dBFS
  leaving the microphone) the runner watches the player until the assistant falls silent
  (watcher.find_stop: no frame louder than ANSWER_DBFS for a while, see watcher.py; the stop is
  the last loud frame) or STOP_WATCH_S pass (longer when `expect.stops_within_ms` asks for more, shorter when the
  turn's timeout is): `stop_ms` from the speech start to the stop, None when it kept talking. Then
  its answer is waited for as a normal turn's, one that begins after the stop (none when it did not
  stop: the answer it kept talking is waited out, so the next turn does not talk over it);
- a `wait` turn: the microphone stays silent for `wait_s` (less if the call ends); what the
  assistant says meanwhile is the turn's `said`, its first sound `answered_at`.
Response times are measured at the client, from the end of the turn (the last sample of its speech
leaving the microphone, or the typed text sent) to the first sound of the answer at the player,
and to its first transcript text. What a turn's results hold from the call's messages (the words,
tools, metrics, what the assistant heard of the caller, its barge-in report) is what came from the
turn's start to the next turn's start, read at the end of the run: an answer cut by a barge-in has
its final text by then.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wespoke_tui.errors import RECORDING_ERROR
from wespoke_tui.events import CallController, CallState
from wespoke_tui.scenario.audio_checks import AudioFinding, check_run
from wespoke_tui.scenario.checks import audio_failures, expectation_failures
from wespoke_tui.scenario.devices import ScenarioBackend
from wespoke_tui.scenario.hearing import word_error_rate
from wespoke_tui.scenario.model import Action, Scenario, Turn
from wespoke_tui.scenario.watcher import CallWatcher, talking_at
from wespoke_tui.settings import Settings

SETTLE_S = 0.3  # after an answer, before the next turn speaks
STOP_WATCH_S = 5.0  # how long a barge-in waits for the assistant to fall silent


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
    audio_figures: dict[str, Any] | None = None  # the recording's measures of the turn (TurnAudio.as_dict)

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


def scenario_settings(settings: Settings, scenario: Scenario, record_dir: Path | None = None) -> Settings:
    """The settings of a scenario's calls: its assistant options over the command line's; every
    call is recorded (to `record_dir` when the user asked for no recordings: the audio checks read it)."""
    return dataclasses.replace(
        settings,
        first_message=scenario.first_message or settings.first_message,
        system_prompt=scenario.system_prompt or settings.system_prompt,
        variables={**settings.variables, **scenario.variables},
        metadata={**settings.metadata, **scenario.metadata},
        overrides={**settings.overrides, **scenario.overrides},
        record_dir=record_dir or settings.record_dir,
        record_calls=settings.record_calls or record_dir is not None,
    )


@dataclass
class _Step:
    """A turn that ran: its result, and the times its results are read for at the end."""

    result: TurnResult
    began: float  # monotonic
    no_answer: bool = False  # nothing came within the timeout


async def run_scenario(settings: Settings, scenario: Scenario, audio: dict[int, np.ndarray], run: int) -> RunResult:
    """One call through the scenario. `audio`: each `say`/`say_wav` turn's samples, by number.
    With `settings.chat` it is a text chat instead (`chat_mode.typed` made the turns typed)."""
    started = time.monotonic()
    result = RunResult(scenario, run)
    backend = ScenarioBackend(None)
    scratch: Path | None = None
    session: CallController
    if settings.chat:  # no audio, nothing recorded
        from wespoke_tui.controllers.chat import ChatController

        session = ChatController(scenario_settings(settings, scenario))
    else:
        from wespoke_tui.session import CallSession

        scratch = None if settings.record_calls else Path(tempfile.mkdtemp(prefix="wespoke-test-"))
        session = CallSession(scenario_settings(settings, scenario, scratch), lambda: backend)
    watcher = CallWatcher(session, backend.speaker, settings.lang, text_only=settings.chat)
    steps: list[_Step] = []
    try:
        await session.start()
        if session.state is not CallState.CONNECTED:
            result.error = watcher.error or "the call did not connect"
            result.error_code = watcher.error_code
            return result
        turns = scenario.turns
        if scenario.greeting_timeout_s > 0:
            # (A chat's greeting comes with its start: counted from the run's start.)
            since = started if settings.chat else time.monotonic()
            await _await_answer(watcher, since, scenario.greeting_timeout_s, turns[0], fresh=False)
        for i, turn in enumerate(turns):
            if watcher.ended_at is not None:
                result.turns.append(TurnResult(turn, ["the call had ended before this turn"]))
                continue
            following = turns[i + 1] if i + 1 < len(turns) else None
            step = await _run_turn(session, backend, watcher, turn, audio.get(turn.number), following)
            steps.append(step)
            result.turns.append(step.result)
            if following is None or not following.barge_in:
                await asyncio.sleep(SETTLE_S)
    finally:
        await session.aclose()
        await watcher.close()
        _finish(steps, watcher)
        result.call_id = watcher.call_id
        if watcher.error is not None and result.error is None:  # the call failed mid-scenario
            result.error, result.error_code = watcher.error, watcher.error_code
        result.recording = watcher.recording
        await _check_audio(result)
        if scratch is not None:  # recorded for the checks alone: the report names no file
            shutil.rmtree(scratch, ignore_errors=True)
            result.recording = None
        result.seconds = time.monotonic() - started
    return result


async def _check_audio(result: RunResult) -> None:
    """The recording's audio checks on each turn; a finding of a kind `[gates] audio` lists fails its turn."""
    try:
        audio = await asyncio.to_thread(check_run, result)  # 0.1-0.3 s: other --parallel calls' loop stays free
    except (OSError, ValueError) as exc:
        if result.scenario.gates.audio and result.error is None:
            result.error, result.error_code = f"the recording could not be checked: {exc}", RECORDING_ERROR
        return
    if audio is None:
        return
    for turn in result.turns:
        figures = audio.turns.get(turn.turn.number)
        if figures is None:
            continue
        turn.audio = list(figures.findings)
        turn.audio_figures = figures.as_dict()
        turn.failures += audio_failures(result.scenario.gates, turn)


async def _await_answer(watcher: CallWatcher, since: float, timeout: float, following: Turn | None, *,
                        fresh: bool) -> bool:
    """Wait for the answer after `since`: until it is over, or, when the following turn is a
    barge-in, until its first sound + the barge-in's interrupt_after_ms. False: none within `timeout`."""
    if following is None or following.interrupt_after_ms is None:
        return await watcher.wait_answer(since, timeout, fresh=fresh)
    first = await watcher.wait_first_sound(since, since + timeout)
    if first is None:
        return False
    cue = first + following.interrupt_after_ms / 1000
    await watcher.wait_for(lambda now: now >= cue or watcher.ended_since(since), cue)
    return True


async def _run_turn(session: CallController, backend: ScenarioBackend, watcher: CallWatcher, turn: Turn,
                    samples: np.ndarray | None, following: Turn | None) -> _Step:
    began = time.monotonic()
    to_wall = time.time() - began
    result = TurnResult(turn)
    if turn.action is Action.WAIT:
        await watcher.wait_for(lambda now: watcher.ended_since(began), began + (turn.wait_s or 0.0))
        sound = watcher.first_sound(began)
        result.answered_at = sound + to_wall if sound is not None else None
        result.spoke_at = began + to_wall  # the wait's span on the recording begins here
        result.ended_at = time.monotonic() + to_wall
        if following is not None and following.barge_in:  # into what it says from the wait on
            await _await_answer(watcher, began, turn.timeout_s, following, fresh=False)
        result.seconds = time.monotonic() - began
        return _Step(result, began)
    stop: float | None = None
    if turn.action is Action.TYPE:
        sent = time.monotonic()
        await session.send_text(turn.text or "")  # a text chat's send returns with the whole answer
        end = sent if watcher.text_only else time.monotonic()
    else:
        assert samples is not None
        utterance = backend.microphone.say(samples)
        spoke = await _outcome(utterance.began)
        if spoke is not None:
            result.spoke_at = spoke + to_wall
        if spoke is not None and turn.barge_in:
            if not talking_at(backend.speaker.loud_at, spoke, watcher.agent_states):
                result.failures.append("nothing to interrupt: the assistant was not talking when this turn's "
                                       "speech began")
            watch = max(STOP_WATCH_S, (turn.expect.stops_within_ms or 0.0) / 1000 + 1.0)
            stop = await watcher.wait_stop(spoke, min(turn.timeout_s, watch))
            result.stop_ms = None if stop is None else max(0.0, (stop - spoke) * 1000)
        end = await _outcome(utterance.ended) or time.monotonic()  # (none: the call closed the microphone)
    since = end
    if stop is not None:  # its answer is the one after the stop
        since = max(end, time.monotonic())
    answered = await _await_answer(watcher, since, turn.timeout_s, following, fresh=stop is not None)
    result.ended_at = end + to_wall
    if not turn.barge_in or stop is not None:
        sound = watcher.first_sound(since if stop is None else max(end, stop + 1e-3))
        result.response_ms = (sound - end) * 1000 if sound is not None else None
        result.answered_at = sound + to_wall if sound is not None else None
    texts = [first for first, _ in watcher.texts.values() if first >= since]
    result.transcript_ms = (min(texts) - end) * 1000 if texts else None
    if watcher.text_only:  # a chat's answer is its text: the first of it is the response
        result.response_ms = result.transcript_ms
        result.answered_at = min(texts) + to_wall if texts else None
    result.seconds = time.monotonic() - began
    heard_any = watcher.first_sound(since) is not None or any(first >= began for first, _ in watcher.texts.values())
    return _Step(result, began, no_answer=not answered and not heard_any)


async def _outcome(future: asyncio.Future[float]) -> float | None:
    """The future's time; None when it was cancelled (the microphone closed with the call)."""
    await asyncio.wait({future})
    return None if future.cancelled() else future.result()


def _finish(steps: list[_Step], watcher: CallWatcher) -> None:
    """Each turn's results from the call's messages (from its start to the next turn's), and its checks."""
    for i, step in enumerate(steps):
        result, turn = step.result, step.result.turn
        until = steps[i + 1].began if i + 1 < len(steps) else float("inf")

        def within(at: float, begin: float = step.began, end: float = until) -> bool:
            return begin <= at < end

        texts = sorted((first, text) for first, text in watcher.texts.values() if within(first))
        result.said = " ".join(text for _, text in texts).strip()
        result.tools = list(dict.fromkeys(name for at, name in watcher.tools if within(at)))  # each once, in order
        result.metrics = [m for at, m in watcher.metrics if within(at)]
        if turn.spoken:
            heard = sorted((first, text) for first, text in watcher.user_texts.values() if within(first))
            result.heard = " ".join(" ".join(text.split()) for _, text in heard).strip() if heard else None
            if turn.action is Action.SAY and result.heard is not None:
                result.wer = word_error_rate(turn.text or "", result.heard)
        if turn.barge_in:
            result.barge_in_reported = any(within(at) for at in watcher.barge_ins)
        if step.no_answer:
            result.failures.append(f"no answer within {turn.timeout_s:g} s")
        ended = watcher.ended_at is not None and within(watcher.ended_at)
        result.failures += check(turn, result, ended=ended)
        result.failures += expectation_failures(turn, result, ended=ended)


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
