"""Recording real calls (`--record DIR`): through LiveKit and the test assistant, headless on WAV
files and on the PulseAudio rig's devices, and a process killed mid-call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

from tests.bench import clicks
from tests.stack.assistant import GREETING_FREQ_HZ
from tests.stack.pulse_rig import read_wav, write_wav
from tests.test_headless import Headless
from wespoke_tui.audio.wav import write_wav_48k_mono

RATE = 48_000
CLICK_GAP_S = 1.5


def echo_delays_ms(heard: np.ndarray) -> list[float]:
    """In one recording holding each click twice (as it went in, then its echo): the delay of each
    echo. A click sent has its echo within half the gap after it; an echo has the next click sent
    more than half a gap after it (the round trip is well under that), so the two cannot be taken
    for each other even when a click was lost."""
    found = clicks.find_clicks(heard, clicks.click(), threshold=0.6, min_gap=int(0.05 * RATE))
    delays = []
    for first, second in zip(found, found[1:]):
        if int(0.005 * RATE) < second - first < int(CLICK_GAP_S / 2 * RATE):
            delays.append((second - first) * 1000 / RATE)
    return delays


def silence_then_tone(path: Path, lead_s: float, tone_s: float, hz: float) -> Path:
    t = np.arange(int(tone_s * RATE)) / RATE
    samples = np.concatenate([np.zeros(int(lead_s * RATE)), np.sin(2 * np.pi * hz * t) * 8000])
    write_wav_48k_mono(path, samples.astype(np.int16))
    return path


def read_stereo(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)


def dbfs(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768
    return 10 * np.log10(max(float(np.mean(x * x)), 1e-10))


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / RATE)[int(np.argmax(spectrum))])


def loud_runs(channel: np.ndarray, floor_dbfs: float = -40.0, block: int = 480) -> list[tuple[float, float]]:
    """(start_s, end_s) of the stretches louder than `floor_dbfs`, in 10 ms blocks."""
    n = channel.size // block
    levels = [dbfs(channel[i * block:(i + 1) * block]) for i in range(n)]
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
    await asyncio.sleep(4.0)
    run.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await asyncio.to_thread(run.proc.wait, 10)
    (wav_path,) = folder.glob("*.wav")
    audio = read_stereo(wav_path)  # a valid header, whatever moment the kill came
    seconds = audio.shape[0] / RATE
    print(f"killed {killed - recording_from:.2f} s after the call connected; the WAV holds {seconds:.2f} s")
    assert seconds >= (killed - recording_from) - 1.0
    assert dbfs(audio[-RATE // 2:, 0]) > -20  # it is the call's audio to the end, not padding
    summary = json.loads(wav_path.with_suffix(".json").read_text())
    assert summary["audio_seconds"] > 0


async def test_on_the_sound_devices_the_two_sides_are_aligned_as_heard(wespoke_stack, sound_rig, tmp_path: Path) -> None:
    """Clicks go into the microphone and, through a combine sink, straight into the speaker too, so
    one recording of the speaker holds each click as it entered the microphone and its echo as the
    app played it (the benchmark's round-trip method). The call's own recording must show the
    same delay between its caller and assistant channels, within 20 ms."""
    bus = sound_rig.pactl("load-module", "module-combine-sink", "sink_name=clickbus", "slaves=micfeed,speaker",
                          "rate=48000", "channels=1").strip()
    folder = tmp_path / "recordings"
    run = Headless(wespoke_stack.api, "--record", str(folder), "--no-aec", "--no-ns", "--no-agc")
    try:
        await asyncio.to_thread(run.wait_line, "Connected", 20.0)
        assistant = wespoke_stack.assistants[-1]
        await asyncio.to_thread(assistant.wait_for, "greeting_done", None, 20)
        await asyncio.sleep(0.8)
        train, _ = clicks.click_train(5, CLICK_GAP_S, lead_s=3.0)  # the lead lets the combine sink settle
        train_wav = write_wav(tmp_path / "clicks.wav", train)
        sound_rig.start_recording_speaker(tmp_path / "speaker.wav")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(subprocess.run, ["paplay", "--device=clickbus", "--latency-msec=20", str(train_wav)],
                                env={**os.environ, **sound_rig.env}, check=True, timeout=60)
        await asyncio.sleep(1.4)
        speaker = sound_rig.stop_recording()
    finally:
        run.proc.send_signal(signal.SIGINT)
        rc, err = await asyncio.to_thread(run.finish, 20)
        sound_rig.pactl("unload-module", bus)
    assert rc == 0, err
    assert speaker is not None
    heard, _ = read_wav(speaker)
    reference = echo_delays_ms(heard)
    (wav_path,) = folder.glob("*.wav")
    audio = read_stereo(wav_path)
    template = clicks.click()
    sent = clicks.find_clicks(audio[:, 0], template, threshold=0.6, min_gap=int(0.5 * RATE))
    score = clicks.correlate(audio[:, 1], template)
    recorded = []
    for onset in sent:
        lo, hi = onset + int(0.005 * RATE), min(onset + int(1.1 * RATE), score.size)
        best = lo + int(np.argmax(score[lo:hi]))
        if score[best] >= 0.3:
            recorded.append((best - onset) * 1000 / RATE)
    print(f"round trip as heard on the rig: {[round(d) for d in reference]} ms; "
          f"in the recording: {[round(d) for d in recorded]} ms")
    assert len(reference) >= 3 and len(recorded) >= 3, (reference, recorded)
    # Click by click: each round trip heard at the speaker is in the recording within 20 ms (the
    # two lists may each miss a click the other found, so each is matched to its nearest).
    assert all(min(abs(heard - kept) for kept in recorded) < 20 for heard in reference), (reference, recorded)
