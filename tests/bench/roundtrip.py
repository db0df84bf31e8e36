"""Mouth-to-ear round trip: a click into the microphone, back out of the speaker, timed.

The click train goes into a PulseAudio combine sink whose slaves are `micfeed` (the app's
microphone) and `speaker` (what the app plays), so one recording of `speaker.monitor` holds
each click twice: first directly (the moment it entered the microphone), then as it came back
through the app → LiveKit → the echo assistant → LiveKit → the app → the speaker. The delay
between the two, found by cross-correlation with the click, is the round trip.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tests.bench import clicks
from tests.bench.stack import BenchStack
from tests.stack.pulse_rig import read_wav, write_wav

CLICK_COUNT = 6
CLICK_GAP_S = 1.5
ECHO_WINDOW_S = 1.4  # the echo must come back within this (< the click gap; it takes a few hundred ms)
SETTLE_S = 0.8  # after the greeting, before the click train starts
# Silence played before the first click: the combine sink adapts its slaves' latency for its
# first couple of seconds, which would misplace the direct copies of early clicks.
LEAD_S = 3.0


@dataclass
class RoundTrip:
    delays_ms: list[float]
    echo_levels_db: list[float]  # each echo's level relative to its direct click
    clicks_sent: int


class ClickBus:
    """A combine sink feeding both the microphone and the speaker (see the module docstring)."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.module = stack.rig.pactl(
            "load-module", "module-combine-sink", "sink_name=clickbus", "slaves=micfeed,speaker",
            "rate=48000", "channels=1",
        ).strip()
        train, self.onsets = clicks.click_train(CLICK_COUNT, CLICK_GAP_S, lead_s=LEAD_S)
        self.wav = write_wav(stack.dir / "clicks.wav", train)

    def play(self) -> None:
        subprocess.run(
            ["paplay", "--device=clickbus", "--latency-msec=20", str(self.wav)],
            env=self.stack.env(), check=True, timeout=60,
        )

    def close(self) -> None:
        self.stack.rig.pactl("unload-module", self.module)


def measure(stack: BenchStack, bus: ClickBus, start_call: Callable[[], Callable[[], None]], name: str) -> RoundTrip:
    """One call: `start_call()` starts it and returns its stop function; clicks after the greeting."""
    known = len(stack.pool.assistants)
    stop = start_call()
    try:
        assistant = stack.last_assistant(known)
        assistant.wait_for("greeting_done", timeout=30)
        time.sleep(SETTLE_S)
        recording = stack.dir / f"rt-{name}.wav"
        stack.rig.start_recording_speaker(recording)
        time.sleep(0.3)
        bus.play()
        time.sleep(ECHO_WINDOW_S)
        stack.rig.stop_recording()
    finally:
        stop()
    heard, _ = read_wav(recording)
    echoes = analyse(heard, bus.onsets)
    return RoundTrip([d for d, _ in echoes], [level for _, level in echoes], CLICK_COUNT)


def analyse(heard: np.ndarray, onsets: list[int]) -> list[tuple[float, float]]:
    """(delay ms, level dB) of each click's echo after its direct copy in the speaker recording."""
    template = clicks.click()
    found = clicks.find_clicks(heard, template, threshold=0.6, min_gap=int(0.05 * clicks.RATE))
    if not found:
        return []
    # The direct copies are the found clicks that fit the train's schedule (±2 ms): anchor the
    # schedule on the found click that explains the most of them (a stray early match cannot win).
    tolerance = int(0.002 * clicks.RATE)

    def fitting(anchor: int) -> list[int]:
        expected = [anchor + (at - onsets[0]) for at in onsets]
        return [f for f in found if any(abs(e - f) <= tolerance for e in expected)]

    direct = max((fitting(anchor) for anchor in found), key=len)  # ties: the earliest anchor wins
    return clicks.round_trip_ms(heard, direct, template, window_s=ECHO_WINDOW_S)
