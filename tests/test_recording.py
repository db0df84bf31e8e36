"""Recording a call: the stereo timeline and its WAV file on known signals, the transcript files,
the turns measured in the audio, and a failing disk. Real calls are in tests/test_recording_calls.py."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.ui_support import FrozenClock
from wespoke_tui.audio.recording import ASSISTANT, CALLER, SETTLE_S, StereoTimeline, StereoWavFile
from wespoke_tui.errors import RECORDING_ERROR, describe
from wespoke_tui.events import ErrorEvent, RecordingChanged, ToolEvent, TranscriptItem
from wespoke_tui.i18n import Texts
from wespoke_tui.session.recording import CallRecorder, CallRecording

RATE = 48_000
FRAME = 960  # 20 ms


def tone(hz: float, samples: int, amplitude: int = 8000) -> np.ndarray:
    return (np.sin(2 * np.pi * hz * np.arange(samples) / RATE) * amplitude).astype(np.int16)


def read_stereo(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)


def test_the_wav_is_valid_after_every_append(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    wav = StereoWavFile(path)
    assert read_stereo(path).shape == (0, 2)
    block = np.stack([tone(300, 4800), tone(700, 4800)], axis=1)
    wav.append(block)
    assert np.array_equal(read_stereo(path), block)  # readable while still open, as after a kill
    wav.append(block)
    wav.close()
    assert read_stereo(path).shape == (9600, 2)


def test_frames_land_where_they_were_heard_and_each_side_keeps_its_own_clock(tmp_path: Path) -> None:
    clock = FrozenClock(100.0)
    written: list[np.ndarray] = []
    timeline = StereoTimeline(written.append, clock=clock)
    caller = tone(300, FRAME)
    # The caller's frames every 20 ms, their timestamps a little jittery: laid back to back.
    for n in range(50):
        timeline.add(CALLER, caller, 100.0 + n * 0.02 + ((0.004 if n % 3 else -0.003) if n else 0.0))
    # The assistant's answer heard from 100.250 s, then a pause, then again from 100.800 s.
    for n in range(10):
        timeline.add(ASSISTANT, tone(700, FRAME), 100.25 + n * 0.02)
    for n in range(5):
        timeline.add(ASSISTANT, tone(900, FRAME), 100.8 + n * 0.02)
    clock.advance(1.0 + SETTLE_S)
    timeline.flush()
    audio = np.concatenate(written)
    assert audio.shape[0] == int(1.0 * RATE)
    assert np.array_equal(audio[: 50 * FRAME, 0], np.tile(caller, 50))  # no gap, no overlap
    right = audio[:, 1]
    loud = np.flatnonzero(np.abs(right) > 100)
    assert abs(loud[0] - int(0.25 * RATE)) <= 2 and not right[: int(0.25 * RATE) - 2].any()
    assert not right[int(0.45 * RATE) + 2 : int(0.8 * RATE) - 2].any()  # the pause stays silent
    assert abs(np.flatnonzero(np.abs(right[int(0.5 * RATE):]) > 100)[0] + int(0.5 * RATE) - int(0.8 * RATE)) <= 2


def test_only_settled_audio_is_written_until_the_end(tmp_path: Path) -> None:
    clock = FrozenClock(10.0)
    written: list[np.ndarray] = []
    timeline = StereoTimeline(written.append, clock=clock)
    for n in range(100):  # 2 s of caller
        timeline.add(CALLER, tone(300, FRAME), 10.0 + n * 0.02)
    clock.advance(1.0)
    timeline.flush()
    assert sum(block.shape[0] for block in written) == int((1.0 - SETTLE_S) * RATE)
    timeline.flush(final=True)
    assert sum(block.shape[0] for block in written) == 100 * FRAME


def test_a_recording_keeps_transcript_turns_and_summary(tmp_path: Path) -> None:
    clock = FrozenClock(50.0)
    recording = CallRecording(tmp_path / "rec", "call_abc", "Test Assistant", Texts("en"), clock=clock,
                              wall=lambda: 1_800_000_000.0)
    # The user speaks 0.0–1.0 s; the assistant answers, heard from 1.62 s to 2.5 s.
    for n in range(150):
        at = 50.0 + n * 0.02
        recording.caller(tone(300, FRAME) if n < 50 else np.zeros(FRAME, np.int16), at)
        if 81 <= n < 125:
            recording.assistant(tone(440, FRAME), at)
    recording.event(TranscriptItem("u1", "user", "kargom nerede?", final=True, added=True, timestamp=1_800_000_001.0))
    recording.event(TranscriptItem("a1", "assistant", "Bakı", final=False, added=True))
    recording.event(ToolEvent("start", "lookup_order"))
    recording.event(TranscriptItem("a1", "assistant", "Bakıyorum.", final=True, added=False))
    recording.event(TranscriptItem("a1", "assistant", "Bakıyorum.", final=True, added=False))  # again: once
    clock.advance(3.0)
    recording.close()
    paths = recording.paths
    assert paths["wav"].name == "20270115-080000-call_abc.wav"
    audio = read_stereo(paths["wav"])
    assert audio.shape[0] == 150 * FRAME
    summary = json.loads(paths["json"].read_text())
    assert summary["call_id"] == "call_abc" and summary["assistant"] == "Test Assistant"
    assert summary["audio_seconds"] == 3.0 and summary["duration_s"] == 3.0
    (turn,) = summary["turns"]
    assert turn["user_stopped_s"] == 1.0 and turn["assistant_started_s"] == 1.62 and turn["response_ms"] == 620
    records = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    assert [(r["type"], r.get("text") or r.get("tool_name")) for r in records] == [
        ("transcript", "kargom nerede?"), ("tool", "lookup_order"), ("transcript", "Bakıyorum.")
    ]
    assert records[0]["timestamp"] == 1_800_000_001.0
    assert paths["txt"].read_text().splitlines() == [
        "[00:00] You: kargom nerede?", "[00:00] · tool running: lookup_order", "[00:00] Assistant: Bakıyorum."
    ]


def test_a_folder_that_cannot_be_written_stops_the_recording_not_the_call(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    events: list[object] = []
    recorder = CallRecorder(blocker / "rec", Texts("tr"), events.append)
    assert not recorder.start("call_1", None)
    (error, changed) = events
    assert isinstance(error, ErrorEvent) and not error.fatal and error.error.code == RECORDING_ERROR
    assert "Kayıt yazılamadı" in describe(error.error, "tr")
    assert changed == RecordingChanged(False, None)
    recorder.mic(tone(300, FRAME), muted=False)  # nothing recording: nothing happens


def test_a_disk_that_fails_mid_call_stops_the_recording_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[object] = []
    recorder = CallRecorder(tmp_path / "rec", Texts("en"), events.append)
    assert recorder.start("call_1", "A")
    assert isinstance(events[0], RecordingChanged) and events[0].active
    recording = recorder.recording
    assert recording is not None

    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recording, "flush", full)
    recorder.tick({})
    recorder.tick({})
    assert not recorder.active
    assert [type(e).__name__ for e in events] == ["RecordingChanged", "ErrorEvent", "RecordingChanged"]
    assert "No space left" in events[1].error.message


def test_record_options(tmp_path: Path) -> None:
    from wespoke_tui.config import ConfigError, load_settings

    _, settings, _ = load_settings(["--record", str(tmp_path / "calls")], {})
    assert settings.record_dir == tmp_path / "calls" and settings.record_calls
    _, settings, _ = load_settings([], {"XDG_DATA_HOME": str(tmp_path / "data")})
    assert settings.record_dir == tmp_path / "data" / "wespoke-tui" / "recordings" and not settings.record_calls
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigError) as not_a_folder:
        load_settings(["call", "--no-tui", "--demo"], {"WESPOKE_RECORD": str(a_file)})
    assert not_a_folder.value.option == "--record (from WESPOKE_RECORD)" and "not a folder" in not_a_folder.value.message
    with pytest.raises(ConfigError) as chat:
        load_settings(["chat", "--no-tui", "--demo", "--record", str(tmp_path)], {})
    assert chat.value.option == "--record" and "--transcript" in chat.value.message


def test_a_turn_is_timed_only_to_an_answer_before_the_caller_speaks_again() -> None:
    from wespoke_tui.session.turns import TurnTimer

    turns = TurnTimer()
    loud, quiet = -20.0, -90.0
    # Turn 1 (0-1 s) gets no answer; turn 2 (2-3 s) is answered at 3.5 s.
    for n in range(250):
        at = n * FRAME
        speaking = n < 50 or 100 <= n < 150
        turns.add(CALLER, at, FRAME, loud if speaking else quiet)
        turns.add(ASSISTANT, at, FRAME, loud if 175 <= n < 200 else quiet)
    assert [(t["user_stopped_s"], t["response_ms"]) for t in turns.turns] == [(3.0, 500)]


def test_one_jittery_timestamp_keeps_the_side_in_place_two_in_a_row_move_it() -> None:
    timeline = StereoTimeline(lambda block: None, clock=FrozenClock(0.0))
    frame = tone(700, FRAME)
    step = FRAME / RATE
    starts = [timeline.add(ASSISTANT, frame, 0.0), timeline.add(ASSISTANT, frame, step)]
    starts.append(timeline.add(ASSISTANT, frame, 2 * step + 0.015))  # the loop woke 15 ms late once
    starts.append(timeline.add(ASSISTANT, frame, 3 * step))
    assert starts == [0, FRAME, 2 * FRAME, 3 * FRAME]
    # The device buffer grew by 30 ms: the first late frame stays, the second moves the side.
    late = [timeline.add(ASSISTANT, frame, (4 + n) * step + 0.03) for n in range(3)]
    assert late[0] == 4 * FRAME and late[1] == round(5 * FRAME + 0.03 * RATE) and late[2] == late[1] + FRAME
    # A pause in the speech (far beyond jitter) moves it at once.
    assert timeline.add(ASSISTANT, frame, 2.0) == 2 * RATE
