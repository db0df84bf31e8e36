"""A sound device stream's own clock: when each callback's samples were (or will be) heard.

The device's sample count, not PortAudio's per-callback timestamps, lays a stream's samples in
time; the timestamps only anchor it (`DeviceClock`). The microphone's capture and the speaker's
playback both use it, so a recording's two sides are on the same footing.
"""

from __future__ import annotations

import collections


class DeviceClock:
    """When the first sample of each callback's block entered the microphone, or reaches the
    speaker (monotonic seconds), on the stream's own sample clock.

    PortAudio gives each callback the ADC time of its block, but through PulseAudio's ALSA plugin
    that is the server's interpolated latency, which wanders by tens of milliseconds over a
    stream's first seconds while the blocks themselves come steadily, and timestamps taken from
    it put the caller's side of a recording off by as much (the rig's figures: see
    BENCHMARKS.md).

    A block's samples follow the previous block's on the device's clock, so a stream has one
    anchor, when its sample 0 entered the microphone: the earliest of what the first callbacks' ADC
    times say (`SETTLE_S`), each taken against our clock when the callback ran. A callback can run
    late (waiting for the GIL or the scheduler on a busy machine), never early, and a late one
    says sample 0 came later than it did: on a loaded machine the median of them put the caller's
    side of a recording late (by how much: see BENCHMARKS.md). The anchor moves only as the
    device's clock drifts against ours, which shows in when the callbacks come relative to the
    samples before them (the earliest of the last `WINDOW_S`: a callback can be late, never
    early), followed no faster than a clock drifts (`MAX_DRIFT`): the callbacks also come a
    period later for seconds at a time when the server buffers more, which moves no sample. An
    overflow (input lost) starts over."""

    SETTLE_S = 0.1
    WINDOW_S = 2.0
    MAX_DRIFT = 300e-6  # s/s: a sound card's crystal is off by well under 100 ppm

    def __init__(self, rate: int, *, warmup_s: float = 0.0) -> None:
        """`warmup_s`: how long after the stream starts its timestamps are not yet to be trusted
        (a speaker's: PortAudio reports 0 latency for the first callbacks, which come in a burst
        to fill the device's buffer, then a growing latency as it fills, until it settles; the
        rig's figures: see BENCHMARKS.md). Until then a block is stamped by its own timestamp,
        and nothing is anchored on it."""
        self.rate = rate
        self.warmup_s = warmup_s
        self._reset()

    def _reset(self) -> None:
        self._samples = 0  # handed over before this callback, at the device's rate
        self._started: float | None = None
        self._anchors: list[float] = []  # what each settling callback's ADC time says of sample 0
        self._anchor: float | None = None
        self._earliest: collections.deque[tuple[float, float]] = collections.deque()  # (now, schedule), ascending
        self._settled_schedule = 0.0
        self._drift = 0.0
        self._drift_at = 0.0

    def first_sample_at(self, now: float, frames: int, latency: float, *, overflow: bool = False) -> float:
        """This callback's block: `frames` samples handed over at `now`, the first of them `latency`
        old by the device's account (a microphone's); a speaker's block is heard in the future, so
        its latency is given negative. `overflow`: the stream lost samples (input lost, or output
        the device ran out of and filled with silence), which starts the clock over."""
        if overflow:
            self._reset()
        if self._started is None:
            self._started = now
        offset = self._samples / self.rate
        self._samples += frames
        if now - self._started < self.warmup_s:
            self._samples = 0  # sample 0 is the first block after the warm-up
            return now - latency
        schedule = now - offset  # when sample 0 was handed over, by this callback
        while self._earliest and self._earliest[-1][1] >= schedule:
            self._earliest.pop()
        self._earliest.append((now, schedule))
        while self._earliest[0][0] < now - self.WINDOW_S:
            self._earliest.popleft()
        if self._anchor is None:
            self._anchors.append(now - latency - offset)
            anchor = min(self._anchors)
            if now - self._started >= self.warmup_s + self.SETTLE_S:
                self._anchor, self._settled_schedule, self._drift_at = anchor, self._earliest[0][1], now
            return anchor + offset
        most = self.MAX_DRIFT * (now - self._drift_at)
        self._drift += min(most, max(-most, self._earliest[0][1] - self._settled_schedule - self._drift))
        self._drift_at = now
        return self._anchor + self._drift + offset
