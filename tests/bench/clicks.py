"""Clicks for the mouth-to-ear benchmark, and finding them again by cross-correlation.

A click is a short chirp (speech band, so noise suppression and the codec keep it); a train of
them, well apart, gives several measurements from one call.
"""

from __future__ import annotations

import numpy as np

RATE = 48_000
CLICK_MS = 40


def click(rate: int = RATE, dbfs: float = -6.0) -> np.ndarray:
    """A 40 ms linear chirp 400 → 3000 Hz with a Hann envelope, peak `dbfs`, int16."""
    n = rate * CLICK_MS // 1000
    t = np.arange(n) / rate
    f0, f1, dur = 400.0, 3000.0, n / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))
    wave = np.sin(phase) * np.hanning(n)
    return np.round(wave * 32767 * 10 ** (dbfs / 20)).astype(np.int16)


def click_train(count: int, gap_s: float, lead_s: float = 0.5, rate: int = RATE) -> tuple[np.ndarray, list[int]]:
    """`count` clicks `gap_s` apart after `lead_s` of silence; returns the samples and click onsets."""
    one = click(rate)
    gap = round(gap_s * rate)
    lead = round(lead_s * rate)
    out = np.zeros(lead + count * gap, dtype=np.int16)
    onsets = [lead + i * gap for i in range(count)]
    for at in onsets:
        out[at : at + len(one)] = one
    return out, onsets


def correlate(recording: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation envelope of `template` along `recording` (FFT)."""
    x = recording.astype(np.float64)
    h = template.astype(np.float64)[::-1]
    size = 1 << int(np.ceil(np.log2(len(x) + len(h))))
    full = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x) + len(h) - 1]
    valid = full[len(h) - 1 : len(x)]  # index i: template starting at sample i
    template_energy = float(np.dot(h, h))
    # Windows quieter than the click by 30 dB count as that quiet: digital silence must not
    # score as a perfect match of a vanishing signal.
    energy = np.maximum(np.convolve(x * x, np.ones(len(h)), mode="valid"), 1e-3 * template_energy)
    return np.abs(valid) / np.sqrt(energy * template_energy)


def find_clicks(recording: np.ndarray, template: np.ndarray, *, threshold: float = 0.5, min_gap: int) -> list[int]:
    """Onsets (samples) where the template matches above `threshold`, at least `min_gap` apart."""
    score = correlate(recording, template)
    found: list[int] = []
    order = np.argsort(score)[::-1]
    for i in order:
        if score[i] < threshold:
            break
        if all(abs(int(i) - f) >= min_gap for f in found):
            found.append(int(i))
    return sorted(found)


def round_trip_ms(
    recording: np.ndarray, direct_onsets: list[int], template: np.ndarray, *, window_s: float, rate: int = RATE,
    echoes: np.ndarray | None = None,
) -> list[tuple[float, float]]:
    """For each click heard directly at `direct_onsets`: (delay of its echo in ms, echo level in dB
    relative to the direct click), for echoes found within `window_s`.

    The echo is the best correlation peak between 5 ms and `window_s` after the direct click, in
    `echoes` (another channel of the same recording) or else in `recording` itself (the direct
    click excluded by that 5 ms); weak matches (score < 0.3) are skipped.
    """
    heard = recording if echoes is None else echoes
    score = correlate(heard, template)
    x = recording.astype(np.float64)
    y = heard.astype(np.float64)
    n = len(template)
    delays: list[tuple[float, float]] = []
    lo_off, hi_off = round(0.005 * rate), round(window_s * rate)
    for onset in direct_onsets:
        lo, hi = onset + lo_off, min(onset + hi_off, len(score))
        if hi <= lo:
            continue
        best = lo + int(np.argmax(score[lo:hi]))
        if score[best] >= 0.3:
            direct_energy = float(np.dot(x[onset : onset + n], x[onset : onset + n])) + 1e-9
            echo_energy = float(np.dot(y[best : best + n], y[best : best + n])) + 1e-9
            delays.append(((best - onset) * 1000.0 / rate, float(10 * np.log10(echo_energy / direct_energy))))
    return delays
