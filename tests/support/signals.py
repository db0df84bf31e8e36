"""Signals for the tests and their analysis: tones, WAV files, dominant frequency, level in dBFS.

numpy and the standard library only: the stack's test assistant (a process of its own) imports
this too. All int16 mono at 48 kHz unless a `rate` says otherwise."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48_000


# ---- WAV files --------------------------------------------------------------------------------


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """The samples (the first channel of a multi-channel file) and the rate."""
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        if wav.getnchannels() > 1:
            data = data.reshape(-1, wav.getnchannels())[:, 0]
        return data.copy(), wav.getframerate()


# ---- tones ------------------------------------------------------------------------------------


def sine(freq_hz: float, seconds: float, dbfs: float = -20.0, rate: int = RATE) -> np.ndarray:
    """An int16 sine whose PEAK is `dbfs` (so its RMS is `dbfs` - 3 dB), rounded."""
    t = np.arange(round(seconds * rate)) / rate
    amplitude = 32767.0 * 10 ** (dbfs / 20.0)
    return np.round(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def sine_at(freq: float, seconds: float, amplitude: float, start: int = 0, rate: int = RATE) -> np.ndarray:
    """An int16 sine of peak `amplitude` (a fraction of full scale), rounded, from sample index
    `start` on (so consecutive pieces join without a phase jump)."""
    n = np.arange(start, start + int(seconds * rate))
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * freq * n / rate)).astype(np.int16)


def tone(hz: float, seconds: float, amplitude: float = 8000, rate: int = RATE) -> np.ndarray:
    """An int16 sine of peak `amplitude` (in sample units), truncated toward zero."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype(np.int16)


def tone_wav(path: Path, seconds: float, hz: float = 300.0, amplitude: float = 8000,
             lead_s: float = 0.0, tail_s: float = 0.0) -> Path:
    """A mono 48 kHz WAV of `tone(hz, seconds, amplitude)`, after `lead_s` and before `tail_s` of silence."""
    samples = np.concatenate([np.zeros(int(lead_s * RATE), dtype=np.int16), tone(hz, seconds, amplitude),
                              np.zeros(int(tail_s * RATE), dtype=np.int16)])
    return write_wav(path, samples)


def voice_like(seconds: float, dbfs: float = -6.0, rate: int = RATE) -> np.ndarray:
    """An int16 stand-in for a voice whose PEAK is about `dbfs`: 200 ms syllables, each on its
    own pitch (150-330 Hz) with three harmonics, 50 ms of silence between them. Noise
    suppression takes a steady tone for noise and the echo canceller a tone like its echo for
    echo (both seen on a loaded machine); a caller's voice is neither, and nor is this."""
    syllable, gap = round(0.2 * rate), round(0.05 * rate)
    pitches = (150.0, 220.0, 190.0, 280.0, 170.0, 330.0, 240.0)
    t = np.arange(syllable) / rate
    envelope = np.sin(np.pi * np.arange(syllable) / syllable) ** 0.5
    parts: list[np.ndarray] = []
    total = round(seconds * rate)
    i = 0
    while sum(p.size for p in parts) < total:
        f0 = pitches[i % len(pitches)]
        wave_ = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
        parts += [envelope * wave_ / 1.84, np.zeros(gap)]
        i += 1
    signal = np.concatenate(parts)[:total]
    return np.round(32767.0 * 10 ** (dbfs / 20.0) * signal).astype(np.int16)


# ---- analysis ---------------------------------------------------------------------------------


def dominant_hz(samples: np.ndarray, rate: int = RATE, *, ignore_dc: bool = False) -> float:
    """The strongest frequency (Hann-windowed FFT), to the FFT bin. `ignore_dc` leaves out the
    0 Hz bin (a recording with an offset)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    if ignore_dc:
        spectrum[0] = 0
        return float(np.argmax(spectrum) * rate / samples.size)
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def rms_dbfs(samples: np.ndarray) -> float:
    """dBFS RMS of a stretch of samples, floored at -100 (full scale 32768)."""
    x = samples.astype(np.float64) / 32768.0
    return 10 * np.log10(max(float(np.mean(x * x)), 1e-10))


def power_dbfs(samples: np.ndarray) -> float:
    """dBFS RMS of a whole stretch of samples, floored at -96 (also when empty)."""
    if samples.size == 0:
        return -96.0
    power = float(np.mean((samples.astype(np.float64) / 32768.0) ** 2))
    return max(-96.0, 10 * np.log10(max(power, 1e-12)))


def frame_levels(samples: np.ndarray, frame: int = 480) -> np.ndarray:
    """dBFS RMS of each 10 ms frame (48 kHz), floored at -96."""
    n = samples.size // frame * frame
    power = (samples[:n].astype(np.float64).reshape(-1, frame) / 32768.0) ** 2
    return 10 * np.log10(np.maximum(power.mean(axis=1), 10 ** -9.6))
