"""The scenario runner's parts without a call: the scripted microphone's speech times, the
listening speaker, the barge-in's stop rule, what the assistant heard and its word error rate,
the measured checks, the turns' results read from the call's messages, the test assistant's
control, and the voices of `say` turns."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

from tests.stack.agents_control import CONTROL_KEY, WRONG_ANSWER, AgentControl, reply_to
from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.events import AgentState
from wespoke_tui.scenario import runner, speech
from wespoke_tui.scenario.checks import expectation_failures
from wespoke_tui.scenario.devices import ListeningSpeaker, ScriptedMicrophone
from wespoke_tui.scenario.hearing import normalise, word_error_rate
from wespoke_tui.scenario.model import Action, Expectations, Turn
from wespoke_tui.scenario.runner import TurnResult
from wespoke_tui.scenario.speech import SpeechError, synthesize, voice_of
from wespoke_tui.scenario.watcher import STOP_QUIET_LONG_S, STOP_QUIET_S, find_stop, left_speaking, talking_at

# ------------------------------------------------------------------------------ the devices


async def test_the_microphone_times_the_speech_in_an_utterance_not_its_padding() -> None:
    mic = ScriptedMicrophone()
    lead, speech, trail = int(0.1 * SAMPLE_RATE) + 123, int(0.3 * SAMPLE_RATE), int(0.2 * SAMPLE_RATE)
    samples = np.concatenate((np.zeros(lead), np.full(speech, 3000), np.full(trail, 100))).astype(np.int16)
    frames = mic.frames()
    first = await anext(frames)  # the microphone's clock starts with its first frame
    start = mic.last_captured_at
    assert start is not None and not first.any()
    utterance = mic.say(samples)

    async def drain() -> None:
        async for _ in frames:
            pass

    task = asyncio.get_running_loop().create_task(drain())
    try:
        began, ended = await asyncio.wait_for(asyncio.gather(utterance.began, utterance.ended), 10)
    finally:
        await mic.aclose()
        await task
    # Said from the second frame on; the times are the frames' schedule plus the offsets in them.
    assert began == pytest.approx(start + 0.01 + lead / SAMPLE_RATE, abs=1e-6)
    assert ended == pytest.approx(start + 0.01 + (lead + speech) / SAMPLE_RATE, abs=1e-6)


async def test_closing_the_microphone_cancels_what_was_not_said() -> None:
    mic = ScriptedMicrophone()
    utterance = mic.say(np.full(4800, 3000, dtype=np.int16))
    await mic.aclose()
    assert utterance.began.cancelled() and utterance.ended.cancelled()


async def test_the_speaker_forgets_loud_frames_a_barge_in_dropped_unplayed() -> None:
    speaker = ListeningSpeaker(None)
    loud = np.full(FRAME_SAMPLES, 8000, dtype=np.int16)
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    before = time.monotonic()  # before the player's clock starts: its first frame is laid at that start
    await speaker.start()
    for _ in range(50):  # half a second of sound arriving at once: laid one after the other
        speaker.write(loud)
    speaker.write(quiet)
    assert len(speaker.loud_at) == 50
    assert speaker.loud_at == sorted(speaker.loud_at) and speaker.loud_at[-1] >= before + 0.48
    speaker.clear()
    after = time.monotonic()
    assert all(t <= after for t in speaker.loud_at) and len(speaker.loud_at) < 50
    await speaker.aclose()


# ------------------------------------------------------------------------------ the stop rule


def frames_between(start: float, end: float) -> list[float]:
    return [round(start + i * 0.01, 3) for i in range(round((end - start) / 0.01))]


def test_the_stop_is_the_last_loud_frame_before_a_quiet_window() -> None:
    talk = frames_between(0.0, 2.0) + frames_between(2.3, 3.1)  # a 0.3 s pause inside, then a stop
    assert find_stop(talk, spoke_at=1.0, now=3.2) is None  # quiet for 0.1 s: not yet
    assert find_stop(talk, spoke_at=1.0, now=3.09 + STOP_QUIET_S) is None  # no states: the long window
    assert find_stop(talk, spoke_at=1.0, now=3.09 + STOP_QUIET_LONG_S) == 3.09
    after = talk + frames_between(5.0, 6.0)  # its next answer
    assert find_stop(after, spoke_at=1.0, now=6.0) == 3.09
    assert find_stop(after, spoke_at=2.1, now=6.0) == 3.09  # spoken in the pause: the pause is no stop


def test_an_assistant_that_gave_way_stopped_after_the_short_window() -> None:
    talk = frames_between(0.0, 2.0) + frames_between(3.3, 4.0)  # a 1.3 s gap, still speaking
    states = [(0.0, AgentState.SPEAKING)]
    assert find_stop(talk, spoke_at=1.0, now=6.9, states=states) is None  # it says it is speaking
    assert find_stop(talk, spoke_at=1.0, now=6.99, states=states) == 3.99  # ... but quiet for 3 s
    assert find_stop(talk, spoke_at=1.0, now=6.9) == 1.99  # without states, 1.2 s is a stop
    gave_way = [(0.0, AgentState.SPEAKING), (4.2, AgentState.LISTENING)]  # (the state comes after the sound)
    assert find_stop(talk, spoke_at=1.0, now=4.6, states=gave_way) == 3.99
    assert find_stop(talk, spoke_at=1.0, now=4.6, states=states) is None
    # A gap of the short window's length while it still spoke is no stop; one where it did not is.
    assert find_stop(talk, spoke_at=1.0, now=4.0, states=[(0.0, AgentState.SPEAKING), (2.2, AgentState.LISTENING),
                                                          (2.5, AgentState.SPEAKING)]) == 1.99
    assert left_speaking([(0.0, AgentState.THINKING)], 1.0, 2.0) and not left_speaking([], 1.0, 2.0)
    assert talking_at(talk, 3.25, states) and not talking_at(talk, 3.25)


def test_an_assistant_quiet_when_the_caller_spoke_stopped_before() -> None:
    talk = frames_between(0.0, 1.0)
    assert find_stop(talk, spoke_at=2.5, now=2.5) == 0.99
    assert not talking_at(talk, 2.5) and talking_at(talk, 2.0)
    assert find_stop([], spoke_at=2.0, now=2.0) == 2.0 and not talking_at([], 2.0)
    assert find_stop(frames_between(2.5, 3.0), spoke_at=2.0, now=3.0) == 2.0


def test_an_assistant_that_keeps_talking_has_not_stopped() -> None:
    talk = frames_between(0.0, 10.0)
    assert find_stop(talk, spoke_at=1.0, now=9.99, states=[(0.0, AgentState.SPEAKING)]) is None


# ------------------------------------------------------------------------------ hearing


@pytest.mark.parametrize(
    ("said", "heard", "wer"),
    [
        ("Where is my order?", "where is my order", 0.0),
        ("I want to cancel my subscription.", "i want to cancel my description", 1 / 6),
        ("Thank you, goodbye.", "thank you good bye", 2 / 3),  # a substitution and an insertion
        ("Wait, stop.", "", 1.0),
        ("Hello", "hello hello hello", 2.0),
        ("?!", "anything", None),
    ],
)
def test_word_error_rate_of_normalised_words(said: str, heard: str, wer: float | None) -> None:
    measured = word_error_rate(said, heard)
    assert measured == (None if wer is None else pytest.approx(wer))


def test_normalising_keeps_words_and_drops_punctuation_and_case() -> None:
    assert normalise("  Don't STOP — 'now', please!  ") == "don't stop now please"
    assert normalise("Siparişim NEREDE?") == "siparişim nerede"


# ------------------------------------------------------------------------------ the checks


def turn(action: Action = Action.SAY, **expect: object) -> Turn:
    return Turn(1, 3, action, text="Wait, stop" if action is not Action.WAIT else None,
                wait_s=4.0 if action is Action.WAIT else None, expect=Expectations(**expect))  # type: ignore[arg-type]


def test_measured_checks_say_the_figure_and_the_limit() -> None:
    barge = turn(stops_within_ms=600.0)
    assert expectation_failures(barge, TurnResult(barge, stop_ms=450.0), ended=False) == []
    assert expectation_failures(barge, TurnResult(barge, stop_ms=1234.0), ended=False) == [
        "the assistant stopped after 1234 ms; expected within 600 ms"]
    assert expectation_failures(barge, TurnResult(barge), ended=False) == [
        "expected the assistant to stop within 600 ms of the interruption; the assistant did not stop"]
    keeps = turn(keeps_talking=True)
    assert expectation_failures(keeps, TurnResult(keeps), ended=False) == []
    assert expectation_failures(keeps, TurnResult(keeps, stop_ms=300.0), ended=False) == [
        "expected the assistant to keep talking through the interruption; it stopped after 300 ms"]
    wer = turn(max_wer=0.2)
    assert expectation_failures(wer, TurnResult(wer, heard="wait stop", wer=0.0), ended=False) == []
    assert expectation_failures(wer, TurnResult(wer, heard="way to stop", wer=1.0), ended=False) == [
        'the assistant heard "way to stop": word error rate 1.00, expected at most 0.20']
    assert "it sent no transcript" in expectation_failures(wer, TurnResult(wer), ended=False)[0]
    fast = turn(max_response_ms=1500.0)
    assert expectation_failures(fast, TurnResult(fast, response_ms=1600.0), ended=False) == [
        "the answer was heard after 1600 ms; expected within 1500 ms"]
    speaks = turn(Action.WAIT, speaks=True)
    assert expectation_failures(speaks, TurnResult(speaks, said="Are you there?"), ended=False) == []
    assert expectation_failures(speaks, TurnResult(speaks), ended=True) == [
        "expected the assistant to speak during the 4 s wait; it said nothing (the call ended during it)"]
    quiet = turn(Action.WAIT, speaks=False)
    assert expectation_failures(quiet, TurnResult(quiet, answered_at=1.0), ended=False) == [
        "expected the assistant to stay quiet during the 4 s wait; its sound was heard"]


def test_a_turn_reads_the_messages_from_its_start_to_the_next_turns() -> None:
    first, barge = turn(), Turn(2, 6, Action.SAY, text="Please stop", interrupt_after_ms=500.0)
    steps = [runner._Step(TurnResult(first), began=10.0), runner._Step(TurnResult(barge), began=14.0)]
    watcher = types.SimpleNamespace(
        # The cut answer, first seen in turn 1, has its final (cut) text only after turn 2 began.
        texts={"a1": (12.0, "You said: wait stop. I am"), "a2": (17.0, "You said: please stop.")},
        user_texts={"u1": (11.5, "wait stop"), "u2": (15.0, "please stop")},
        tools=[], metrics=[], barge_ins=[14.6], ended_at=None,
    )
    runner._finish(steps, watcher)  # type: ignore[arg-type]
    one, two = (s.result for s in steps)
    assert (one.said, one.heard, one.wer, one.barge_in_reported) == ("You said: wait stop. I am", "wait stop", 0.0, False)
    assert (two.said, two.heard, two.wer, two.barge_in_reported) == ("You said: please stop.", "please stop", 0.0, True)
    assert one.passed and two.passed


# ------------------------------------------------------------------------------ the test assistant's control


def test_the_control_reaches_the_assistant_through_the_call_metadata() -> None:
    control = AgentControl(interruptible=False, wrong_every=3, counter="flaky-1", report_barge_in=True,
                           recognizer="pocketsphinx", resumes=False)
    as_toml = tomllib.loads(f"metadata = {control.toml()}")["metadata"]
    assert as_toml == control.metadata() and CONTROL_KEY in as_toml
    dispatch = json.dumps({"callId": "c1", "metadata": as_toml})
    assert AgentControl.from_dispatch(dispatch) == control
    assert AgentControl.from_dispatch('{"metadata": {"testAgent": {"recognizer": "whisper", "wrongEvery": true}}}') \
        == AgentControl()
    assert AgentControl.from_dispatch("not json") == AgentControl() == AgentControl.from_dispatch("")
    answers = [control.answer("hello", n) for n in range(1, 7)]
    assert answers == [reply_to("hello")] * 2 + [WRONG_ANSWER] + [reply_to("hello")] * 2 + [WRONG_ANSWER]


# ------------------------------------------------------------------------------ voices


def test_a_turkish_turn_is_spoken_with_the_turkish_voice(tmp_path: Path) -> None:
    assert voice_of("tr") == "tr" and voice_of("en") == "en-us"
    text = "Merhaba, siparişim nerede?"
    turkish, english = synthesize(text, "tr"), synthesize(text, "en")
    assert turkish.dtype == np.int16 and np.abs(turkish).max() > 3000
    assert turkish.size != english.size  # the same letters, read by another language's rules


def test_a_missing_voice_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(speech.VOICES, "xx", "qqq")  # no such voice
    with pytest.raises(SpeechError, match=r"with the voice 'qqq' \(xx\): .*does not exist"):
        synthesize("hello", "xx")
