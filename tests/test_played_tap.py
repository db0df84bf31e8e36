"""What the speaker played is stamped when it is heard, on the stream's own clock (`PlayedTap`):
the assistant's side of a recording as heard. Pure tests; the rig's end-to-end check is
tests/test_recording_calls.py (the two sides aligned as heard)."""

from __future__ import annotations

import numpy as np

from wespoke_tui.audio.clock import DeviceClock
from wespoke_tui.audio.played import WARMUP_S, PlayedTap, to_48k

RATE = 48_000
BLOCK_S = 0.01
BLOCK = int(RATE * BLOCK_S)
LATENCY = 0.03  # the device's buffer once it is full


def speaker_start(start: float, blocks: int, *, late_at: int | None = None, late_s: float = 0.0):
    """(now, reported latency, truth) per callback, as a PulseAudio stream starts on the rig: the first
    three callbacks come in a burst with 0 latency reported, the next three report the buffer
    filling (6, 16, 26 ms), then it holds 30 ms. `late_at`: that callback came `late_s` too late,
    the device played that much silence first (an underflow), and every block after it is heard
    that much later."""
    out = []
    reported_ramp = {3: 0.006, 4: 0.016, 5: 0.026}
    for k in range(blocks):
        shift = late_s if late_at is not None and k >= late_at else 0.0
        heard = start + LATENCY + k * BLOCK_S + shift
        if k < 3:
            now, reported = start + 0.0001 * k, 0.0
        else:
            now = heard - LATENCY
            reported = reported_ramp.get(k, LATENCY)
        out.append((now, reported, heard))
    return out


def stamp_all(clock: DeviceClock, callbacks, *, late_at: int | None = None) -> list[float]:
    return [clock.first_sample_at(now, BLOCK, -reported, overflow=k == late_at)
            for k, (now, reported, _) in enumerate(callbacks)]


def test_a_speaker_block_is_stamped_when_heard_once_the_streams_start_is_past() -> None:
    callbacks = speaker_start(10.0, 6000)  # a minute
    got = stamp_all(DeviceClock(RATE, warmup_s=WARMUP_S), callbacks)
    first = int(WARMUP_S / BLOCK_S) + 1
    errors_ms = [abs(at - heard) * 1000 for at, (_, _, heard) in zip(got[first:], callbacks[first:], strict=True)]
    assert max(errors_ms) < 0.5
    # Anchored on the start's timestamps too (a burst reporting 0 latency), the clock is tens of
    # milliseconds off (4 ms on the rig with a median anchor; 30 ms with the earliest).
    naive = stamp_all(DeviceClock(RATE), callbacks)
    assert abs(naive[-1] - callbacks[-1][2]) * 1000 > 10


def test_after_an_underflow_the_blocks_are_stamped_as_late_as_the_speaker_plays_them() -> None:
    callbacks = speaker_start(10.0, 1000, late_at=500, late_s=0.05)
    got = stamp_all(DeviceClock(RATE, warmup_s=WARMUP_S), callbacks, late_at=500)
    after = range(500 + int(WARMUP_S / BLOCK_S) + 1, 1000)
    assert max(abs(got[k] - callbacks[k][2]) for k in after) * 1000 < 0.5
    assert max(abs(got[k] - callbacks[k][2]) for k in range(20, 500)) * 1000 < 0.5


def test_the_tap_keeps_blocks_only_while_on_and_starts_fresh_when_turned_on() -> None:
    tap = PlayedTap(RATE, BLOCK)
    block = np.full(BLOCK, 1000, dtype=np.int16)
    tap.played(1.0, block, LATENCY, underflow=False)
    assert tap.drain() == []
    tap.set_on(True)
    tap.played(1.01, block, LATENCY, underflow=False)
    block[:] = 7  # the device's buffer is reused: the tap kept its own copy
    (heard_at, kept), = tap.drain()
    assert heard_at == 1.01 + LATENCY and int(kept[0]) == 1000
    tap.set_on(False)
    tap.played(1.02, block, LATENCY, underflow=False)
    tap.set_on(True)
    assert tap.drain() == []


def test_a_block_from_a_44_1_khz_speaker_becomes_10_ms_at_48_khz_with_its_tone() -> None:
    rate = 44_100
    t = np.arange(rate // 100) / rate
    block = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = to_48k(block, rate)
    assert out.size == 480
    expected = 8000 * np.sin(2 * np.pi * 1000 * np.arange(480) / RATE)
    assert np.max(np.abs(out - expected)) < 200  # linear interpolation of a 1 kHz tone: within 2.5 %
