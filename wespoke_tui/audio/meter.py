"""RMS level meter in dBFS with smoothing and a short peak hold, on 10 ms int16 frames."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -96.0
FULL_SCALE = 32768.0


def rms_dbfs(frame: np.ndarray) -> float:
    """RMS of an int16 (or float in [-1, 1]) frame in dBFS; a full-scale sine reads -3 dBFS."""
    if frame.size == 0:
        return SILENCE_DBFS
    samples = frame.astype(np.float64)
    if frame.dtype == np.int16:
        samples /= FULL_SCALE
    mean_square = float(np.dot(samples, samples)) / samples.size
    if mean_square <= 1e-10:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square))


@dataclass(frozen=True, slots=True)
class Level:
    rms_dbfs: float
    peak_dbfs: float


class LevelMeter:
    """Smoothed RMS with a peak that holds for `hold_s`, then falls at `fall_db_per_s`.

    The smoothing attacks fast and releases slowly, like a VU meter: speech onsets show at
    once, and the bar does not flicker between syllables.
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
        self._rms = SILENCE_DBFS
        self._peak = SILENCE_DBFS
        self._held = 0

    def update(self, frame: np.ndarray) -> Level:
        level = rms_dbfs(frame)
        coeff = self._attack if level > self._rms else self._release
        self._rms += coeff * (level - self._rms)
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
        return Level(rms_dbfs=self._rms, peak_dbfs=self._peak)

    def reset(self) -> None:
        self._rms = SILENCE_DBFS
        self._peak = SILENCE_DBFS
        self._held = 0


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
