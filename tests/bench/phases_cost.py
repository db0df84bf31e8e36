"""Phase 3, steady cost: CPU and memory over a call with speech into the microphone."""

from __future__ import annotations

import statistics

from tests.bench import misses, subjects
from tests.bench.bench import BEFORE_COMMIT, Bench
from tests.bench.procstat import CostWindow
from tests.bench.report import Row
from tests.bench.stack import CURRENT
from wespoke_tui.audio.capture import CAPTURE_FRAME_MS

BENCHMARK = "3. Steady cost"
# A window each per round, in this order and reversed every other round, so that load drifting
# over the run (or a subject's wake left on the machine) does not favour whoever comes first.
# headless and TUI run the default (native) audio engine, the -python subjects `--audio-engine python`.
ORDER = ("floor-20", "browser", "headless", "headless-python", "headless before", "TUI", "TUI-python", "TUI before",
         "baseline", "floor-10")


def combined(windows: list[CostWindow]) -> CostWindow:
    """A subject's rounds as one window: the median CPU, the highest memory."""
    pss = [w.peak_pss_mb for w in windows if w.peak_pss_mb is not None]
    return CostWindow(
        cpu_percent=statistics.median(w.cpu_percent for w in windows),
        peak_rss_mb=max(w.peak_rss_mb for w in windows),
        seconds=sum(w.seconds for w in windows),
        peak_pss_mb=max(pss) if pss else None,
        processes=max(w.processes for w in windows),
    )


def run(bench: Bench) -> None:
    stack, seconds, rounds = bench.stack, bench.args.cost_seconds, bench.args.cost_rounds
    mic = subjects.talk_wav(stack.dir / "talk.wav", seconds + 30)
    measured: dict[str, list[subjects.Cost]] = {key: [] for key in ORDER}
    for n in range(rounds):
        for key in ORDER if n % 2 == 0 else ORDER[::-1]:
            name, _, when = key.partition(" ")
            code = bench.before if when == "before" else CURRENT
            measured[key].append(subjects.cost(stack, name, seconds, mic, code=code))
            w = measured[key][-1].window
            bench.log(f"cost {key} (round {n + 1}): {w.cpu_percent:.1f} % CPU, peak RSS {w.peak_rss_mb:.0f} MB "
                      f"over {w.seconds:.0f} s")
    results = {
        key: subjects.Cost(
            combined([c.window for c in costs]),
            combined(terminals) if (terminals := [c.terminal for c in costs if c.terminal is not None]) else None,
        )
        for key, costs in measured.items()
    }

    def cpu(key: str) -> float:
        return results[key].window.cpu_percent

    def share(key: str, unit: str = "") -> str:
        """`key`'s CPU as text, with the range of its windows when there are several."""
        values = [c.window.cpu_percent for c in measured[key]]
        spread = f" ({min(values):.1f}–{max(values):.1f}, n={len(values)})" if len(values) > 1 else ""
        return f"{cpu(key):.1f} %{unit}{spread}"

    def rss(key: str) -> float:
        return results[key].window.peak_rss_mb

    browser, floor = results["browser"].window, results["floor-20"].window
    tui, headless = results["TUI"].window, results["headless"].window
    tui_profile, headless_profile = bench.profiles.get(("TUI", "after")), bench.profiles.get(("headless", "after"))
    processes = f"{browser.processes} processes"

    def add(what: str, measured: str, reference: str, value: float, against: float, target: float | None = None,
            target_text: str = "—", why: str = "") -> None:
        r = value / against
        met = None if target is None else r <= target
        bench.report.add(Row(BENCHMARK, what, measured, reference, f"{r:.2f}×", target_text, met,
                             why if met is False else ""))

    add(f"CPU, {seconds:.0f} s call (TUI) against the browser", share('TUI', ' of one core'),
        f"browser ({processes}): {share('browser')}", tui.cpu_percent, browser.cpu_percent,
        misses.TUI_CPU_BROWSER_MAX, "≤ browser",
        misses.tui_cpu_vs_browser(tui, browser, headless, floor, tui_profile, headless_profile))
    add(f"CPU, {seconds:.0f} s call (TUI) against the bare-SDK floor", share('TUI', ' of one core'),
        f"floor-20: {share('floor-20')}", tui.cpu_percent, floor.cpu_percent,
        misses.TUI_CPU_FLOOR_AIM, f"aim ≤ {misses.TUI_CPU_FLOOR_AIM}× floor-20",
        misses.cpu_vs_floor("TUI", tui, floor, headless, None))
    add(f"CPU, {seconds:.0f} s call (headless) against the bare-SDK floor",
        share('headless', ' of one core'), f"floor-20: {share('floor-20')}", headless.cpu_percent, floor.cpu_percent,
        misses.HEADLESS_CPU_FLOOR_MAX, f"≤ {misses.HEADLESS_CPU_FLOOR_MAX}× floor-20",
        misses.cpu_vs_floor("headless", headless, floor, None, headless_profile))
    headless_met = headless.cpu_percent <= browser.cpu_percent
    bench.report.add(Row(
        BENCHMARK, f"CPU, {seconds:.0f} s call (headless) against the browser", share('headless', ' of one core'),
        f"browser ({processes}): {share('browser')}", f"{headless.cpu_percent / browser.cpu_percent:.2f}×",
        "≤ browser", headless_met,
        "" if headless_met else (f"The headless call on the native engine used {headless.cpu_percent:.1f} % of a "
                                 f"core, the browser {browser.cpu_percent:.1f} %; floor-20, the bare SDK with no "
                                 f"devices, {floor.cpu_percent:.1f} %."),
    ))
    for name in ("headless-python", "TUI-python"):
        add(f"CPU, {seconds:.0f} s call ({name}) against the browser", share(name, ' of one core'),
            f"browser ({processes}): {share('browser')}", cpu(name), browser.cpu_percent)
    tui_rss_met = tui.peak_rss_mb <= misses.TUI_RSS_MAX_MB
    bench.report.add(Row(
        BENCHMARK, "peak RSS (TUI)", f"{tui.peak_rss_mb:.0f} MB", f"floor-20: {floor.peak_rss_mb:.0f} MB",
        f"{tui.peak_rss_mb / floor.peak_rss_mb:.2f}×", f"≤ {misses.TUI_RSS_MAX_MB:.0f} MB", tui_rss_met,
        "" if tui_rss_met else misses.tui_rss(tui, headless, floor),
    ))
    for name in ("headless", "headless-python", "TUI-python", "baseline"):
        add(f"peak RSS ({name})", f"{rss(name):.0f} MB", f"floor-20: {floor.peak_rss_mb:.0f} MB", rss(name),
            floor.peak_rss_mb)
    if browser.peak_pss_mb:
        add("memory: peak RSS of the TUI against the browser's peak PSS summed over its processes",
            f"{tui.peak_rss_mb:.0f} MB", f"browser ({processes}): {browser.peak_pss_mb:.0f} MB", tui.peak_rss_mb,
            browser.peak_pss_mb)
    for key, what in (("baseline", "baseline, MediaDevices"), ("floor-10", "floor, 10 ms frames"),
                      ("browser", f"browser, {processes}")):
        add(f"CPU, {seconds:.0f} s call ({what})", share(key, ' of one core'),
            f"floor-20: {share('floor-20')}",
            cpu(key), floor.cpu_percent)
    for name in ("headless", "headless-python", "TUI", "TUI-python"):
        before = name.removesuffix("-python") + " before"
        add(f"CPU, {seconds:.0f} s call ({name}) against the code before this change ({BEFORE_COMMIT})",
            share(name, ' of one core'), f"before: {share(before)}", cpu(name), cpu(before))

    terminal = results["TUI"].terminal
    bench.report.note(BENCHMARK, (
        f"The UI's share: TUI minus headless, {tui.cpu_percent - headless.cpu_percent:+.1f} points of a core "
        f"(before this change: {cpu('TUI before') - cpu('headless before'):+.1f}). The session and audio "
        f"engine's share: headless minus floor-20, {headless.cpu_percent - floor.cpu_percent:+.1f} points. "
        f"Peak RSS before this change: headless {rss('headless before'):.0f} MB, TUI {rss('TUI before'):.0f} MB."
        + (f" The TUI's terminal (its tmux server, which parses and renders what the app writes) used "
           f"{terminal.cpu_percent:.1f} % over the TUI's window, not counted in the TUI's figure; the "
           "browser's figure does include its own rendering (its GPU and renderer processes)."
           if terminal is not None else "")
    ))
    bench.report.note(BENCHMARK, (
        f"Each subject holds a call with the echo assistant for {seconds:.0f} s while speech-like audio "
        "plays into the rig's microphone (the floor generates the same signal in memory instead); CPU "
        "is user+system time over the window divided by its wall time (100 % = one core): of the "
        "subject's process (all its threads, /proc/PID/stat), and for the browser of all its Chromium "
        "processes summed (sampled each second, so processes that come and go count). Peak RSS is the "
        "process's VmHWM at the end; for the browser the sum of RSS would count shared pages once per "
        "process, so its figure is the highest sum of PSS seen at a sample. Subjects: floor-20 and "
        "floor-10 (the bare SDK, tests/bench/floor.py, in 20 and 10 ms frames; wespoke-tui's capture hands "
        f"the SDK {CAPTURE_FRAME_MS} ms frames); "
        "browser; headless (`wespoke-tui call --no-tui`); TUI (`wespoke-tui --call-on-start` in a 110×32 "
        "tmux terminal, meters at their normal rate), both on the default, native audio engine "
        "(`rtc.PlatformAudio`), and headless-python and TUI-python, the same with `--audio-engine python` "
        "(PortAudio through sounddevice); baseline; and, as context, headless and TUI of "
        f"the code before this change ({BEFORE_COMMIT}, a git worktree run with the same venv). All on "
        f"the rig's devices with AEC on, {rounds} window(s) each, in this order and reversed every other "
        f"round: {', '.join(ORDER)}. A subject's CPU is the median of its windows (the range in brackets), "
        "its memory the highest."
    ))
