"""Recording real calls (`--record DIR`): through LiveKit and the test assistant, headless on WAV
files and on the PulseAudio rig's devices, and a process killed mid-call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import types
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.bench import clicks
from tests.stack.assistant import GREETING_FREQ_HZ
from tests.stack.probe import Probe, read_stereo_raw
from tests.stack.pulse_rig import PulseRigError
from tests.support.signals import dominant_hz, rms_dbfs, write_wav
from tests.support.waiting import eventually
from tests.test_headless import Headless
from wespoke_tui.audio import capture as capture_module
from wespoke_tui.audio.capture import SoundDeviceCapture
from wespoke_tui.audio.clock import DeviceClock
from wespoke_tui.audio.recording import CALLER, StereoTimeline
from wespoke_tui.audio.wav import write_wav_48k_mono
from wespoke_tui.i18n import Texts
from wespoke_tui.session.recording import CallRecorder

RATE = 48_000
CLICK_GAP_S = 1.5


def silence_then_tone(path: Path, lead_s: float, tone_s: float, hz: float) -> Path:
    t = np.arange(int(tone_s * RATE)) / RATE
    samples = np.concatenate([np.zeros(int(lead_s * RATE)), np.sin(2 * np.pi * hz * t) * 8000])
    write_wav_48k_mono(path, samples.astype(np.int16))
    return path


def read_stereo(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)


def loud_runs(channel: np.ndarray, floor_dbfs: float = -40.0, block: int = 480) -> list[tuple[float, float]]:
    """(start_s, end_s) of the stretches louder than `floor_dbfs`, in 10 ms blocks."""
    n = channel.size // block
    levels = [rms_dbfs(channel[i * block:(i + 1) * block]) for i in range(n)]
    runs, start = [], None
    for i, level in enumerate([*levels, -120.0]):
        if level > floor_dbfs and start is None:
            start = i
        elif level <= floor_dbfs and start is not None:
            runs.append((start * block / RATE, i * block / RATE))
            start = None
    return runs


async def test_a_recorded_call_holds_what_was_sent_and_what_was_played(wespoke_stack, tmp_path: Path) -> None:
    sent = silence_then_tone(tmp_path / "in.wav", 3.0, 1.5, 300.0)
    played = tmp_path / "out.wav"
    folder = tmp_path / "recordings"
    run = Headless(wespoke_stack.api, "--input-wav", str(sent), "--output-wav", str(played), "--record", str(folder),
                   "--duration", "7")
    rc, err = await asyncio.to_thread(run.finish, 30)
    assert rc == 0, err
    (wav_path,) = folder.glob("*.wav")
    (record,) = wespoke_stack.api.calls.values()
    assert wav_path.name.endswith(f"-{record.call_id}.wav")
    assert f"Recording to {wav_path}" in run.lines and f"Recording saved: {wav_path}" in run.lines
    audio = read_stereo(wav_path)
    left, right = audio[:, 0], audio[:, 1]
    # Left: what was sent, the 300 Hz tone and silence around it; right: the greeting, then the echo.
    sent_runs = loud_runs(left)
    assert len(sent_runs) == 1, sent_runs
    (tone_run,) = sent_runs
    assert abs((tone_run[1] - tone_run[0]) - 1.5) < 0.05, tone_run
    # Sample for sample what the WAV sent (the WAV backend has no audio processing).
    with wave.open(str(sent), "rb") as source:
        sent_samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    s0, l0 = np.flatnonzero(sent_samples)[0], np.flatnonzero(left)[0]
    n = int(1.4 * RATE)
    assert np.array_equal(left[l0:l0 + n], sent_samples[s0:s0 + n])
    runs = loud_runs(right)
    greeting = right[int(runs[0][0] * RATE):int(runs[0][1] * RATE)]
    assert abs(dominant_hz(greeting) - GREETING_FREQ_HZ) < 3
    echo = next(run_ for run_ in runs if run_[0] >= tone_run[0])
    delay = echo[0] - tone_run[0]
    assert 0.02 < delay < 1.0, runs  # the echo comes after what it echoes, on the same timeline
    echoed = right[int(echo[0] * RATE):int(echo[0] * RATE) + RATE]
    assert abs(dominant_hz(echoed) - 300) < 3
    # The transcript files and the summary.
    summary = json.loads(wav_path.with_suffix(".json").read_text())
    assert summary["call_id"] == record.call_id and summary["assistant"] == "Test Assistant"
    assert abs(summary["audio_seconds"] - audio.shape[0] / RATE) < 0.01 and summary["audio_seconds"] > 5
    # The echo assistant answers while the caller still speaks: no turn is taken, none is counted.
    assert summary["turns"] == []
    text = wav_path.with_suffix(".txt").read_text()
    assert "Merhaba, size nasıl yardımcı olabilirim?" in text and "lookup_weather" in text
    lines = [json.loads(line) for line in wav_path.with_suffix(".jsonl").read_text().splitlines()]
    assert all(isinstance(r["timestamp"], float) and r["t"] >= 0 for r in lines)
    print(f"recorded {audio.shape[0] / RATE:.2f} s; tone sent at {tone_run[0]:.3f} s, echo heard {delay * 1000:.0f} ms later")


async def test_a_call_killed_mid_way_leaves_a_readable_recording_up_to_the_last_second(wespoke_stack, tmp_path: Path) -> None:
    sent = silence_then_tone(tmp_path / "in.wav", 0.5, 20.0, 300.0)
    folder = tmp_path / "recordings"
    run = Headless(wespoke_stack.api, "--input-wav", str(sent), "--output-wav", str(tmp_path / "out.wav"),
                   "--record", str(folder))
    await asyncio.to_thread(run.wait_line, "Connected", 20.0)
    recording_from = time.monotonic()
    await asyncio.sleep(4.0)  # scenario: the app is killed 4 s into the call
    run.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await asyncio.to_thread(run.proc.wait, 10)
    (wav_path,) = folder.glob("*.wav")
    audio = read_stereo(wav_path)  # a valid header, whatever moment the kill came
    seconds = audio.shape[0] / RATE
    print(f"killed {killed - recording_from:.2f} s after the call connected; the WAV holds {seconds:.2f} s")
    assert seconds >= (killed - recording_from) - 1.0
    assert rms_dbfs(audio[-RATE // 2:, 0]) > -20  # it is the call's audio to the end, not padding
    summary = json.loads(wav_path.with_suffix(".json").read_text())
    assert summary["audio_seconds"] > 0


def round_trips_ms(stereo: np.ndarray) -> list[tuple[float, float | None]]:
    """For each click in the left channel: (its time in s, the delay in ms to the best match of it
    in the right channel after it, within the gap, or None when nothing there is like it)."""
    template = clicks.click()
    sent = clicks.find_clicks(stereo[:, 0], template, threshold=0.6, min_gap=int(CLICK_GAP_S / 2 * RATE))
    score = clicks.correlate(stereo[:, 1], template)
    trips: list[tuple[float, float | None]] = []
    for onset in sent:
        lo, hi = onset + int(0.005 * RATE), min(onset + int(CLICK_GAP_S * RATE), score.size)
        best = lo + int(np.argmax(score[lo:hi])) if hi > lo else None
        trips.append((onset / RATE, None if best is None or score[best] < 0.3 else (best - onset) * 1000 / RATE))
    return trips


def same_clicks(heard: list[tuple[float, float | None]], heard_from: float,
                kept: list[tuple[float, float | None]], kept_from: float) -> list[tuple[float, float]]:
    """(heard, kept) round trips of the clicks found in both, each matched by when it came (wall
    clock, from each recording's start, to well within the gap between clicks): a click the call
    lost on a busy machine leaves no gap for the others to slide into."""
    pairs = []
    for at, kept_ms in kept:
        near = [ms for when, ms in heard if abs((heard_from + when) - (kept_from + at)) < CLICK_GAP_S / 2]
        if near and near[0] is not None and kept_ms is not None:
            pairs.append((near[0], kept_ms))
    return pairs


async def test_on_the_sound_devices_the_two_sides_are_aligned_as_heard(
    wespoke_stack, sound_rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clicks go into the microphone and come back from the echo assistant; one recording of the
    rig holds each click as it entered the microphone and its echo as the app played it (`Probe`).
    The call's own recording must show the same delay between its caller and assistant channels,
    click by click, within 20 ms."""
    probe = Probe(sound_rig).load()
    # The app's devices are its defaults: the probe's, for this app only.
    monkeypatch.setenv("PULSE_SOURCE", "probe_mic_src")
    monkeypatch.setenv("PULSE_SINK", "probe_speaker")
    folder = tmp_path / "recordings"
    raw = tmp_path / "probe.raw"
    recorder: subprocess.Popen[bytes] | None = None
    run = Headless(wespoke_stack.api, "--record", str(folder), "--no-aec", "--no-ns", "--no-agc")
    try:
        await asyncio.to_thread(run.wait_line, "Connected", 20.0)
        assistant = wespoke_stack.assistants[-1]
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        await asyncio.sleep(0.8)  # a window: the greeting's tail plays out before the clicks
        train, _ = clicks.click_train(5, CLICK_GAP_S, lead_s=0.5)
        train_wav = write_wav(tmp_path / "clicks.wav", train)
        probe_from = time.time()
        recorder = probe.record(raw)
        await eventually(lambda: raw.exists() and raw.stat().st_size > 0, timeout=5, what="the probe recording")
        await asyncio.to_thread(probe.play_into_mic, train_wav)
        await asyncio.sleep(1.4)  # a window: the last click's echo comes back (within the 1.5 s gap)
    finally:
        if recorder is not None:
            recorder.terminate()
            recorder.wait(5)
        run.proc.send_signal(signal.SIGINT)
        rc, err = await asyncio.to_thread(run.finish, 20)
        with contextlib.suppress(PulseRigError):
            probe.unload()
    assert rc == 0, err
    reference = round_trips_ms(read_stereo_raw(raw))
    (wav_path,) = folder.glob("*.wav")
    recorded = round_trips_ms(read_stereo(wav_path))
    started = datetime.fromisoformat(json.loads(wav_path.with_suffix(".json").read_text())["started_at"]).timestamp()
    print(f"round trip as heard on the rig: {[ms and round(ms) for _, ms in reference]} ms; "
          f"in the recording: {[ms and round(ms) for _, ms in recorded]} ms")
    both = same_clicks(reference, probe_from, recorded, started)
    assert len(both) >= 3, (reference, recorded)
    # Click by click: each round trip heard on the rig is in the recording within 20 ms.
    assert all(abs(kept - heard) < 20 for heard, kept in both), both


# ---- the microphone's timestamps, which the caller's side of a recording is laid by ----------------

BLOCK_S = 0.02
BLOCK = int(BLOCK_S * RATE)


def pulse_like_wander(t: float) -> float:
    """What PulseAudio's ALSA plugin adds to a capture block's true latency, as measured on the
    rig: up to 40 ms over a stream's first 4 s, back in steps by 8 s."""
    return 0.010 * min(t, 4.0) - 0.010 * min(max(t - 4.0, 0.0) // 1.0, 4.0)


def stamps(clock: DeviceClock, blocks: int, *, entered, handed, reported, overflow_at: int | None = None) -> list[float]:
    """The clock's time for each block's first sample; `entered(k)` is the truth."""
    out = []
    for k in range(blocks):
        now = handed(k)
        out.append(clock.first_sample_at(now, BLOCK, reported(k, now), overflow=k == overflow_at))
    return out


def test_the_microphone_is_timed_by_its_sample_clock_not_by_portaudios_wandering_adc_times() -> None:
    t0 = 100.0
    rng = np.random.default_rng(7)
    late = rng.exponential(0.001, 1000) + np.where(rng.random(1000) < 0.02, 0.015, 0.0)  # a busy machine's

    def entered(k: int) -> float:
        return t0 + k * BLOCK_S

    def handed(k: int) -> float:
        return entered(k) + BLOCK_S + 0.0105 + late[k]

    got = stamps(DeviceClock(RATE), 1000, entered=entered, handed=handed,
                 reported=lambda k, now: now - entered(k) + pulse_like_wander(k * BLOCK_S))
    errors_ms = [abs(at - entered(k)) * 1000 for k, at in enumerate(got)]
    assert max(errors_ms) < 1.5
    # What PortAudio's ADC times alone said: off by the wander.
    assert max(pulse_like_wander(k * BLOCK_S) for k in range(1000)) * 1000 == pytest.approx(40)


def test_the_microphone_clock_follows_a_drifting_device_not_a_deeper_buffer_and_starts_over_after_an_overflow() -> None:
    t0 = 100.0
    ppm = 100e-6

    # A device clock 100 ppm slow against ours, for 60 s: 6 ms by the end, followed.
    def entered(k: int) -> float:
        return t0 + k * BLOCK_S * (1 + ppm)

    got = stamps(DeviceClock(RATE), 3000, entered=entered, handed=lambda k: entered(k) + 0.03,
                 reported=lambda k, now: now - entered(k))
    assert max(abs(at - entered(k)) for k, at in enumerate(got)) * 1000 < 1.0

    # The server buffers one period more for 8 s: the blocks come later, no sample moved.
    def handed(k: int) -> float:
        return t0 + k * BLOCK_S + 0.03 + (0.02 if 250 <= k < 650 else 0.0)

    got = stamps(DeviceClock(RATE), 1000, entered=lambda k: t0 + k * BLOCK_S, handed=handed,
                 reported=lambda k, now: now - (t0 + k * BLOCK_S))
    assert max(abs(at - (t0 + k * BLOCK_S)) for k, at in enumerate(got)) * 1000 < 3.0

    # 100 ms of input lost at block 500: the blocks after it are 100 ms later, and so are their times.
    def lost(k: int) -> float:
        return t0 + k * BLOCK_S + (0.1 if k >= 500 else 0.0)

    got = stamps(DeviceClock(RATE), 800, entered=lost, handed=lambda k: lost(k) + 0.03,
                 reported=lambda k, now: now - lost(k), overflow_at=500)
    assert max(abs(at - lost(k)) for k, at in enumerate(got)) * 1000 < 1.0


def test_the_capture_stamps_its_frames_with_its_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock_now = [50.0]
    monkeypatch.setattr(capture_module, "time", types.SimpleNamespace(monotonic=lambda: clock_now[0]))
    capture = SoundDeviceCapture(None, None)
    capture._clock = DeviceClock(RATE)
    status = types.SimpleNamespace(input_overflow=False)
    block = np.zeros((BLOCK, 1), dtype=np.int16)
    for k in range(200):
        clock_now[0] = 50.0 + (k + 1) * BLOCK_S + 0.01
        wander = pulse_like_wander(k * BLOCK_S)
        adc = 50.0 + k * BLOCK_S - wander  # PortAudio's ADC time, in its own clock (here: ours + 1000 s)
        capture._callback(block, BLOCK, types.SimpleNamespace(currentTime=clock_now[0] + 1000, inputBufferAdcTime=adc + 1000), status)
    times = [at for _, at in capture._frames]
    assert len(times) == capture._queue_frames  # the newest frames; the reader never came
    first = 200 - len(times)
    assert max(abs(at - (50.0 + (first + i) * BLOCK_S)) for i, at in enumerate(times)) < 0.0015


def test_input_lost_from_the_microphone_moves_the_callers_side_at_once(tmp_path: Path) -> None:
    """The microphone's times are on its sample clock: a frame 20 ms after the last one's end
    follows 20 ms of lost input, and is laid there, not where the lost audio was (which one
    jittery timestamp of the loop's would get, `exact` or not)."""
    now = [0.0]
    recorder = CallRecorder(tmp_path, Texts("en"), lambda event: None, clock=lambda: now[0])
    assert recorder.start("call", "Test Assistant")
    frames = [np.full(BLOCK, 1000 * (k + 1), dtype=np.int16) for k in range(6)]
    heard = [k * BLOCK_S for k in range(3)] + [(k + 1) * BLOCK_S for k in range(3, 6)]  # frame 3 lost
    for frame, at in zip(frames, heard):
        now[0] = at + BLOCK_S
        recorder.mic(frame, False, at)
    recorder.stop()
    (wav_path,) = tmp_path.glob("*.wav")
    left = read_stereo(wav_path)[:, 0]
    starts = [int(np.flatnonzero(left == frame[0])[0]) for frame in frames]
    assert starts == [round(at * RATE) for at in heard]
    # What the loop's own times (the jitter rule) do with the same frames: the first one after the
    # gap is laid where the lost one was.
    timeline = StereoTimeline(lambda block: None, clock=lambda: 0.0)
    jittery = [timeline.add(CALLER, frame, at) for frame, at in zip(frames, heard)]
    assert jittery[3] == 3 * BLOCK and jittery[4] == 5 * BLOCK
