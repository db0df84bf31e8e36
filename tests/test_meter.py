"""The meter maths: RMS in dBFS of 10 ms frames, smoothing, peak hold, the publishing rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wespoke_tui.audio.base import FRAME_SAMPLES, SAMPLE_RATE
from wespoke_tui.audio.meter import SILENCE_DBFS, LevelMeter, RateLimiter, rms_dbfs


def sine_frames(freq: float, peak_dbfs: float, seconds: float) -> list[np.ndarray]:
    n = round(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    t = np.arange(n) / SAMPLE_RATE
    samples = np.round(32767 * 10 ** (peak_dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return list(samples.reshape(-1, FRAME_SAMPLES))


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3150.0])
def test_minus_20_dbfs_sine_reads_minus_23_rms(freq: float) -> None:
    for frame in sine_frames(freq, -20.0, 0.1):
        assert rms_dbfs(frame) == pytest.approx(-23.0, abs=1.0)
    meter = LevelMeter()
    for frame in sine_frames(freq, -20.0, 0.5):
        level = meter.update(frame)
    assert level.rms_dbfs == pytest.approx(-23.0, abs=1.0)
    assert level.peak_dbfs == pytest.approx(-23.0, abs=1.0)


def test_full_scale_sine_is_minus_3() -> None:
    frame = sine_frames(1000.0, 0.0, 0.01)[0]
    assert rms_dbfs(frame) == pytest.approx(-3.01, abs=0.05)
    as_float = frame.astype(np.float32) / 32768.0
    assert rms_dbfs(as_float) == pytest.approx(-3.01, abs=0.05)


def test_silence_reads_silence() -> None:
    zeros = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    lsb = np.tile(np.array([1, -1], dtype=np.int16), FRAME_SAMPLES // 2)  # the quietest non-zero signal
    assert rms_dbfs(zeros) == SILENCE_DBFS
    assert rms_dbfs(lsb) <= -60.0
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == SILENCE_DBFS
    meter = LevelMeter()
    for _ in range(50):
        level = meter.update(zeros)
    assert level.rms_dbfs <= -60.0 and level.peak_dbfs <= -60.0


def test_same_input_same_reading() -> None:
    """No randomness: two meters fed the same frames agree exactly."""
    frames = sine_frames(700.0, -12.0, 0.3)
    a, b = LevelMeter(), LevelMeter()
    assert [a.update(f) for f in frames] == [b.update(f) for f in frames]


def test_fast_attack_slow_release() -> None:
    meter = LevelMeter()
    loud = sine_frames(1000.0, -6.0, 0.01)[0]
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    level = meter.update(loud)
    assert level.rms_dbfs > -20.0, "a speech onset shows within one frame"
    after_release = [meter.update(quiet).rms_dbfs for _ in range(10)]
    assert all(x > y for x, y in zip(after_release, after_release[1:], strict=False)), "falls steadily"
    assert after_release[0] > -40.0, "does not drop to silence in 10 ms"


def test_peak_holds_then_falls() -> None:
    meter = LevelMeter(hold_s=0.5, fall_db_per_s=20.0)
    meter.update(sine_frames(1000.0, -6.0, 0.01)[0])
    peak = meter.level.peak_dbfs
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    for _ in range(50):  # 0.5 s of silence: held
        meter.update(quiet)
    assert meter.level.peak_dbfs == pytest.approx(peak)
    for _ in range(50):  # 0.5 s more: falls by ~10 dB
        meter.update(quiet)
    assert meter.level.peak_dbfs == pytest.approx(peak - 10.0, abs=0.5)
    meter.reset()
    assert meter.level.peak_dbfs == SILENCE_DBFS


@given(
    gain=st.floats(min_value=0.01, max_value=1.0),
    freq=st.floats(min_value=100.0, max_value=8000.0),
)
def test_gain_shifts_level_by_its_decibels(gain: float, freq: float) -> None:
    t = np.arange(FRAME_SAMPLES * 4) / SAMPLE_RATE
    base = 0.5 * np.sin(2 * np.pi * freq * t)
    assert rms_dbfs(base * gain) - rms_dbfs(base) == pytest.approx(20 * math.log10(gain), abs=1e-6)


def test_published_rate_is_bounded() -> None:
    """100 frames a second in, at most 30 events a second out (and not far fewer)."""
    limiter = RateLimiter(30.0)
    published = [t / 100 for t in range(1000) if limiter.ready(t / 100)]  # 10 s of 10 ms frames
    per_second = np.histogram(published, bins=10, range=(0, 10))[0]
    assert per_second.max() <= 30
    assert per_second.min() >= 20
    gaps = np.diff(published)
    assert gaps.min() >= 1 / 30 - 1e-9
