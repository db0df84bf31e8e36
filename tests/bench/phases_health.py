"""Phase 4, audio health over a long call, and phase 5, start-up."""

from __future__ import annotations

from tests.bench import misses, startup
from tests.bench.bench import Bench
from tests.bench.report import Row
from tests.bench.stack import Tui, app_session
from tests.bench.stats import Sample
from tests.bench.subjects import play_talk, talk_wav

HEALTH = "4. Audio health"
STARTUP = "5. Start-up"


def health(bench: Bench) -> None:
    stack, seconds = bench.stack, bench.args.health_seconds
    mic = talk_wav(stack.dir / "health-talk.wav", seconds + 20)
    known = len(stack.pool.assistants)
    process = app_session(stack, seconds)
    process.wait_mark("connected", 60)
    stack.last_assistant(known).wait_for("greeting_done", timeout=30)
    player = play_talk(stack, mic)
    process.finish(timeout=seconds + 60)
    player.terminate()
    marks = process.all("health")
    if len(marks) < 3:
        bench.report.add(Row(HEALTH, "health reports", "none received", met=False,
                             why_missed="the session sent no AudioHealth events"))
        return
    first, last = marks[0], marks[-1]  # the first report comes 1 s into the call
    underruns = last["playback_underruns"] - first["playback_underruns"]
    overruns = last["playback_overruns"] - first["playback_overruns"]
    trims = last["playback_trims"] - first["playback_trims"]
    dropped = last["capture_dropped_frames"]
    depth = max(m["capture_queue_depth"] for m in marks)
    queue_ms = Sample.of([m["playback_queue_ms"] for m in marks], "ms")
    span = last["t"] - first["t"]
    bench.log(f"health over {span:.0f} s: underruns {underruns}, overruns {overruns}, trims {trims}, "
              f"dropped {dropped}, capture depth ≤ {depth}, playback queue {queue_ms.text(1)}")
    what = f"over {span / 60:.1f} min (headless session, python engine: the native one keeps no such counters)"
    bench.report.add(Row(HEALTH, f"playback underruns after the first second, {what}", str(underruns),
                         target="0", met=underruns == 0, why_missed=misses.underruns(underruns, span)))
    bench.report.add(Row(HEALTH, f"playback overruns after the first second, {what}", str(overruns)))
    bench.report.add(Row(HEALTH, f"playback trims (10 ms blocks skipped to shed standing latency), {what}",
                         str(trims)))
    bench.report.add(Row(HEALTH, f"dropped capture frames, {what}", str(dropped)))
    bench.report.add(Row(HEALTH, "capture queue depth (max, frames)", str(depth)))
    bench.report.add(Row(HEALTH, "playback queue (per-second samples)", queue_ms.text(1)))
    bench.report.note(HEALTH, (
        f"One call of {seconds / 60:.1f} min with the echo assistant and speech-like audio into the "
        "microphone; the counters are the engine's (`backend.health()`) as the session's `AudioHealth` "
        "events report them once a second. Underruns and overruns count from the first report (1 s "
        "into the call). The other subjects keep no such counters."
    ))


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
