"""A call's audio as one stereo WAV, caller left and assistant right, time-aligned as heard.

Each side's frames are laid on one timeline (48 kHz samples from the first frame) at the moment
they were heard: the caller's when the microphone took them, the assistant's when the speaker
plays them. A side's frames follow each other sample for sample (a device's clock is steadier
than our timestamps); the timestamp moves a side only when it has drifted more than
`REANCHOR_S` from that in two frames running, as after a gap in the assistant's speech or a
stall (a single frame off by less than `JITTER_S` is the event loop's jitter, not a move).

`flush()` writes what both sides have settled (everything older than `SETTLE_S`) and rewrites
the RIFF sizes, so a process killed mid-call leaves a valid WAV up to its last flush (the session
flushes every `FLUSH_INTERVAL_S`: the WAV lags the call by less than a second).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from wespoke_tui.audio.base import SAMPLE_RATE

CALLER, ASSISTANT = 0, 1
REANCHOR_S = 0.01
JITTER_S = 0.05  # a frame off by less than this (but more than REANCHOR_S) may be the loop's jitter
SETTLE_S = 0.3  # a frame heard longer ago than this is written; later ones may still arrive
FLUSH_INTERVAL_S = 0.5


class StereoWavFile:
    """A 16-bit stereo WAV written in appends, whose header is always valid after `append`."""

    def __init__(self, path: Path, rate: int = SAMPLE_RATE) -> None:
        self.path = path
        self.rate = rate
        self.frames = 0
        self._file: BinaryIO = open(path, "wb")
        self._file.write(self._header())
        self._file.flush()

    def append(self, stereo: np.ndarray) -> None:
        """`stereo`: int16 of shape (n, 2)."""
        if stereo.size:
            self._file.seek(0, 2)
            self._file.write(np.ascontiguousarray(stereo, dtype="<i2").tobytes())
            self.frames += stereo.shape[0]
        self._file.seek(0)
        self._file.write(self._header())
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def _header(self) -> bytes:
        data = self.frames * 4
        return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
                + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, self.rate, self.rate * 4, 4, 16)
                + b"data" + struct.pack("<I", data))


class StereoTimeline:
    """Places both sides' frames on one timeline and hands settled stretches to `sink`."""

    def __init__(self, sink: Callable[[np.ndarray], None], *, clock: Callable[[], float] = time.monotonic,
                 rate: int = SAMPLE_RATE) -> None:
        self._sink = sink
        self._clock = clock
        self.rate = rate
        self.origin: float | None = None  # the clock's time of sample 0
        self._written = 0  # samples handed to the sink
        self._next: list[int | None] = [None, None]  # where each side's next frame goes
        self._off: list[int] = [0, 0]  # the direction (+1/-1) the side's last frame was off by, or 0
        self._pieces: list[list[tuple[int, np.ndarray]]] = [[], []]

    def add(self, side: int, frame: np.ndarray, heard_at: float, *, exact: bool = False) -> int:
        """Lay `frame` (int16 mono) heard at `heard_at`; returns the sample it starts at.

        `exact`: the time is on the device's own sample clock (a microphone's, a file's), not
        jittery, so a frame off from the last one's end is a gap (input lost): it moves the side
        at once, instead of being laid where the lost audio was (the jitter rule below)."""
        if self.origin is None:
            self.origin = heard_at
        at = round((heard_at - self.origin) * self.rate)
        expected = self._next[side]
        if expected is not None:
            off = at - expected
            direction = 0 if abs(off) <= REANCHOR_S * self.rate else (1 if off > 0 else -1)
            # One timestamp a little late or early is the loop's jitter; two in a row the same way,
            # or one far off, is the side having really moved (a gap in the speech, a deeper
            # device buffer).
            if direction == 0 or (not exact and direction != self._off[side] and abs(off) <= JITTER_S * self.rate):
                at = expected
            self._off[side] = direction
        at = max(at, 0)
        self._next[side] = at + frame.size
        self._pieces[side].append((at, frame))
        return at

    def seconds(self, sample: int) -> float:
        return sample / self.rate

    def flush(self, *, final: bool = False) -> None:
        """Hand over everything before `now - SETTLE_S` (all of it when `final`)."""
        if self.origin is None:
            return
        if final:
            ends = [at + f.size for pieces in self._pieces for at, f in pieces]
            upto = max([self._written, *ends])
        else:
            upto = round((self._clock() - SETTLE_S - self.origin) * self.rate)
        if upto <= self._written:
            return
        block = np.zeros((upto - self._written, 2), dtype=np.int16)
        for side, pieces in enumerate(self._pieces):
            kept = []
            for at, frame in pieces:
                start, end = max(at, self._written), min(at + frame.size, upto)
                if start < end:
                    block[start - self._written:end - self._written, side] = frame[start - at:end - at]
                if at + frame.size > upto:
                    kept.append((at, frame))
            self._pieces[side] = kept
        self._written = upto
        self._sink(block)
