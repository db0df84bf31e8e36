"""RMS level meter in dBFS with smoothing and a short peak hold, on 10 ms int16 frames."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -96.0
FULL_SCALE = 32768.0


def mean_square(frame: np.ndarray) -> float:
    """Mean of the squared samples, full scale = 1.0 (int16 is scaled by 1/32768)."""
    if frame.size == 0:
        return 0.0
    samples = frame.astype(np.float64)
    if frame.dtype == np.int16:
        samples /= FULL_SCALE
    return float(np.dot(samples, samples)) / samples.size


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
    ) -> None:
        self._frame_s = frame_s
        self._attack = 1.0 - math.exp(-frame_s / attack_s)
        self._release = 1.0 - math.exp(-frame_s / release_s)
        self._hold_frames = round(hold_s / frame_s)
        self._fall_per_frame = fall_db_per_s * frame_s
        self._power = 0.0
        self._peak = SILENCE_DBFS
        self._held = 0

    def update(self, frame: np.ndarray) -> Level:
        power = mean_square(frame)
        level = power_to_dbfs(power)
        coeff = self._attack if power > self._power else self._release
        self._power += coeff * (power - self._power)
        if level >= self._peak:
            self._peak = level
            self._held = 0
        elif self._held < self._hold_frames:
            self._held += 1
        else:
            self._peak = max(SILENCE_DBFS, self._peak - self._fall_per_frame, level)
        return self.level

    @property
    def level(self) -> Level:
        return Level(rms_dbfs=power_to_dbfs(self._power), peak_dbfs=self._peak)

    def reset(self) -> None:
        self._power = 0.0
        self._peak = SILENCE_DBFS
        self._held = 0


METER_HZ = 20.0
"""How often a level reaches the screen: smooth to the eye at a third of the repaints of 60 Hz."""


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
