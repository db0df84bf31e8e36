"""Phase 1, call setup: the call action to connected with the first microphone frame sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tests.bench import misses
from tests.bench.bench import Bench
from tests.bench.browser import start_browser
from tests.bench.report import Row
from tests.bench.stack import app_session, baseline, tui_pilot
from tests.bench.stats import Sample, ratio

BENCHMARK = "1. Call setup"
NATIVE = ("headless", "TUI")  # the subjects on the native engine
IN_CALL_S = 2.0  # each call stays up this long once set up: time for its first frame, even under load


class Marked(Protocol):
    """`stack.MarkedProcess` and `browser.BrowserCall`: the milestones of one call."""

    def wait_mark(self, event: str, timeout: float = 30.0) -> dict[str, float]: ...

    def finish(self, timeout: float = 30.0) -> int: ...


def run(bench: Bench) -> None:
    stack, runs = bench.stack, bench.args.runs
    subjects: dict[str, Callable[[], Marked]] = {
        "baseline": lambda: baseline(stack, IN_CALL_S),
        "headless": lambda: app_session(stack, IN_CALL_S, engine="native"),
        "headless-python": lambda: app_session(stack, IN_CALL_S),
        "TUI": lambda: tui_pilot(stack, IN_CALL_S, engine="native"),
        "TUI-python": lambda: tui_pilot(stack, IN_CALL_S),
        "browser": lambda: start_browser(stack, IN_CALL_S),
    }
    times: dict[str, list[float]] = {name: [] for name in subjects}
    stack.assistants_on(False)  # no assistant process competing for the CPU
    try:
        for n in range(runs):
            for name, start in subjects.items():  # interleaved, so drifting load hits all alike
                call = start()
                try:
                    # On the native engine the module sends the frames once the track is published.
                    first_frame = call.wait_mark("published" if name in NATIVE else "first_frame", 60)
                    began = call.wait_mark("call")
                    connected = call.wait_mark("connected")
                finally:
                    call.finish()
                times[name].append((max(first_frame["t"], connected["t"]) - began["t"]) * 1000)
            bench.log(f"setup run {n + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in times.items()))
    finally:
        stack.assistants_on(True)
    samples = {name: Sample.of(values, "ms") for name, values in times.items()}
    browser = samples["browser"]
    for name in ("headless", "TUI", "headless-python", "TUI-python"):
        app = samples[name]
        r = ratio(app, browser)
        bench.report.add(Row(
            BENCHMARK, f"call → connected + first mic frame sent ({name})", app.text(), f"browser: {browser.text()}",
            f"{r:.2f}×", f"≤ {misses.SETUP_RATIO_MAX:.1f}× browser", r <= misses.SETUP_RATIO_MAX,
            misses.setup(name, app, browser, samples["headless"]),
        ))
    base = samples["baseline"]
    bench.report.add(Row(
        BENCHMARK, "call → connected + first mic frame sent (baseline, MediaDevices)", base.text(),
        f"browser: {browser.text()}", f"{ratio(base, browser):.2f}×",
    ))
    bench.report.note(BENCHMARK, (
        "Each subject is a fresh process on the rig's sound devices; the clock starts at the call "
        "action (just before the token request; for the TUI, when Pilot presses `c`) and stops when "
        "the room is connected and the first microphone frame has been handed to the published "
        "track's `AudioSource` (the Python engine) or the microphone's track is published (the "
        "native engine, whose module sends its frames itself), read from CLOCK_MONOTONIC inside "
        "the process. Headless is `CallSession` on the engine as `wespoke-tui call --no-tui` runs "
        "it (tests/bench/app_call.py); TUI is the Textual app under Pilot (tests/bench/tui_call.py). "
        "The browser's clock is the page's: from just before its token request to `room.connect()` "
        "resolved and `setMicrophoneEnabled()` resolved (the track published), whichever is later; "
        "Chromium's own start and the page load are before the clock starts. "
        f"{runs} runs each, interleaved (baseline, headless, headless-python, TUI, TUI-python, browser); "
        "no test assistant joins "
        "these calls."
    ))
