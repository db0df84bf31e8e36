"""Phase 2, mouth-to-ear: a click into the microphone, back out of the speaker (tests/bench/roundtrip.py)."""

from __future__ import annotations

from collections.abc import Callable

from tests.bench import misses, roundtrip, subjects
from tests.bench.bench import Bench
from tests.bench.report import Row
from tests.bench.stats import Sample

BENCHMARK = "2. Mouth-to-ear"
# Every call of a run, in this order: all subjects with AEC on, then AEC off where it is a
# setting of the product (the browser's and wespoke-tui's; the TUI runs the same session as headless).
# headless and TUI run `--audio-engine native`, the -python subjects `--audio-engine python`.
CALLS = (("browser", True), ("headless", True), ("headless-python", True), ("TUI", True), ("TUI-python", True),
         ("baseline", True), ("browser", False), ("headless", False))
CALL_LIMIT_S = 120.0  # a call that outlives its measurement by this much ends by itself


def run(bench: Bench) -> None:
    stack = bench.stack
    calls = CALLS if bench.args.rt_aec_off else tuple(c for c in CALLS if c[1])
    delays: dict[tuple[str, bool], list[float]] = {call: [] for call in calls}
    levels: dict[tuple[str, bool], list[float]] = {call: [] for call in calls}
    neteq_ms: list[float] = []  # the browser's mean jitter-buffer delay in each of its calls

    def starter(name: str, aec: bool) -> Callable[[], Callable[[], None]]:
        def start() -> Callable[[], None]:
            subject = subjects.start(stack, name, CALL_LIMIT_S, aec=aec)

            def stop() -> None:
                if subject.browser is not None:
                    received = subject.browser.receive_stats()
                    if received is not None:
                        neteq_ms.append(received["jitter_buffer_ms"])
                subject.stop()

            return stop

        return start

    bus = roundtrip.ClickBus(stack)
    try:
        for n in range(bench.args.rt_runs):
            for name, aec in calls:
                measured = roundtrip.measure(stack, bus, starter(name, aec), f"{name}-{aec}-{n}")
                delays[name, aec].extend(measured.delays_ms)
                levels[name, aec].extend(measured.echo_levels_db)
                bench.log(f"round trip {name} AEC {'on' if aec else 'off'}: "
                          f"{[round(d) for d in measured.delays_ms]} ms of {measured.clicks_sent} clicks")
    finally:
        bus.close()

    neteq = Sample.of(neteq_ms, "ms")
    for aec in (True, False):
        if ("browser", aec) not in delays:
            continue
        browser = Sample.of(delays["browser", aec], "ms")
        label = "on" if aec else "off"
        for name in ("headless", "headless-python", "TUI", "TUI-python", "baseline"):
            if (name, aec) not in delays:
                continue
            app = Sample.of(delays[name, aec], "ms")
            extra = app.median - browser.median
            diff = f"{round(extra):+d} ms" if app.values and browser.values else "—"
            targeted = aec and name != "baseline"  # the targets are with AEC on; the rest is context
            met = (extra <= 0 if app.values and browser.values else False) if targeted else None
            bench.report.add(Row(
                BENCHMARK, f"click → {name} → LiveKit → echo assistant → speaker (AEC {label})", app.text(),
                f"browser: {browser.text()}", diff, "≤ browser" if targeted else "—", met,
                misses.round_trip(name, app, browser, neteq) if met is False else "",
            ))
    order = ", ".join(f"{name} AEC {'on' if aec else 'off'}" for name, aec in calls)
    for (name, aec), values in levels.items():
        bench.report.note(BENCHMARK, (
            f"Echoed click level relative to the direct click, {name}, AEC {'on' if aec else 'off'}: "
            f"{Sample.of(values, 'dB').text(1)}; clicks measured: {len(delays[name, aec])} of "
            f"{roundtrip.CLICK_COUNT * bench.args.rt_runs}."
        ))
    bench.report.note(BENCHMARK, (
        "The browser's receive side during its calls: WebRTC's jitter buffer (NetEQ) held the "
        f"assistant's audio {neteq.text(1)} on average per call (`jitterBufferDelay` over "
        "`jitterBufferEmittedCount` of the inbound audio's stats)."
    ))
    bench.report.note(BENCHMARK, (
        f"A train of {roundtrip.CLICK_COUNT} clicks (40 ms chirps, {roundtrip.CLICK_GAP_S} s apart) is played into "
        "the microphone channel of a stereo null sink whose other channel is the speaker (both the "
        "sound server's defaults for the phase); one recording of its monitor then holds each click "
        "as it entered the microphone and, later, its copy that went through the subject, LiveKit and "
        "the echo assistant and was played by the subject, on one timeline. "
        "The delay between them is found by cross-correlation with the click (sample-accurate); "
        "a click whose echo does not correlate ≥ 0.3 is not counted. Figures are over all clicks of "
        f"{bench.args.rt_runs} call(s) per subject and setting, the calls interleaved "
        f"({order}). TUI: "
        "`wespoke-tui --call-on-start` in a 110×32 tmux terminal; headless: `wespoke-tui call "
        "--no-tui`; both on the default, native audio engine, and as headless-python and TUI-python "
        "with `--audio-engine python`. The echo assistant's own buffering (≤ 100 ms echo backlog, 100 ms `AudioSource` "
        "queue) is in every figure alike."
    ))
    bench.report.note(BENCHMARK, (
        "AEC with the echo assistant: the rig has no acoustic path from speaker to microphone, so "
        "the canceller has nothing to remove; the echoed click reaches the speaker with AEC on and "
        "off (the AEC-off rows measure the processing's cost in latency, not its suppression)."
    ))
