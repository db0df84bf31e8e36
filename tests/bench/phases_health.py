"""Phase 4, audio health over a long call, and phase 5, start-up."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import misses, startup
from tests.bench.bench import Bench
from tests.bench.report import Row
from tests.bench.stack import BenchStack, Tui, app_session
from tests.bench.stats import Sample
from tests.bench.subjects import play_talk, talk_wav
from tests.stack.pulse_rig import segments
from tests.support.signals import frame_levels, read_wav

HEALTH = "4. Audio health"
STARTUP = "5. Start-up"


HEALTH_ENGINES = ("native", "python")
HEALTH_TONE_HZ = 400.0  # four whole periods in each 10 ms frame: a frame's level does not ripple


def health(bench: Bench) -> None:
    """A long call on each engine: the assistant plays one steady tone for the whole call while
    speech goes into the microphone, and the speaker is recorded; every dip of the tone in the
    recording is a glitch the user heard (a device underrun, a concealed packet, a jitter
    buffer emptied), whichever engine or buffer caused it. The Python engine's own counters
    are reported beside it."""
    stack, seconds = bench.stack, bench.args.health_seconds
    mic = talk_wav(stack.dir / "health-talk.wav", seconds + 40)
    for engine in HEALTH_ENGINES:
        heard, marks = _long_call(stack, engine, seconds, mic)
        bench.log(f"health {engine}: {heard}")
        what = f"over {heard.seconds / 60:.1f} min ({'headless' if engine == 'native' else 'headless-python'})"
        bench.report.add(Row(HEALTH, f"glitches heard at the speaker after the first second (dips of a steady tone), {what}",
                             f"{heard.glitches} ({heard.lost_ms} ms)", target="0", met=heard.glitches == 0,
                             why_missed=misses.glitches(heard.glitches, heard.seconds, heard.where)))
        if engine == "python" and len(marks) >= 3:
            _python_counters(bench, marks)
    bench.report.note(HEALTH, (
        f"One call of {seconds / 60:.1f} min per engine (headless `CallSession`, tests/bench/app_call.py), "
        f"the test assistant playing one {HEALTH_TONE_HZ:.0f} Hz tone for the whole call (no echo of the "
        "caller) while speech-like audio goes into the microphone; the rig's speaker recorded with "
        "`parec`. A glitch is a run of 10 ms frames at least 3 dB under the tone's median level "
        "(tests/stack/pulse_rig.py `segments`), or a break in it, from the tone's first second on: "
        "what a user hears, whichever part caused it. The Python engine's counters are its `backend.health()` as the session's "
        "`AudioHealth` events report them once a second, from the first report (1 s into the call); "
        "the native module keeps none."
    ))


@dataclass(frozen=True, slots=True)
class Heard:
    seconds: float  # of tone found in the recording
    glitches: int
    lost_ms: int
    where: str = ""  # "12.3 s: 20 ms, …"

    def __str__(self) -> str:
        return f"{self.seconds:.0f} s of tone, {self.glitches} glitches, {self.lost_ms} ms lost ({self.where})"


def _long_call(stack: BenchStack, engine: str, seconds: float, mic: Path) -> tuple[Heard, list[dict[str, Any]]]:
    stack.pool.options = {"no_echo": True}
    known = len(stack.pool.assistants)
    process = app_session(stack, seconds + 60, engine=engine)
    player = None
    recording = stack.dir / f"health-{engine}.wav"
    try:
        process.wait_mark("connected", 60)
        assistant = stack.last_assistant(known)
        assistant.wait_for("greeting_done", timeout=30)
        player = play_talk(stack, mic)
        stack.rig.start_recording_speaker(recording)
        assistant.send({"cmd": "tone", "freq": HEALTH_TONE_HZ, "seconds": seconds, "dbfs": -12})
        assistant.wait_for("tone_done", timeout=seconds + 60)
    finally:
        stack.rig.stop_recording()
        stack.pool.options = {}
        if player is not None:
            player.terminate()
        process.proc.send_signal(signal.SIGTERM)
        process.finish(timeout=60)
    samples, _ = read_wav(recording)
    parts = [s for s in segments(frame_levels(samples)) if s.frames >= 100]  # the tone, cut by long breaks
    if not parts:
        return Heard(0.0, 0, 0), process.all("health")
    breaks = [(a.stop, b.start) for a, b in zip(parts, parts[1:], strict=False)]
    # From the first second on, like the Python engine's counters: the tone's onset after the
    # assistant's silence is the jitter buffer's start, not a glitch in a running call.
    where = sorted(g for g in [(a, b) for p in parts for a, b in p.gaps] + breaks if g[0] >= parts[0].start + 100)
    glitches, lost = len(where), sum(b - a for a, b in where)
    where_text = ", ".join(f"{(a - parts[0].start) / 100:.1f} s: {(b - a) * 10} ms" for a, b in where[:20])
    return Heard((parts[-1].stop - parts[0].start) / 100, glitches, lost * 10, where_text), process.all("health")


def _python_counters(bench: Bench, marks: list[dict[str, Any]]) -> None:
    first, last = marks[0], marks[-1]  # the first report comes 1 s into the call
    underruns = last["playback_underruns"] - first["playback_underruns"]
    overruns = last["playback_overruns"] - first["playback_overruns"]
    trims = last["playback_trims"] - first["playback_trims"]
    dropped = last["capture_dropped_frames"]
    depth = max(m["capture_queue_depth"] for m in marks)
    queue_ms = Sample.of([m["playback_queue_ms"] for m in marks], "ms")
    span = last["t"] - first["t"]
    bench.log(f"python engine counters over {span:.0f} s: underruns {underruns}, overruns {overruns}, "
              f"trims {trims}, dropped {dropped}, capture depth ≤ {depth}, playback queue {queue_ms.text(1)}")
    what = f"over {span / 60:.1f} min (headless-python, the engine's counters)"
    bench.report.add(Row(HEALTH, f"playback underruns after the first second, {what}", str(underruns),
                         target="0", met=underruns == 0, why_missed=misses.underruns(underruns, span)))
    bench.report.add(Row(HEALTH, f"playback overruns after the first second, {what}", str(overruns)))
    bench.report.add(Row(HEALTH, f"playback trims (10 ms blocks skipped to shed standing latency), {what}",
                         str(trims)))
    bench.report.add(Row(HEALTH, f"dropped capture frames, {what}", str(dropped)))
    bench.report.add(Row(HEALTH, "capture queue depth (max, frames)", str(depth)))
    bench.report.add(Row(HEALTH, "playback queue (per-second samples)", queue_ms.text(1)))


def start_up(bench: Bench) -> None:
    help_ms = startup.help_wall_time(20)
    bench.report.add(Row(STARTUP, "`wespoke-tui --help` wall time", help_ms.text(),
                         target=f"≤ {misses.HELP_MAX_MS:.0f} ms", met=help_ms.median <= misses.HELP_MAX_MS,
                         why_missed=misses.HELP))
    paints = []
    for _ in range(5):
        tui = Tui(bench.stack)
        try:
            paints.append(tui.seconds_until("Quit", poll_s=0.005) * 1000)
        finally:
            tui.close()
    first_paint = Sample.of(paints, "ms")
    bench.log(f"start-up: --help {help_ms.text()}, first paint {first_paint.text()}")
    bench.report.add(Row(STARTUP, "process start → first painted frame (TUI in tmux)", first_paint.text()))
    bench.report.note(STARTUP, (
        "`--help`: 20 runs of the installed console script after one warm-up, process start to exit. "
        "First paint: `wespoke-tui` started in a fresh 110×32 tmux session, timed until its footer "
        "(\"Quit\") shows in `capture-pane` (polled every 5 ms); 5 runs."
    ))
