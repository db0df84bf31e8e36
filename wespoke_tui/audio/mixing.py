"""The assistant's side of a call's audio: re-framing remote frames and mixing several tracks.

The session asks the SDK's `AudioStream` for 20 ms frames (STREAM_FRAME_MS), but a stream may
hand over other sizes (at its start, after a resampler change); mixing needs frames of one
size, so every track goes through a `Reframer` to `frame_samples`.
Several assistant tracks are summed with clipping. The first live track is the mixing clock
(its frames are written the moment they arrive, so one track — the usual case — adds no
latency); the frames of the other tracks wait in short queues and are summed into the clock
track's frames. When the clock track goes away, the next one takes over.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from wespoke_tui.audio.base import SAMPLE_RATE

# A non-clock track may run at most this far ahead of the clock track before its oldest frames
# are dropped: a bounded queue is bounded latency.
MAX_PENDING_FRAMES = 5


MIX_FRAME_SAMPLES = SAMPLE_RATE * 20 // 1000  # the session's STREAM_FRAME_MS


class Reframer:
    """Cuts a stream of int16 sample blocks of any size into `frame_samples` frames."""

    def __init__(self, frame_samples: int = MIX_FRAME_SAMPLES) -> None:
        self._frame_samples = frame_samples
        self._pending = np.zeros(0, dtype=np.int16)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        if self._pending.size == 0 and samples.size == self._frame_samples:
            return [samples]
        data = np.concatenate((self._pending, samples)) if self._pending.size else samples
        count = data.size // self._frame_samples
        frames = [data[i * self._frame_samples : (i + 1) * self._frame_samples] for i in range(count)]
        self._pending = data[count * self._frame_samples :].copy()
        return frames


class TrackMixer:
    """Sums the frames of several tracks into one stream handed to `sink` frame by frame."""

    def __init__(self, sink: Callable[[np.ndarray], None], frame_samples: int = MIX_FRAME_SAMPLES) -> None:
        self._sink = sink
        self._frame_samples = frame_samples
        self._order: list[str] = []  # track ids, the clock track first
        self._pending: dict[str, deque[np.ndarray]] = {}
        self._reframers: dict[str, Reframer] = {}

    def add_track(self, track_id: str) -> None:
        if track_id in self._pending:
            return
        self._order.append(track_id)
        self._pending[track_id] = deque(maxlen=MAX_PENDING_FRAMES)
        self._reframers[track_id] = Reframer(self._frame_samples)

    def remove_track(self, track_id: str) -> None:
        if track_id not in self._pending:
            return
        self._order.remove(track_id)
        del self._pending[track_id]
        del self._reframers[track_id]

    @property
    def track_count(self) -> int:
        return len(self._order)

    def push(self, track_id: str, samples: np.ndarray) -> None:
        reframer = self._reframers.get(track_id)
        if reframer is None:
            return
        for frame in reframer.push(samples):
            if self._order[0] != track_id:
                self._pending[track_id].append(frame)
                continue
            self._sink(self._mix(frame))

    def _mix(self, clock_frame: np.ndarray) -> np.ndarray:
        others = [queue.popleft() for tid in self._order[1:] if (queue := self._pending[tid])]
        if not others:
            return clock_frame
        total = clock_frame.astype(np.int32)
        for frame in others:
            total += frame
        return np.clip(total, -32768, 32767).astype(np.int16)
