"""Mouth-to-ear round trip: a click into the microphone, back out of the speaker, timed.

The subject's microphone and speaker are the two channels of one stereo null sink, the `Probe`
(tests/stack/probe.py), made the sound server's defaults for the phase; the click train is played
into the microphone's channel, and one recording of the probe's monitor holds each click as it
entered the microphone (left) and as the subject played it back (right), sample for sample on one
timeline, after it went through the subject → LiveKit → the echo assistant → LiveKit → the
subject. The delay between the two, found by cross-correlation with the click, is the round trip.

(Until 2026-12-05 the click went into a combine sink whose slaves were `micfeed` and `speaker`,
and one recording of `speaker.monitor` held both copies. A combine sink queues each slave on its
own, and with the native engine's capture on `micfeed` the microphone's copy reached it ~0.9 s
after the speaker's: every native call measured 1.17-1.26 s, where the probe measured 0.29-0.49 s
in the same run, alternating call by call.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tests.bench import clicks
from tests.bench.stack import BenchStack
from tests.stack.probe import Probe, read_stereo_raw
from tests.support.signals import write_wav

CLICK_COUNT = 6
CLICK_GAP_S = 1.5
ECHO_WINDOW_S = 1.4  # the echo must come back within this (< the click gap; it takes a few hundred ms)
SETTLE_S = 0.8  # after the greeting, before the click train starts
LEAD_S = 0.5  # silence before the first click


@dataclass
class RoundTrip:
    delays_ms: list[float]
    echo_levels_db: list[float]  # each echo's level relative to its direct click
    clicks_sent: int


class ClickBus:
    """The probe, the sound server's default devices while it lives (see the module docstring)."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.probe = Probe(stack.rig).load()
        self._defaults = (stack.rig.pactl("get-default-sink").strip(), stack.rig.pactl("get-default-source").strip())
        stack.rig.pactl("set-default-sink", "probe_speaker")
        stack.rig.pactl("set-default-source", "probe_mic_src")
        train, self.onsets = clicks.click_train(CLICK_COUNT, CLICK_GAP_S, lead_s=LEAD_S)
        self.wav = write_wav(stack.dir / "clicks.wav", train)

    def play(self) -> None:
        """The train into the microphone, played by the server itself (returns when done)."""
        self.probe.play_into_mic(self.wav, "bench-clicks")

    def close(self) -> None:
        sink, source = self._defaults
        self.stack.rig.pactl("set-default-sink", sink)
        self.stack.rig.pactl("set-default-source", source)
        self.probe.unload()


def measure(stack: BenchStack, bus: ClickBus, start_call: Callable[[], Callable[[], None]], name: str) -> RoundTrip:
    """One call: `start_call()` starts it and returns its stop function; clicks after the greeting."""
    known = len(stack.pool.assistants)
    stop = start_call()
    raw = stack.dir / f"rt-{name}.raw"
    try:
        assistant = stack.last_assistant(known)
        assistant.wait_for("greeting_done", timeout=30)
        time.sleep(SETTLE_S)
        recorder = bus.probe.record(raw)
        try:
            time.sleep(0.3)
            bus.play()
            time.sleep(ECHO_WINDOW_S)
        finally:
            recorder.terminate()
            recorder.wait(5)
    finally:
        stop()
    echoes = analyse(read_stereo_raw(raw), bus.onsets)
    return RoundTrip([d for d, _ in echoes], [level for _, level in echoes], CLICK_COUNT)


def analyse(stereo: np.ndarray, onsets: list[int]) -> list[tuple[float, float]]:
    """(delay ms, level dB) of each click's echo (right channel) after it entered the microphone (left)."""
    template = clicks.click()
    mic, speaker = stereo[:, 0], stereo[:, 1]
    found = clicks.find_clicks(mic, template, threshold=0.6, min_gap=int(0.05 * clicks.RATE))
    if not found:
        return []
    # The clicks are the found matches that fit the train's schedule (±2 ms): anchor the schedule
    # on the found click that explains the most of them (a stray early match cannot win).
    tolerance = int(0.002 * clicks.RATE)

    def fitting(anchor: int) -> list[int]:
        expected = [anchor + (at - onsets[0]) for at in onsets]
        return [f for f in found if any(abs(e - f) <= tolerance for e in expected)]

    direct = max((fitting(anchor) for anchor in found), key=len)  # ties: the earliest anchor wins
    return clicks.round_trip_ms(mic, direct, template, window_s=ECHO_WINDOW_S, echoes=speaker)
