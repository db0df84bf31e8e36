"""The audio checks of a scenario run (scenario/audio_checks.py) on synthesized stereo recordings
written as the recorder writes them (StereoWavFile, and a `.json` summary with `started_at`):
each check finds what was put there and nothing else, at the edges of its thresholds."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.recordings import ASSISTANT, CALLER, EPOCH, RATE, Call, ten_minute_call
from tests.support.signals import sine, voice_like
from wespoke_tui.i18n import Texts
from wespoke_tui.scenario.audio_checks import (
    RecordingAudio,
    TurnSpan,
    check_recording,
    check_run,
    recording_start,
    spans_from,
)
from wespoke_tui.scenario.model import Action, AudioCheck, Scenario, Turn
from wespoke_tui.scenario.runner import RunResult, TurnResult
from wespoke_tui.session.recording import CallRecording


def numbered(*spans: TurnSpan) -> list[TurnSpan]:
    return [TurnSpan(n, s.start_s, s.end_s, s.spoken, s.barge_in, s.until_s) for n, s in enumerate(spans, 1)]


def checks(audio: RecordingAudio) -> dict[int, list[AudioCheck]]:
    return {n: [f.check for f in found] for n, found in audio.findings().items() if found}


def two_turns(call: Call) -> list[TurnSpan]:
    """A clean call: speech, an answer 0.7 s after it, the next turn after the answer."""
    first = call.say(1.0, 1.5)
    call.answer(3.2, 2.3)
    second = call.say(6.5, 1.5)
    call.answer(8.7, 1.8)
    return numbered(first, second)


def test_a_clean_two_turn_call_has_no_findings_and_its_figures(tmp_path: Path) -> None:
    call = Call(11.5)
    spans = two_turns(call)
    audio = check_recording(call.write(tmp_path), spans)
    assert checks(audio) == {}
    assert audio.seconds == pytest.approx(11.5)
    assert audio.shift_s == pytest.approx(0.0, abs=1e-3)
    assert audio.thresholds_dbfs == (-50.0, -50.0)  # digital silence: the absolute threshold
    first, second = audio.turns[1], audio.turns[2]
    assert first.window_s == pytest.approx((1.0, 6.5)) and second.window_s == pytest.approx((6.5, 11.5))
    assert first.answer_s == pytest.approx((3.2, 5.5), abs=0.03)
    assert second.answer_s == pytest.approx((8.7, 10.5), abs=0.03)
    for turn in (first, second):
        assert turn.overlap_ms == 0 and turn.clipped == 0
        assert turn.longest_gap_ms <= 80  # the 50 ms between syllables
        assert turn.answer_dbfs is not None and -16 < turn.answer_dbfs < -8
        assert turn.peak_dbfs == pytest.approx(20 * np.log10(np.abs(voice_like(2.0).astype(int)).max() / 32768), abs=0.5)
    assert first.as_dict()["findings"] == [] and first.as_dict()["answer_dbfs"] == round(first.answer_dbfs or 0, 1)


def test_talk_over_outside_a_barge_in_turn_is_found_with_its_length(tmp_path: Path) -> None:
    call = Call(12.0)
    first = call.say(1.0, 1.5)
    call.answer(3.2, 3.0)  # its last syllable ends at 6.15 s: the caller speaks from 5.4 s, 0.75 s over it
    second = call.say(5.4, 1.5)
    call.answer(7.6, 1.8)
    wav = call.write(tmp_path)
    audio = check_recording(wav, numbered(first, second))
    assert checks(audio) == {2: [AudioCheck.TALK_OVER]}
    finding = audio.turns[2].findings[0]
    assert finding.value == pytest.approx(750, abs=60) and finding.at_s == pytest.approx(5.4, abs=0.03)
    assert "at once for" in finding.detail
    # The same call with turn 2 a barge-in: the overlap is its point, measured but no finding.
    barge = TurnSpan(second.number, second.start_s, second.end_s, barge_in=True)
    audio = check_recording(wav, numbered(first, barge))
    assert checks(audio) == {} and audio.turns[2].overlap_ms == pytest.approx(750, abs=60)


@pytest.mark.parametrize(("overlap_s", "found"), [(0.14, False), (0.3, True)])
def test_a_short_overlap_is_end_of_turn_jitter_not_talk_over(tmp_path: Path, overlap_s: float, found: bool) -> None:
    call = Call(10.0)
    first = call.say(1.0, 1.5)
    call.put(ASSISTANT, 3.0, sine(300, 2.0, -10))  # steady tones: their ends are where they are put
    second = TurnSpan(0, 5.0 - overlap_s, call.put(CALLER, 5.0 - overlap_s, sine(200, 1.5, -10)))
    call.put(ASSISTANT, 7.2, sine(300, 1.5, -10))
    audio = check_recording(call.write(tmp_path), numbered(first, second))
    assert checks(audio) == ({2: [AudioCheck.TALK_OVER]} if found else {})
    if found:
        assert audio.turns[2].findings[0].value == pytest.approx(overlap_s * 1000, abs=40)


def answer_with_gap(call: Call, gap_s: float) -> list[TurnSpan]:
    first = call.say(1.0, 1.5)
    call.put(ASSISTANT, 3.0, sine(300, 1.0, -10))
    call.put(ASSISTANT, 4.0 + gap_s, sine(300, 1.0, -10))
    return numbered(first)


def test_dead_air_inside_an_answer(tmp_path: Path) -> None:
    call = Call(12.0)
    first = call.say(1.0, 1.5)
    call.answer(3.0, 1.5)
    call.answer(7.5, 1.5)  # 3 s of silence after the answer's first part
    audio = check_recording(call.write(tmp_path), numbered(first))
    assert checks(audio) == {1: [AudioCheck.DEAD_AIR]}
    finding = audio.turns[1].findings[0]
    assert finding.value == pytest.approx(3000, abs=100) and finding.at_s == pytest.approx(4.5, abs=0.1)
    assert audio.turns[1].answer_s == pytest.approx((3.0, 9.0), abs=0.05)


@pytest.mark.parametrize(("gap_s", "found"), [(1.9, False), (2.0, False), (2.1, True)])
def test_dead_air_is_over_two_seconds(tmp_path: Path, gap_s: float, found: bool) -> None:
    call = Call(10.0)
    spans = answer_with_gap(call, gap_s)
    audio = check_recording(call.write(tmp_path), spans)
    assert checks(audio) == ({1: [AudioCheck.DEAD_AIR]} if found else {})
    assert audio.turns[1].longest_gap_ms == pytest.approx(gap_s * 1000, abs=40)


@pytest.mark.parametrize(("rms_dbfs", "found"), [(-45.0, True), (-36.0, True), (-34.0, False)])
def test_an_answer_too_quiet(tmp_path: Path, rms_dbfs: float, found: bool) -> None:
    call = Call(8.0)
    first = call.say(1.0, 1.5)
    call.put(ASSISTANT, 3.0, sine(300, 2.0, rms_dbfs + 3.0103))  # a sine's peak is 3 dB over its RMS
    audio = check_recording(call.write(tmp_path), numbered(first))
    assert audio.turns[1].answer_dbfs == pytest.approx(rms_dbfs, abs=0.1)
    assert checks(audio) == ({1: [AudioCheck.LEVEL]} if found else {})
    if found:
        finding = audio.turns[1].findings[0]
        assert finding.value == pytest.approx(rms_dbfs, abs=0.1) and finding.detail.startswith("too quiet")


def test_a_clipped_answer(tmp_path: Path) -> None:
    call = Call(8.0)
    first = call.say(1.0, 1.5)
    loud = np.clip(voice_like(2.0, 0.0).astype(np.int32) * 3, -32768, 32767).astype(np.int16)
    call.put(ASSISTANT, 3.0, loud)
    audio = check_recording(call.write(tmp_path), numbered(first))
    assert checks(audio) == {1: [AudioCheck.LEVEL]}
    finding = audio.turns[1].findings[0]
    assert finding.value > 0.1 and finding.detail.startswith("clipped")
    assert audio.turns[1].peak_dbfs == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(("ratio", "found"), [(0.0005, False), (0.002, True)])
def test_clipping_over_a_tenth_of_a_percent(tmp_path: Path, ratio: float, found: bool) -> None:
    call = Call(8.0)
    first = call.say(1.0, 1.5)
    answer = sine(300, 2.0, -10)
    answer[np.linspace(0, answer.size - 1, round(answer.size * ratio)).astype(int)] = 32767
    call.put(ASSISTANT, 3.0, answer)
    audio = check_recording(call.write(tmp_path), numbered(first))
    assert audio.turns[1].clipped == pytest.approx(ratio, rel=0.05)
    assert checks(audio) == ({1: [AudioCheck.LEVEL]} if found else {})


def test_a_spoken_turn_without_an_answer_is_a_missed_reply(tmp_path: Path) -> None:
    call = Call(14.0)
    first = call.say(1.0, 1.5)
    call.answer(3.2, 2.0)
    second = call.say(6.0, 1.5)  # nothing answers it; turn 3 comes at 10 s
    third = call.say(10.0, 1.0)
    call.answer(11.8, 1.5)
    audio = check_recording(call.write(tmp_path), numbered(first, second, third))
    assert checks(audio) == {2: [AudioCheck.MISSED_REPLY]}
    finding = audio.turns[2].findings[0]
    assert finding.value == pytest.approx(10.0 - second.end_s, abs=0.01)
    assert audio.turns[2].answer_s is None
    # A typed turn or a wait is not a spoken one: its silence is not a missed reply.
    typed = TurnSpan(0, second.start_s, second.end_s, spoken=False)
    audio = check_recording(tmp_path / "20251009-085320-call.wav", numbered(first, typed, third))
    assert checks(audio) == {}


def test_the_last_turn_without_an_answer_until_the_recording_ends(tmp_path: Path) -> None:
    call = Call(9.0)
    first = call.say(1.0, 1.5)
    audio = check_recording(call.write(tmp_path), numbered(first))
    assert checks(audio) == {1: [AudioCheck.MISSED_REPLY]}
    assert audio.turns[1].findings[0].value == pytest.approx(9.0 - first.end_s, abs=0.01)


def test_a_blip_is_no_answer(tmp_path: Path) -> None:
    call = Call(8.0)
    first = call.say(1.0, 1.5)
    call.put(ASSISTANT, 3.0, sine(300, 0.1, -10))  # 100 ms: under the 0.2 s of an answer
    audio = check_recording(call.write(tmp_path), numbered(first))
    assert checks(audio) == {1: [AudioCheck.MISSED_REPLY]}


def test_an_answer_going_on_at_a_barge_in_is_not_the_new_answer(tmp_path: Path) -> None:
    """The previous answer still sounding when the barge-in's speech ended, then the time the
    assistant takes to answer: not dead air inside the new answer."""
    call = Call(14.0)
    first = call.say(1.0, 1.5)
    call.answer(3.0, 3.3)  # until 6.3 s
    second = call.say(5.0, 1.0)  # a barge-in from 5 s; its speech ends at about 6 s
    call.answer(8.6, 2.0)  # its answer 2.6 s later
    audio = check_recording(call.write(tmp_path), numbered(first, TurnSpan(0, second.start_s, second.end_s,
                                                                           barge_in=True)))
    assert checks(audio) == {}
    assert audio.turns[2].answer_s == pytest.approx((8.6, 10.6), abs=0.05)
    assert audio.turns[2].overlap_ms == pytest.approx(1000, abs=80)


def test_spans_line_up_with_the_callers_channel_when_the_start_is_off(tmp_path: Path) -> None:
    """The summary's `started_at` is when the recorder was made, not the first frame: off by a
    little; here 0.3 s late, so every span would be 0.3 s early."""
    call = Call(12.0)
    first = call.say(1.0, 1.5)
    call.answer(2.6, 2.0)  # 0.1 s after the speech ends: misplaced spans would see talk-over
    second = call.say(5.5, 1.5)
    early = [TurnSpan(s.number, s.start_s - 0.3, s.end_s - 0.3) for s in numbered(first, second)]
    wav = call.write(tmp_path)
    audio = check_recording(wav, early)
    assert audio.shift_s == pytest.approx(0.3, abs=0.001)
    assert checks(audio) == {2: [AudioCheck.MISSED_REPLY]}
    assert audio.turns[2].findings[0].at_s == pytest.approx(second.end_s, abs=0.001)
    assert check_recording(wav, early, align=False).shift_s == 0


def scenario_run(wav: Path | None, times: list[tuple[float | None, float | None]], *,
                 actions: tuple[Action, ...] = (Action.SAY, Action.SAY)) -> RunResult:
    turns = tuple(Turn(n, None, action, text="x" if action is not Action.WAIT else None,
                       wait_s=3.0 if action is Action.WAIT else None) for n, action in enumerate(actions, 1))
    run = RunResult(Scenario(Path("s.toml"), "s", turns), 1, recording=None if wav is None else str(wav))
    run.turns = [TurnResult(turn, spoke_at=spoke, ended_at=ended) for turn, (spoke, ended) in zip(turns, times, strict=True)]
    return run


def test_a_run_checked_from_its_turn_times_and_the_summary(tmp_path: Path) -> None:
    call = Call(11.5)
    first, second = two_turns(call)
    wav = call.write(tmp_path)
    assert recording_start(wav) == pytest.approx(EPOCH, abs=1e-6)
    run = scenario_run(wav, [(EPOCH + s.start_s, EPOCH + s.end_s) for s in (first, second)])
    assert [(s.number, s.spoken, s.barge_in) for s in spans_from(run)] == [(1, True, False), (2, True, False)]
    for span, expected in zip(spans_from(run), (first, second), strict=True):
        assert (span.start_s, span.end_s) == pytest.approx((expected.start_s, expected.end_s), abs=1e-6)
    audio = check_run(run)
    assert audio is not None and checks(audio) == {} and set(audio.turns) == {1, 2}
    # Turn 2 never came (the call had ended): no span, no finding; turn 1's window is the rest.
    run = scenario_run(wav, [(EPOCH + first.start_s, EPOCH + first.end_s), (None, None)])
    audio = check_run(run)
    assert audio is not None and set(audio.turns) == {1} and audio.turns[1].window_s[1] == pytest.approx(11.5)
    assert check_run(scenario_run(None, [(None, None), (None, None)])) is None


def test_a_recording_made_by_the_recorder_with_its_first_frame_after_its_start(tmp_path: Path) -> None:
    """The session's recorder on a scripted call: its `started_at` is when it was made, its WAV's
    t=0 the first microphone frame, 13 ms later; the runner's times are epoch seconds."""
    now = [100.0]
    recording = CallRecording(tmp_path, "call_1", "Test", Texts("en"), clock=lambda: now[0],
                              wall=lambda: EPOCH + now[0] - 100.0)
    first_frame = 100.013
    caller = Call(12.0)
    spans = numbered(caller.say(1.0, 1.5), caller.say(6.5, 1.5))  # turn 2 is not answered
    for i in range(0, 12 * RATE, 960):
        recording.caller(caller.stereo[i:i + 960, CALLER], first_frame + i / RATE, exact=True)
    answer = voice_like(2.3)
    for i in range(0, answer.size - 959, 960):
        recording.assistant(answer[i:i + 960], first_frame + 3.2 + i / RATE)
    now[0] = 112.5
    recording.close()
    to_epoch = EPOCH + first_frame - 100.0  # a time in the WAV → the runner's epoch seconds
    run = scenario_run(recording.paths["wav"], [(to_epoch + s.start_s, to_epoch + s.end_s) for s in spans])
    audio = check_run(run)
    assert audio is not None
    assert audio.shift_s == pytest.approx(-0.013, abs=0.001)
    assert checks(audio) == {2: [AudioCheck.MISSED_REPLY]}
    assert audio.turns[2].findings[0].at_s == pytest.approx(spans[1].end_s, abs=0.001)
    assert audio.turns[1].answer_s == pytest.approx((3.2, 5.5), abs=0.03)


def test_a_wait_turn_looks_for_sound_from_its_start(tmp_path: Path) -> None:
    run = scenario_run(tmp_path / "r.wav", [(EPOCH + 1.0, EPOCH + 2.5), (None, EPOCH + 6.0)],
                       actions=(Action.SAY, Action.WAIT))
    assert spans_from(run, EPOCH) == [TurnSpan(1, 1.0, 2.5), TurnSpan(2, 6.0, 6.0, spoken=False)]


def test_a_recording_that_is_not_stereo_or_has_no_summary(tmp_path: Path) -> None:
    mono = tmp_path / "mono.wav"
    with wave.open(str(mono), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.zeros(RATE, dtype=np.int16).tobytes())
    with pytest.raises(ValueError, match="not a 16-bit stereo WAV"):
        check_recording(mono, [])
    with pytest.raises(OSError):
        recording_start(mono)
    mono.with_suffix(".json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="started_at"):
        recording_start(mono)


def test_a_ten_minute_call_is_checked_turn_by_turn(tmp_path: Path) -> None:
    """A 10-minute call of 60 ten-second turns, each answer with 2.4 s of dead air: each turn has
    its one finding. (How long the checks take is measured by `python -m tests.bench.audio_checks`,
    BENCHMARKS.md.)"""
    wav = ten_minute_call().write(tmp_path)
    audio = check_recording(wav, [TurnSpan(n + 1, n * 10.0, n * 10.0 + 2.0) for n in range(60)])
    assert len(audio.turns) == 60
    assert all(c == [AudioCheck.DEAD_AIR] for c in checks(audio).values()) and len(checks(audio)) == 60
