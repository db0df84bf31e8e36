"""RMS level meter in dBFS with smoothing and a short peak hold, on int16 frames of any length.

The time constants are in seconds, so 10 ms frames (the WAV backend, the demo) and 20 ms
frames (the sound-device engine, the assistant's stream) read alike."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wespoke_tui.events import SILENCE_DBFS

FULL_SCALE = 32768.0


def mean_square(frame: np.ndarray) -> float:
    """Mean of the squared samples, full scale = 1.0 (int16 is scaled by 1/32768)."""
    if frame.size == 0:
        return 0.0
    samples = frame.astype(np.float64)
    scale = FULL_SCALE * FULL_SCALE if frame.dtype == np.int16 else 1.0
    return float(np.dot(samples, samples)) / (samples.size * scale)


def power_to_dbfs(power: float) -> float:
    if power <= 1e-10:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(power))


def rms_dbfs(frame: np.ndarray) -> float:
    """RMS of an int16 (or float in [-1, 1]) frame in dBFS; a full-scale sine reads -3 dBFS."""
    return power_to_dbfs(mean_square(frame))


@dataclass(frozen=True, slots=True)
class Level:
    rms_dbfs: float
    peak_dbfs: float


class LevelMeter:
    """Smoothed RMS with a peak that holds for `hold_s`, then falls at `fall_db_per_s`.

    The smoothing runs on the signal power (not on decibels) and attacks fast and releases
    slowly, like a VU meter: a speech onset shows within a frame or two (a dB-domain average
    would crawl up from the -96 dB floor), and the bar does not flicker between syllables.
    """

    def __init__(
        self,
        frame_s: float = 0.010,
        attack_s: float = 0.010,
        release_s: float = 0.150,
        hold_s: float = 0.5,
        fall_db_per_s: float = 20.0,
        sample_rate: int = 48_000,
    ) -> None:
        self._frame_s = frame_s
        self._attack_s = attack_s
        self._release_s = release_s
        self._hold_s = hold_s
        self._fall_db_per_s = fall_db_per_s
        self._sample_rate = sample_rate
        self._steps: dict[int, tuple[float, float, float]] = {}
        self._power = 0.0
        self._peak = SILENCE_DBFS
        self.last_frame_dbfs = SILENCE_DBFS
        self._held_s = 0.0

    def _step(self, samples: int) -> tuple[float, float, float]:
        """(attack, release, peak fall) for a frame of `samples`; `frame_s` when the size is unknown."""
        step = self._steps.get(samples)
        if step is None:
            seconds = samples / self._sample_rate if samples else self._frame_s
            step = (
                1.0 - math.exp(-seconds / self._attack_s),
                1.0 - math.exp(-seconds / self._release_s),
                seconds,
            )
            self._steps[samples] = step
        return step

    def update(self, frame: np.ndarray) -> Level:
        attack, release, seconds = self._step(frame.size)
        power = mean_square(frame)
        level = power_to_dbfs(power)
        self.last_frame_dbfs = level  # unsmoothed, for whoever needs this frame's own level
        self._power += (attack if power > self._power else release) * (power - self._power)
        if level >= self._peak:
            self._peak = level
            self._held_s = 0.0
        elif self._held_s < self._hold_s - 1e-9:
            self._held_s += seconds
        else:
            self._peak = max(SILENCE_DBFS, self._peak - self._fall_db_per_s * seconds, level)
        return self.level

    @property
    def level(self) -> Level:
        return Level(rms_dbfs=power_to_dbfs(self._power), peak_dbfs=self._peak)

    def reset(self) -> None:
        self._power = 0.0
        self._peak = SILENCE_DBFS
        self._held_s = 0.0


METER_HZ = 10.0
"""How often the levels reach the screen, at most. Each repaint of the two meters costs Textual
milliseconds of a core (its compositor and the terminal write, whatever the widget draws), so the
rate is the lowest that still moves smoothly to the eye (the native path's statistics and tap
come 10 times a second anyway); BENCHMARKS.md has what each rate costs."""


class RateLimiter:
    """Lets an event through at most `max_hz` times a second (by a monotonic clock)."""

    def __init__(self, max_hz: float) -> None:
        self._interval = 1.0 / max_hz
        self._next = 0.0

    def ready(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self._interval
        return True
