"""The caller's side of a scenario: text spoken with espeak-ng, WAV files read, all as 48 kHz
mono int16 ready before the call starts."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.wav import read_wav_48k_mono

VOICES = {"en": "en-us", "tr": "tr"}  # a scenario's language (model.LANGS) → espeak-ng's voice
WPM = 160
SYNTH_TIMEOUT_S = 30.0


class SpeechError(Exception):
    """Why a turn's audio cannot be made; the message is for the user."""


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def voice_of(lang: str) -> str:
    return VOICES.get(lang, VOICES["en"])


def synthesize(text: str, lang: str) -> np.ndarray:
    """`text` spoken in `lang` (the turn's voice: `Scenario.voice`), at WPM words a minute."""
    if not espeak_available():
        raise SpeechError("espeak-ng is not installed: 'say' turns need it to speak "
                          "(Debian/Ubuntu: apt-get install espeak-ng), or give the audio with say_wav")
    voice = voice_of(lang)
    try:
        done = subprocess.run(["espeak-ng", "-v", voice, "-s", str(WPM), "--stdout", text],
                              capture_output=True, timeout=SYNTH_TIMEOUT_S, check=True)
    except subprocess.CalledProcessError as exc:
        said = exc.stderr.decode("utf-8", "replace").strip() if exc.stderr else f"exit status {exc.returncode}"
        raise SpeechError(f"espeak-ng could not speak {text!r} with the voice {voice!r} ({lang}): {said}") from None
    except (subprocess.SubprocessError, OSError) as exc:
        raise SpeechError(f"espeak-ng could not speak {text!r}: {exc}") from None
    with wave.open(io.BytesIO(done.stdout), "rb") as wav:
        rate, width = wav.getframerate(), wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width != 2:
        raise SpeechError(f"espeak-ng gave {width * 8}-bit audio; 16-bit was expected")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if rate != SAMPLE_RATE:
        positions = np.arange(int(samples.size * SAMPLE_RATE / rate)) * rate / SAMPLE_RATE
        samples = np.interp(positions, np.arange(samples.size), samples)
    return np.clip(samples, -32768, 32767).astype(np.int16)


def read_turn_wav(path: Path) -> np.ndarray:
    try:
        return read_wav_48k_mono(path)
    except (OSError, EOFError, ValueError, wave.Error) as exc:
        raise SpeechError(f"cannot read {path}: {exc}") from None
