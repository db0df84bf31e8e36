"""Scenario runs against the LiveKit Agents test assistant (`tests.stack.agents_assistant`), in
this process (`run_scenario`, as `wespoke-tui test` runs each call), for what the runner measures:
barge-ins that stop the assistant and one that does not, a cough it must talk through, what the
assistant heard of a sentence (word error rate, with pocketsphinx as its recognizer), wait turns,
a Turkish turn, and a turn that fails one run in three.

The assistant is told what to do per call through the call's metadata (`AgentControl`, the
scenario's `[assistant] metadata`). The figures measured are printed (`pytest -s`); the limits
hold on a 2-core machine under two CPU hogs (the worker runs at a higher priority there, as a
service on its own machine would).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.stack.agents_control import REPO_ROOT, WRONG_ANSWER, AgentControl, agents_python
from tests.stack.agents_fixtures import AgentsStack
from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.wav import write_wav_48k_mono
from wespoke_tui.scenario.command import turn_audio
from wespoke_tui.scenario.hearing import word_error_rate
from wespoke_tui.scenario.model import load_scenario
from wespoke_tui.scenario.runner import RunResult, run_scenario
from wespoke_tui.scenario.speech import synthesize

pytestmark = pytest.mark.timeout(240)

# LiveKit Agents ignores the caller for the first 3 s its agent speaks in a call (its AEC warm-up,
# `aec_warmup_duration`): the greeting is interrupted after that, at the client's 3.5 s (the agent
# began before the client heard it).
INTO_GREETING_MS = 3500
# Long enough to be interrupted INTO_GREETING_MS in and still be talking STOP_WATCH_S (5 s) and
# the quiet window later: ~12 s.
LONG_GREETING = ("Good day, and welcome to this test call. This greeting is long on purpose. I will keep "
                 "talking for quite a while, so that there is plenty of time to interrupt me, to cough at me, "
                 "or to let me finish.")
# From the caller's speech start to the assistant's silence at the player: its VAD needs 0.5 s of
# speech to give way (the framework's default), then the way back to us. Measured 0.7-0.9 s on an
# idle machine, 0-2.3 s under two CPU hogs (0: the caller began in a pause of the assistant's, which
# it never took up again).
STOP_LIMIT_MS = 3500
# pocketsphinx on espeak-ng through the call: "I want to cancel my subscription." was heard with no
# error in 9 calls of 10 (idle and under two CPU hogs), 0.33 in the other (a late frame of the
# caller's, stretched by the receiver, under load).
WER_BOUND = 0.5


def write(tmp_path: Path, text: str, name: str = "scenario.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def run(stack: AgentsStack, path: Path, runs: int = 1) -> list[RunResult]:
    """The scenario's runs one after the other, as `wespoke-tui test --repeat N` makes them."""
    scenario = load_scenario(path)
    settings = stack.settings()
    audio = turn_audio(scenario, settings.lang)
    results = []
    for number in range(1, runs + 1):
        result = await run_scenario(settings, scenario, audio, number)
        show(result)
        results.append(result)
    return results


def show(result: RunResult) -> None:
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} ms"

    print(f"run {result.run}: {'PASS' if result.passed else 'FAIL'} (call {result.call_id}, {result.seconds:.1f} s)"
          + (f" error: {result.error}" if result.error else ""))
    for turn in result.turns:
        print(f"  {turn.turn.title}: {'PASS' if turn.passed else 'FAIL'}; response {ms(turn.response_ms)}, "
              f"stop {ms(turn.stop_ms)}, barge-in reported {turn.barge_in_reported}, heard {turn.heard!r}, "
              f"WER {turn.wer if turn.wer is None else round(turn.wer, 2)}")
        print(f"    said: {turn.said!r}")
        for failure in turn.failures:
            print(f"    - {failure}")


def room_of(stack: AgentsStack, result: RunResult) -> str:
    assert result.call_id is not None
    return str(stack.job_for(result.call_id)["room"])


def between(records: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in records if start <= r["wall"] <= end]


def cough(seconds: float, seed: int) -> np.ndarray:
    """A cough-like burst: noise band-passed to 300-3000 Hz, a 5 ms attack and an 80 ms decay."""
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0.0, 1.0, n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[(freqs < 300) | (freqs > 3000)] = 0
    burst = np.fft.irfft(spectrum, n)
    t = np.arange(n) / SAMPLE_RATE
    burst *= np.exp(-t / 0.08) * (1 - np.exp(-t / 0.005))
    return burst / np.abs(burst).max()


def cough_wav(path: Path) -> Path:
    """Two coughs at -6 dBFS peak, with a little silence around (a say_wav turn's file)."""
    gap, pad = np.zeros(SAMPLE_RATE // 10), np.zeros(SAMPLE_RATE // 5)
    sound = np.concatenate((pad, cough(0.35, 7), gap, cough(0.3, 8), pad)) * 0.5 * 32767
    write_wav_48k_mono(path, np.round(sound).astype(np.int16))
    return path


def test_the_recognizer_runs_offline_from_its_wheel() -> None:
    """pocketsphinx in the agents venv, with the assistant's network guard on: the model from its
    wheel, a sentence of espeak-ng's through the VAD and the recognizer, heard nearly right."""
    done = subprocess.run(
        [str(agents_python()), "-m", "tests.stack.agents_assistant", "--self-check", "--log-file", "/dev/null"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout.strip().splitlines()[-1])["pocketsphinx"]
    (heard,) = doc["heard"]
    wer = word_error_rate(doc["said"], heard)
    print(f"pocketsphinx heard {heard!r} for {doc['said']!r}: WER {wer}")
    assert wer is not None and wer <= WER_BOUND


async def test_barge_ins_stop_the_assistant_within_the_limit(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """Into the greeting, then into the answer to that: each time the assistant's audio falls
    silent at the player within the limit of the caller's first sound, it says so (`barge_in`),
    and answers what it heard."""
    # (Not resumed: slowed by a loaded machine, the recognizer can take more than the framework's
    # 2 s, and the agent would take its cut speech up again before it heard the caller.)
    control = AgentControl(recognizer="pocketsphinx", report_barge_in=True, resumes=False)
    path = write(tmp_path, f"""
name = "Barge-ins"
greeting_timeout = 30
[assistant]
first_message = "{LONG_GREETING}"
metadata = {control.toml()}

[[turns]]
say = "Wait, please stop talking for a moment."
interrupt_after_ms = {INTO_GREETING_MS}
timeout = 30
expect.stops_within_ms = {STOP_LIMIT_MS}
expect.contains = "You said"

[[turns]]
say = "Sorry, I have one more question."
interrupt_after_ms = 1500
timeout = 30
expect.stops_within_ms = {STOP_LIMIT_MS}
expect.contains = "You said"
""")
    (result,) = await run(agents_stack, path)
    assert result.passed, result.turns
    first, second = result.turns
    room = room_of(agents_stack, result)
    for turn in (first, second):
        assert turn.stop_ms is not None and 0 <= turn.stop_ms <= STOP_LIMIT_MS
        assert turn.barge_in_reported and turn.heard and turn.response_ms is not None
        assert f"You said: {turn.heard}" in turn.said  # its answer is to what it heard
        assert turn.spoke_at is not None
        vad = agents_stack.worker.log.wait_for(
            "user_state", lambda r, at=turn.spoke_at: r["room"] == room and r["state"] == "speaking" and r["wall"] > at)
        gave_way = agents_stack.worker.log.wait_for(
            "agent_state", lambda r, at=vad["wall"]: r["room"] == room and r["previous"] == "speaking" and r["wall"] >= at)
        print(f"{turn.turn.title}: the agent's VAD heard the caller {(vad['wall'] - turn.spoke_at) * 1000:.0f} ms "
              f"into the speech, it gave way {(gave_way['wall'] - vad['wall']) * 1000:.0f} ms later; silent at the "
              f"player {turn.stop_ms:.0f} ms into the speech")
    # Turn 1's answer was cut by turn 2: its words are the part played, the start of the answer.
    assert first.said.startswith("You said") and "I keep talking for a while" not in first.said
    items = [(r["role"], r["interrupted"]) for r in agents_stack.events(room, "conversation_item")]
    assert items[:5] == [("assistant", True), ("user", False), ("assistant", True), ("user", False),
                         ("assistant", False)], items
    assert len(agents_stack.events(room, "barge_in_sent")) == 2


async def test_an_assistant_told_not_to_stop_fails_the_barge_in(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """The assistant is told to talk over the caller: the turn fails, and says it did not stop."""
    path = write(tmp_path, f"""
name = "No stop"
greeting_timeout = 30
[assistant]
first_message = "{LONG_GREETING}"
metadata = {AgentControl(interruptible=False).toml()}

[[turns]]
say = "Wait, please stop talking for a moment."
interrupt_after_ms = {INTO_GREETING_MS}
timeout = 30
expect.stops_within_ms = {STOP_LIMIT_MS}
""")
    (result,) = await run(agents_stack, path)
    (turn,) = result.turns
    assert not result.passed and turn.stop_ms is None
    assert turn.failures == [f"expected the assistant to stop within {STOP_LIMIT_MS} ms of the interruption; "
                             "the assistant did not stop"]
    room = room_of(agents_stack, result)
    (greeting,) = [r for r in agents_stack.events(room, "conversation_item") if r["role"] == "assistant"]
    assert greeting["text"] == LONG_GREETING and not greeting["interrupted"]


async def test_a_cough_does_not_stop_the_assistant(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """A cough into the greeting (a noise burst, no speech): the assistant's VAD does not take it
    for speech, so it keeps talking, and `expect.keeps_talking` passes."""
    cough_wav(tmp_path / "cough.wav")
    path = write(tmp_path, f"""
name = "Cough"
greeting_timeout = 30
[assistant]
first_message = "{LONG_GREETING}"

[[turns]]
say_wav = "cough.wav"
interrupt_after_ms = {INTO_GREETING_MS}
timeout = 30
expect.keeps_talking = true
""")
    (result,) = await run(agents_stack, path)
    (turn,) = result.turns
    assert result.passed and turn.stop_ms is None and turn.heard is None, turn
    room = room_of(agents_stack, result)
    assert turn.spoke_at is not None and turn.ended_at is not None
    heard = between(agents_stack.events(room, "user_state", state="speaking"), turn.spoke_at, turn.ended_at + 5)
    assert heard == [], "the assistant's VAD took the cough for speech"
    (greeting,) = [r for r in agents_stack.events(room, "conversation_item") if r["role"] == "assistant"]
    assert greeting["text"] == LONG_GREETING and not greeting["interrupted"]


async def test_what_the_assistant_heard_of_clear_sentences(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """With pocketsphinx as the assistant's recognizer, what it heard of each sentence comes back
    as its transcript of the caller, and the word error rate is under the bound."""
    path = write(tmp_path, f"""
name = "Hearing"
greeting_timeout = 30
[assistant]
metadata = {AgentControl(recognizer="pocketsphinx").toml()}

[[turns]]
say = "I want to cancel my subscription."
timeout = 30
expect.max_wer = {WER_BOUND}
expect.contains = "You said"

[[turns]]
say = "The package arrived yesterday but it was damaged."
timeout = 30
expect.contains = "You said"
""")
    (result,) = await run(agents_stack, path)
    for turn in result.turns:
        print(f"WER {turn.wer if turn.wer is None else round(turn.wer, 2)}: said {turn.turn.text!r}, "
              f"heard {turn.heard!r}")
    assert result.passed, result.turns
    room = room_of(agents_stack, result)
    recognized = [r["text"] for r in agents_stack.events(room, "stt_recognized")]
    assert [t.heard for t in result.turns] == recognized
    first, second = result.turns
    assert first.wer is not None and first.wer <= WER_BOUND
    # The longer sentence has no bound in the file; its figure is printed. Heard, it is mostly
    # right (0-0.25 idle; 0.62 once under two CPU hogs): far from a broken hearing's 1.
    assert second.wer is not None and second.wer < 0.9


async def test_wait_turns_and_a_turkish_turn(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """The caller says nothing: in the first wait the greeting comes (not waited for before it),
    in the second the assistant stays quiet. Then a turn in the Turkish voice, heard as speech."""
    path = write(tmp_path, """
name = "Waits"
greeting_timeout = 0
[assistant]
first_message = "Hello, are you still there?"

[[turns]]
wait = 15
expect.speaks = true
expect.contains = "still there"

[[turns]]
wait = 2
expect.speaks = false

[[turns]]
say = "Merhaba, siparişim nerede?"
lang = "tr"
timeout = 30
expect.regex = 'You said: heard \\d\\.\\d seconds of speech'
""")
    (result,) = await run(agents_stack, path)
    assert result.passed, result.turns
    greeting, quiet, turkish = result.turns
    assert greeting.said == "Hello, are you still there?" and greeting.answered_at is not None
    assert quiet.said == "" and quiet.answered_at is None and 2 <= quiet.seconds < 3
    # Said in the turn's voice, whatever the user's language (--lang en here).
    scenario = load_scenario(path)
    spoken = turn_audio(scenario, "en")[3]
    assert spoken.size == synthesize("Merhaba, siparişim nerede?", "tr").size
    assert turkish.heard is not None and turkish.wer is not None  # (a duration, not the words)
    room = room_of(agents_stack, result)
    (described,) = agents_stack.events(room, "stt_recognized")
    assert abs(described["speech_s"] - spoken.size / SAMPLE_RATE) < 1.0, described


async def test_a_turn_that_fails_one_run_in_three(agents_stack: AgentsStack, tmp_path: Path) -> None:
    """The assistant answers wrong every third time (counted over this test's calls): over three
    runs the turn passes, passes, fails, and the failure quotes the wrong answer."""
    control = AgentControl(wrong_every=3, counter=f"flaky-{uuid.uuid4().hex}")
    path = write(tmp_path, f"""
name = "Flaky"
greeting_timeout = 30
[assistant]
metadata = {control.toml()}

[[turns]]
type = "How are you?"
timeout = 30
expect.contains = "You said: How are you"
""")
    results = await run(agents_stack, path, runs=3)
    assert [r.passed for r in results] == [True, True, False]
    assert all(r.error is None for r in results)
    (failed,) = results[2].turns
    assert failed.said == WRONG_ANSWER
    assert failed.failures == [f'expected "You said: How are you" in the answer; the assistant said "{WRONG_ANSWER}"']
