"""The call's microphone and speaker as the two channels of one stereo null sink (`Probe`): one
recording holds each sound as it entered the microphone and as the app played it, on one timeline.
The recording tests and the benchmark's mouth-to-ear both measure with it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.stack.pulse_rig import MIC_FLOOR_HZ, MIC_FLOOR_VOLUME, PulseRig

RATE = 48_000


class Probe:
    """The call's microphone and speaker as the two channels of one stereo null sink, so one
    recording of its monitor holds each click as it entered the microphone (left) and its echo as
    the app played it (right), sample for sample on one timeline.

    (Not a combine sink feeding `micfeed` and `speaker`, as the benchmark has it: each of its two
    slaves has its own queue and resampler, so a click reaches the speaker and the microphone
    apart by whatever their queues differ (0 to 13 ms on this machine, alone, from recordings of
    both monitors), and that moves when the sink adjusts their rates (by 7 ms within one 6 s
    train). The old method also paired neighbouring peaks, a direct click or its echo, and took
    a click found twice 50 ms apart for a round trip of 50 ms.)

    `probe_mic` (a sink) and `probe_speaker` are remaps of the probe's left and right channels;
    the app's microphone is `probe_mic_src`, the probe monitor's left channel. Remap sinks and
    sources render in the probe's own thread: no queue of their own between a channel and what
    its remap plays or hears."""

    def __init__(self, rig: PulseRig) -> None:
        self.rig = rig
        self.modules: list[str] = []

    def load(self) -> Probe:
        def load(*args: str) -> None:
            self.modules.append(self.rig.pactl("load-module", *args).strip())

        load("module-null-sink", "sink_name=probe", f"rate={RATE}", "channels=2",
             "channel_map=front-left,front-right", "norewinds=1")
        for name, channel in (("probe_mic", "front-left"), ("probe_speaker", "front-right")):
            load("module-remap-sink", f"sink_name={name}", "master=probe", "channels=1", "channel_map=mono",
                 f"master_channel_map={channel}", "remix=no")
        load("module-remap-source", "source_name=probe_mic_src", "master=probe.monitor", "channels=1",
             "channel_map=mono", "master_channel_map=front-left", "remix=no")
        # The microphone's floor, as the rig's own has (never exact zeros).
        load("module-sine", "sink=probe_mic", f"frequency={MIC_FLOOR_HZ}")
        for line in self.rig.pactl("list", "short", "sink-inputs").splitlines():
            fields = line.split("\t")
            if len(fields) > 3 and fields[3] == "module-sine.c" and fields[1] == self._sink_index("probe_mic"):
                self.rig.pactl("set-sink-input-volume", fields[0], MIC_FLOOR_VOLUME)
        return self

    def _sink_index(self, name: str) -> str:
        for line in self.rig.pactl("list", "short", "sinks").splitlines():
            fields = line.split("\t")
            if len(fields) > 1 and fields[1] == name:
                return fields[0]
        raise AssertionError(f"no sink {name}")

    def record(self, path: Path) -> subprocess.Popen[bytes]:
        """`parec` of the probe's monitor, both channels (its server-side queue loses nothing)."""
        return subprocess.Popen(["parec", "--device=probe.monitor", "--format=s16le", f"--rate={RATE}",
                                 "--channels=2", "--latency-msec=20", "--raw", str(path)],
                                env={**os.environ, **self.rig.env})

    def play_into_mic(self, wav: Path, name: str = "probe-clicks") -> None:
        """The server plays `wav` into the microphone from its own real-time thread (a `paplay`
        client can starve on a busy machine); returns when it is done."""
        self.rig.pactl("upload-sample", str(wav), name)
        try:
            self.rig.pactl("play-sample", name, "probe_mic")
            deadline = time.monotonic() + 60
            while self._playing(name) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            self.rig.pactl("remove-sample", name)

    def _playing(self, name: str) -> bool:
        inputs = json.loads(self.rig.pactl("-f", "json", "list", "sink-inputs"))
        return any(entry["properties"].get("event.id") == name for entry in inputs)

    def unload(self) -> None:
        for module in reversed(self.modules):
            self.rig.pactl("unload-module", module)
        self.modules.clear()


def read_stereo_raw(path: Path) -> np.ndarray:
    raw = path.read_bytes() if path.exists() else b""
    return np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<i2").reshape(-1, 2)
