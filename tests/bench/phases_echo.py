"""Echo return: how far under the assistant's voice its echo comes back to it, per engine.

The rig's echo path (`PulseRig.add_echo_path`: what the speaker plays, into the microphone 50 ms
later, at the same level) stands in for a laptop's speaker and microphone. The assistant speaks
(espeak-ng's voice, no echo of the caller) while the caller is silent; what the assistant
receives is then the echo the caller's echo canceller left. Noise suppression and gain control
are off, so the figure is the echo canceller's alone.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any

from tests.bench.bench import Bench
from tests.bench.report import Row
from tests.bench.stack import BenchStack, app_session
from tests.bench.stats import Sample
from tests.stack.pulse_rig import segments, speech_wav
from tests.support.signals import frame_levels, power_dbfs, read_wav

ECHO = "6. Echo return"
FAR_TEXT = ("Hello, thank you for calling. I am the assistant, and I will keep talking for a while, so that "
            "the echo canceller can learn the path from the speaker back into the microphone, and then we "
            "will see how much of my voice comes back to me.")
CONVERGED_AFTER_S = 3.0  # the seconds before are the canceller's to learn the path
SUBJECTS = (("native", True), ("python", True), ("python", False))  # (engine, echo cancellation)


def run(bench: Bench) -> None:
    stack, rounds = bench.stack, max(1, bench.args.cost_rounds)
    far = speech_wav(stack.dir / "far.wav", FAR_TEXT)
    found: dict[tuple[str, bool], list[float]] = {s: [] for s in SUBJECTS}
    stack.rig.add_echo_path(50)
    try:
        for _ in range(rounds):
            for engine, aec in SUBJECTS:  # interleaved, so drifting load hits all alike
                loss = _echo_return(stack, engine, aec, far)
                found[engine, aec].append(loss)
                bench.log(f"echo return {engine} (AEC {'on' if aec else 'off'}): {loss:.1f} dB")
    finally:
        stack.rig.remove_echo_path()
    native, python = Sample.of(found["native", True], "dB"), Sample.of(found["python", True], "dB")
    bench.report.add(Row(ECHO, "echo return loss, AEC on (headless)", native.text(1),
                         f"headless-python: {python.text(1)}", f"{native.median - python.median:+.1f} dB",
                         "≥ the Python engine's", native.median >= python.median,
                         "The module's echo canceller is WebRTC's own; see the note for the method."))
    bench.report.add(Row(ECHO, "echo return loss, AEC on (headless-python)", python.text(1)))
    bench.report.add(Row(ECHO, "the rig's echo path alone (headless-python, AEC off)",
                         Sample.of(found["python", False], "dB").text(1)))
    bench.report.note(ECHO, (
        f"The rig's echo path on (speaker into microphone, 50 ms, unity gain); per subject and round one "
        f"headless call (tests/bench/app_call.py, `--no-ns --no-agc`) in which the assistant speaks "
        f"({len(FAR_TEXT.split())} words of espeak-ng, tests/stack/pulse_rig.py `speech_wav`) and the caller says "
        f"nothing. Echo return loss: the level the speaker played (the recording of the speaker, over the "
        f"sound) minus the level the assistant received from the caller (its per-second energy reports) "
        f"from {CONVERGED_AFTER_S:.0f} s into the sound to its end. {rounds} round(s), the subjects "
        "interleaved."
    ))


def _echo_return(stack: BenchStack, engine: str, aec: bool, far: Path) -> float:
    stack.pool.options = {"no_echo": True}
    known = len(stack.pool.assistants)
    far_s = read_wav(far)[0].size / 48_000
    process = app_session(stack, far_s + 60, aec=aec, engine=engine, processing=False)
    recording = stack.dir / f"echo-{engine}-{aec}.wav"
    try:
        process.wait_mark("connected", 60)
        assistant = stack.last_assistant(known)
        assistant.wait_for("greeting_done", timeout=30)
        stack.rig.start_recording_speaker(recording)
        assistant.send({"cmd": "play", "path": str(far)})
        began = assistant.wait_for("tone_start", lambda e: e.get("path") == str(far), timeout=10)
        ended = assistant.wait_for("tone_done", lambda e: e["wall"] > began["wall"], timeout=far_s + 30)
    finally:
        stack.rig.stop_recording()
        stack.pool.options = {}
        process.proc.send_signal(signal.SIGTERM)
        process.finish(timeout=60)
    received = [e["rms_dbfs"] for e in assistant.events("energy")
                if began["wall"] + CONVERGED_AFTER_S + 1.0 <= e["wall"] <= ended["wall"]]
    samples, _ = read_wav(recording)
    parts = segments(frame_levels(samples))  # the sentence, in pieces where it pauses
    played = power_dbfs(samples[parts[0].start * 480 : parts[-1].stop * 480])
    return played - _mean_power_dbfs(received)


def _mean_power_dbfs(levels: list[Any]) -> float:
    if not levels:
        return float("nan")
    return 10 * math.log10(sum(10 ** (float(x) / 10) for x in levels) / len(levels))
