"""What the speaker played, block by block, stamped when it is heard: the assistant's side of a
recording as heard, not as written.

A frame handed to the playback is heard later by however much the jitter buffer and the device
hold then, and on a busy machine by more: an underflow (the callback came too late) puts a gap of
silence into the speaker that no writer sees, and a trim skips audio it wrote. Stamping frames
when they are written moves the assistant's side of a recording under load (by how much: see
BENCHMARKS.md). So the
playback callback hands each block it gave the device (fades, trims and silence included) to a
`PlayedTap`, stamped on the stream's own clock (`DeviceClock`), and the session drains it.

The rule: the callback only appends to a bounded deque (never blocks, never allocates beyond one
block's copy); everything else, resampling to 48 kHz included, is the draining side's.
"""

from __future__ import annotations

import collections

import numpy as np

from wespoke_tui.audio.base import SAMPLE_RATE
from wespoke_tui.audio.clock import DeviceClock

KEEP_S = 2.0  # undrained blocks beyond this are dropped (oldest first)
WARMUP_S = 0.15  # past the time a new stream's timestamps take to settle (`DeviceClock`; BENCHMARKS.md)


class PlayedTap:
    """Blocks a speaker stream played, each with when its first sample is heard."""

    def __init__(self, rate: int, block: int) -> None:
        self.rate = rate
        self.clock = DeviceClock(rate, warmup_s=WARMUP_S)
        self.on = False
        self._blocks: collections.deque[tuple[float, np.ndarray]] = collections.deque(
            maxlen=max(1, int(KEEP_S * rate / max(1, block)))
        )

    def restart(self) -> None:
        """A new stream (a reopen): its samples count from zero again."""
        self.clock = DeviceClock(self.rate, warmup_s=WARMUP_S)

    def played(self, now: float, block: np.ndarray, latency: float, *, underflow: bool) -> None:
        """On the device's thread: `block` was handed to the device at `now`, its first sample
        `latency` s from the speaker; `underflow`: the device ran dry before it."""
        heard_at = self.clock.first_sample_at(now, block.size, -latency, overflow=underflow)
        if self.on:
            self._blocks.append((heard_at, block.copy()))

    def set_on(self, on: bool) -> None:
        """Keep blocks (a recording is on) or not; turning it on starts from the next block."""
        if on and not self.on:
            self._blocks.clear()
        self.on = on

    def drain(self) -> list[tuple[float, np.ndarray]]:
        """The blocks played since the last drain, at 48 kHz, oldest first."""
        out: list[tuple[float, np.ndarray]] = []
        while self._blocks:
            heard_at, block = self._blocks.popleft()
            out.append((heard_at, to_48k(block, self.rate)))
        return out


def to_48k(block: np.ndarray, rate: int) -> np.ndarray:
    """`block` (int16 at `rate`) at 48 kHz. Blocks are whole 10 ms of a rate divisible by 100, so
    each converts on its own to a whole number of samples; linear interpolation, which is enough
    for a recording of speech (the call itself never goes through this)."""
    if rate == SAMPLE_RATE or block.size == 0:
        return block
    n_out = round(block.size * SAMPLE_RATE / rate)
    positions = np.arange(n_out, dtype=np.float64) * (rate / SAMPLE_RATE)
    return np.interp(positions, np.arange(block.size), block.astype(np.float64)).round().astype(np.int16)
