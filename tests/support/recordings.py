"""Stereo call recordings made up for the audio checks: the caller on the left, the assistant on
the right, written as the product's recorder writes them (StereoWavFile, and the `.json` summary
with `started_at`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tests.support.signals import voice_like
from wespoke_tui.audio.recording import StereoWavFile
from wespoke_tui.scenario.audio_checks import TurnSpan

RATE = 48_000
EPOCH = 1_760_000_000.25  # the recording's t=0 in epoch seconds
CALLER, ASSISTANT = 0, 1


class Call:
    """A stereo recording being made up: sounds put on either side at a time."""

    def __init__(self, seconds: float) -> None:
        self.stereo = np.zeros((round(seconds * RATE), 2), dtype=np.int16)

    def put(self, side: int, at_s: float, samples: np.ndarray) -> float:
        """Lay `samples` from `at_s`; returns where their speech ends as the runner has it (the
        sample after the last one above −40 dBFS), in seconds."""
        at = round(at_s * RATE)
        self.stereo[at:at + samples.size, side] = samples
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 328)
        return (at + (int(loud[-1]) + 1 if loud.size else samples.size)) / RATE

    def say(self, at_s: float, seconds: float) -> TurnSpan:
        """The caller speaks; the span of a spoken turn numbered later by `spans()`."""
        end = self.put(CALLER, at_s, voice_like(seconds))
        return TurnSpan(0, at_s, end)

    def answer(self, at_s: float, seconds: float, dbfs: float = -6.0) -> None:
        self.put(ASSISTANT, at_s, voice_like(seconds, dbfs))

    def write(self, directory: Path, started: float = EPOCH) -> Path:
        """The WAV with the product's writer, and the summary as CallRecording writes it."""
        wav = directory / "20251009-085320-call.wav"
        out = StereoWavFile(wav)
        for first in range(0, self.stereo.shape[0], RATE):  # in appends, as flushed during a call
            out.append(self.stereo[first:first + RATE])
        out.close()
        summary = {"call_id": "call", "assistant": "Test", "duration_s": self.stereo.shape[0] / RATE,
                   "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
                   "audio_seconds": self.stereo.shape[0] / RATE,
                   "files": {k: wav.with_suffix(f".{k}").name for k in ("wav", "jsonl", "txt", "json")}, "turns": []}
        wav.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return wav


def ten_minute_call() -> Call:
    """60 ten-second turns: the caller speaks 2 s, the answer comes 0.6 s later with 2.4 s of
    dead air inside it (2 s, a gap, 2 s more)."""
    block = Call(10.0)
    block.say(0.0, 2.0)
    block.answer(2.6, 2.0)
    block.answer(7.0, 2.0)
    call = Call(600.0)
    call.stereo[:] = np.tile(block.stereo, (60, 1))
    return call
