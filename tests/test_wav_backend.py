"""The WAV audio backend: format conversion, real-time pacing, time-aligned output."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.signals import dominant_hz
from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.meter import rms_dbfs
from wespoke_tui.audio.wav import WavBackend, read_wav_48k_mono, write_wav_48k_mono
from wespoke_tui.errors import MICROPHONE_ERROR, SPEAKER_ERROR, CallError


def _write(path: Path, samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def _tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (44100, 2), (48000, 1), (8000, 2)])
def test_any_rate_and_channels_becomes_48k_mono(tmp_path: Path, rate: int, channels: int) -> None:
    mono = _tone(440, 1.0, rate)
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    path = tmp_path / "in.wav"
    _write(path, (data * 32767).astype("<i2"), rate, channels)
    out = read_wav_48k_mono(path)
    assert out.dtype == np.int16
    assert abs(out.size - SAMPLE_RATE) <= 1
    assert abs(dominant_hz(out) - 440) < 2
    assert rms_dbfs(out) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)


def test_8_and_32_bit_wavs(tmp_path: Path) -> None:
    tone = _tone(1000, 0.5, 48000)
    _write(tmp_path / "u8.wav", (tone * 127 + 128).astype(np.uint8), 48000, width=1)
    _write(tmp_path / "i32.wav", (tone * (2**31 - 1)).astype("<i4"), 48000, width=4)
    for name in ("u8.wav", "i32.wav"):
        out = read_wav_48k_mono(tmp_path / name)
        assert abs(dominant_hz(out) - 1000) < 3
        assert rms_dbfs(out) == pytest.approx(-9.03, abs=0.3)


async def test_input_is_paced_in_real_time_then_silence(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    write_wav_48k_mono(path, (_tone(440, 0.2, SAMPLE_RATE) * 32767).astype(np.int16))
    mic = WavBackend(path, None).open_input()
    await mic.start()
    loop = asyncio.get_running_loop()
    begin = loop.time()
    frames = []
    async for frame in mic.frames():
        frames.append(frame)
        if len(frames) == 50:
            break
    elapsed = loop.time() - begin
    await mic.aclose()
    # 50 frames: the first at once, the 50th at 490 ms; a drift-free schedule stays within a few ms.
    assert 0.47 <= elapsed <= 0.53, elapsed
    assert all(f.size == FRAME_SAMPLES and f.dtype == np.int16 for f in frames)
    assert all(rms_dbfs(f) > -10 for f in frames[:20])  # the 200 ms tone
    assert all(rms_dbfs(f) == -96.0 for f in frames[20:])  # then silence


async def test_input_stops_when_closed(tmp_path: Path) -> None:
    mic = WavBackend(None, None).open_input()
    await mic.start()
    count = 0

    async def read() -> None:
        nonlocal count
        async for _ in mic.frames():
            count += 1

    loop = asyncio.get_running_loop()
    begin = loop.time()
    reader = asyncio.create_task(read())
    await asyncio.sleep(0.1)  # scenario: some ten frames' time, then close
    await mic.aclose()
    open_s = loop.time() - begin
    await asyncio.wait_for(reader, 0.5)
    # Paced by the clock while open (a late loop catches up, never runs ahead), none after.
    assert 3 <= count <= open_s * 100 + 2, (count, open_s)


async def test_unreadable_input_is_a_microphone_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    mic = WavBackend(bad, None).open_input()
    with pytest.raises(CallError) as info:
        await mic.start()
    assert info.value.code == MICROPHONE_ERROR


async def test_unwritable_output_is_a_speaker_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    out = WavBackend(None, tmp_path / "file" / "out.wav").open_output()
    with pytest.raises(CallError) as info:
        await out.start()
    assert info.value.code == SPEAKER_ERROR


async def test_output_is_time_aligned_and_clear_drops_the_queue(tmp_path: Path) -> None:
    """Each burst is laid where real time was when it was written (the loop's clock, read by the
    test beside each write: a busy machine wakes the loop late, and the file follows the clock, not
    the sleeps), and clear() drops what was queued beyond its own moment."""
    path = tmp_path / "out.wav"
    backend = WavBackend(None, path)
    out = backend.open_output()
    loop = asyncio.get_running_loop()
    await out.start()
    started = loop.time()
    tone = (_tone(440, 0.01, SAMPLE_RATE) * 20000).astype(np.int16)
    await asyncio.sleep(0.3)  # scenario: 300 ms (or more) of nothing, then a 50 ms burst
    first_at = loop.time() - started
    for _ in range(5):
        out.write(tone)
    await asyncio.sleep(0.2)  # scenario: a gap after the burst
    second_at = loop.time() - started
    for _ in range(30):  # 300 ms queued at once; most of it is dropped by clear()
        out.write(tone)
    await asyncio.sleep(0.05)  # scenario: some 50 ms of it played
    cleared_at = loop.time() - started
    out.clear()
    assert backend.health()["playback_underruns"] == 2
    await out.aclose()
    samples = read_wav_48k_mono(path)
    loud = np.flatnonzero(np.abs(samples) > 1000)
    assert loud[0] / SAMPLE_RATE == pytest.approx(first_at, abs=0.002)
    second = loud[loud > int((first_at + 0.1) * SAMPLE_RATE)]
    assert second[0] / SAMPLE_RATE == pytest.approx(second_at, abs=0.002)
    assert (second[-1] - second[0]) / SAMPLE_RATE == pytest.approx(min(cleared_at - second_at, 0.3), abs=0.003)
