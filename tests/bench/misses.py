"""The targets, and for each one missed a sentence on why and what would close it.

Each explanation is built from the run's own figures (and the profiles, when that phase ran),
so it says only what the run shows; the app's buffer sizes are read from its code, not copied.
"""

from __future__ import annotations

from tests.bench.procstat import CostWindow
from tests.bench.profile import Profile
from tests.bench.stats import Sample
from wespoke_tui.audio.base import FRAME_MS
from wespoke_tui.audio.capture import CAPTURE_FRAME_MS
from wespoke_tui.audio.jitter import TARGET_STEP_MS
from wespoke_tui.audio.meter import METER_HZ
from wespoke_tui.config import JITTER_DEFAULT_MS
from wespoke_tui.session.parts import SOURCE_QUEUE_MS, STREAM_FRAME_MS

SETUP_RATIO_MAX = 1.0  # × the browser's median
TUI_CPU_BROWSER_MAX = 1.0  # × the browser's CPU
TUI_CPU_FLOOR_AIM = 1.1  # × floor-20's CPU
HEADLESS_CPU_FLOOR_MAX = 1.2  # × floor-20's CPU
TUI_RSS_MAX_MB = 100.0
HELP_MAX_MS = 300.0

# What would shrink each of the profile's Python-side categories (tests/bench/profile.py).
REMEDIES = {
    "APM (echo cancellation etc.)": (
        f"the echo canceller runs on every {FRAME_MS} ms block of both directions, each block a round trip "
        "through the SDK's FFI (all from the capture callback, back to back, which made them cheaper); "
        "WebRTC's processing itself is the price of AEC, but the crossings would go if capture, APM and "
        "playback ran natively (as they do in the browser)"),
    "resampling": "the devices run at another rate than 48 kHz; opening them at 48 kHz would remove it",
    "meters (level maths)": "the level maths runs on every frame; running it at the meters' rate would cut it",
    "SDK / FFI (Python side of livekit.rtc: requests, events, frames)": (
        "every frame crosses the FFI as a request or an event; fewer, larger frames would cut it, at a "
        "latency cost"),
    "Textual rendering and widgets": (
        f"the screen repaints while audio flows (the meters at up to {METER_HZ:.0f} Hz); a lower rate, or "
        "less of the screen re-rendered per update, would cut it"),
    "PortAudio callbacks (jitter buffer, capture queue)": (
        "each callback is a wake-up of a sleeping thread, which costs more here than the work it does; "
        f"fewer of them (the speaker's device blocks are {FRAME_MS} ms, the microphone's "
        f"{CAPTURE_FRAME_MS} ms) would cut it, at a latency cost on the speaker's side"),
    "event stream and reporting": "the events emitted per second; emitting fewer would cut it",
    "session audio paths (mixing, framing)": (
        "the per-frame mixing and framing; passing a single track's frames through unmixed would cut it"),
    "asyncio scheduling (the loop, wake-ups, handles)": (
        "each hand-off between a device thread and the loop wakes the loop; fewer, larger hand-offs "
        "would cut it"),
}


def overlap(app: Sample, ref: Sample) -> bool:
    return app.low <= ref.high and ref.low <= app.high


def spread(app: Sample, ref: Sample, ref_name: str) -> str:
    """A sentence when the gap is inside the run-to-run spread, else nothing."""
    if app.n < 2 or ref.n < 2 or not overlap(app, ref):
        return ""
    return (
        f"The measurements overlap ({app.low:.0f}–{app.high:.0f} ms against the {ref_name}'s "
        f"{ref.low:.0f}–{ref.high:.0f} ms): on this shared 2-core machine the gap is within their "
        "spread, so more runs on a quieter machine would tell whether it is real. "
    )


def setup(name: str, app: Sample, browser: Sample, headless: Sample) -> str:
    text = (
        f"The {name} call took {app.median:.0f} ms at the median, the browser's {browser.median:.0f} ms "
        f"({app.median - browser.median:+.0f} ms). " + spread(app, browser, "browser")
        + "After `Room.connect` the session opens the speaker, then the microphone, then creates and "
        "publishes the track, one step after the other (the browser too publishes only once connected, "
        "and its clock stops when the publish resolves); opening the devices while the connect is in "
        "flight (they do not depend on it) would take them off the critical path."
    )
    if name == "TUI":
        text += (
            f" The TUI took {app.median - headless.median:+.0f} ms against headless: the UI's work on the "
            "same event loop during setup (each state change updates the status bar and the call "
            "button, and a toast is posted), which delays the session's next steps."
        )
    return text


def round_trip(name: str, app: Sample, browser: Sample, neteq: Sample) -> str:
    held = f" (NetEQ held {neteq.median:.0f} ms on average in its calls)" if neteq.values else ""
    if not name.endswith("-python"):  # the native engine: the browser's design
        return (
            f"The {name} round trip was {app.median:.0f} ms at the median, the browser's {browser.median:.0f} ms "
            f"({app.median - browser.median:+.0f} ms). " + spread(app, browser, "browser")
            + "On the native engine no Python is in the audio path: WebRTC's device module captures, "
            "processes and plays NetEQ's output itself, as the browser does; what differs is the device "
            "module's own PulseAudio streams (their buffer sizes are the module's, not settable from the "
            "SDK) against Chromium's. An SDK option for the module's stream latency would be the knob."
        )
    return (
        f"The {name} round trip was {app.median:.0f} ms at the median, the browser's {browser.median:.0f} ms "
        f"({app.median - browser.median:+.0f} ms). " + spread(app, browser, "browser")
        + f"Beyond WebRTC's own jitter buffer, which both have{held}, the app's path holds "
        f"{CAPTURE_FRAME_MS} ms device blocks and frames from the microphone to the loop, {FRAME_MS} ms "
        "device blocks to the speaker, "
        f"an `AudioSource` queue of up to {SOURCE_QUEUE_MS} ms, {STREAM_FRAME_MS} ms `AudioStream` frames "
        f"and a playback jitter buffer that starts at {JITTER_DEFAULT_MS} ms; the browser plays NetEQ's "
        "output straight to its audio device. A lower jitter-buffer start (`--jitter-ms`) is the knob "
        f"that would close a real gap, at the risk of underruns (the buffer grows {TARGET_STEP_MS} ms "
        "after each one)."
    )


def profile_summary(name: str, found: Profile | None) -> str:
    """What the run's profile of `name` shows: its busiest threads and Python-side parts."""
    if found is None:
        return ""
    threads = sorted(found.threads.items(), key=lambda kv: -kv[1])[:3]
    parts = sorted(found.python.items(), key=lambda kv: -kv[1])[:3]
    text = (
        f"This run's {found.seconds:.0f} s profile of the {name} call (Where the CPU goes) puts "
        f"{found.total:.1f} % of a core in its threads, most in "
        + ", ".join(f"`{thread}` {percent:.1f} %" for thread, percent in threads)
    )
    if parts:
        text += "; its Python side's largest parts: " + ", ".join(f"{part} {percent:.1f} %" for part, percent in parts)
    return text + ". "


UI_PART = "Textual rendering and widgets"


def remedy(name: str, found: Profile | None, *, ui: bool) -> str:
    """What would close the gap: the remedy for the profile's largest part of the UI (`ui`) or of the rest."""
    if found is None:
        return ""
    parts = [(part, percent) for part, percent in found.python.items() if (part == UI_PART) == ui]
    if not parts:
        return ""
    part, percent = max(parts, key=lambda kv: kv[1])
    fix = REMEDIES.get(part)
    if fix is None:
        return ""
    return f"In the {name} profile its largest part is {part.split(' (')[0]} ({percent:.1f} %): {fix}."


def tui_cpu_vs_browser(tui: CostWindow, browser: CostWindow, headless: CostWindow, floor: CostWindow,
                       tui_profile: Profile | None, headless_profile: Profile | None) -> str:
    ui = tui.cpu_percent - headless.cpu_percent
    engine = headless.cpu_percent - floor.cpu_percent
    if ui >= engine:
        larger = "The UI's share is the larger. " + remedy("TUI", tui_profile, ui=True)
    else:
        larger = "The session and audio engine's share is the larger. " + remedy("headless", headless_profile, ui=False)
    return (
        f"The TUI used {tui.cpu_percent:.1f} % of a core, the browser {browser.cpu_percent:.1f} % summed "
        f"over its {browser.processes} processes. Without the UI the same session used "
        f"{headless.cpu_percent:.1f} % (headless): the UI adds {ui:+.1f} points, and the session and audio "
        f"engine {engine:+.1f} points over the bare-SDK floor's {floor.cpu_percent:.1f} %. "
        + profile_summary("TUI", tui_profile) + larger
    ).rstrip()


def cpu_vs_floor(name: str, subject: CostWindow, floor: CostWindow, headless: CostWindow | None,
                 found: Profile | None) -> str:
    text = (
        f"The {name} call used {subject.cpu_percent:.1f} % of a core, floor-20 {floor.cpu_percent:.1f} % "
        f"({subject.cpu_percent / floor.cpu_percent:.2f}×). The floor sends generated frames and throws "
        "away what it receives; the app also runs both sound devices (a PortAudio callback every "
        f"{CAPTURE_FRAME_MS} ms for the microphone and every {FRAME_MS} ms for the speaker), the echo "
        "canceller, the capture framing, the jitter buffer and the meters. "
    )
    if headless is not None:
        text += (
            f"Of the {subject.cpu_percent - floor.cpu_percent:.1f} points above the floor, "
            f"{headless.cpu_percent - floor.cpu_percent:.1f} are the headless session's and "
            f"{subject.cpu_percent - headless.cpu_percent:.1f} the UI's; the TUI's profile and what would "
            "close the gap are under its row against the browser. "
        )
    return (text + profile_summary(name, found) + remedy(name, found, ui=False)).rstrip()


def tui_rss(tui: CostWindow, headless: CostWindow, floor: CostWindow) -> str:
    text = (
        f"The TUI peaked at {tui.peak_rss_mb:.0f} MB: the bare SDK alone holds {floor.peak_rss_mb:.0f} MB "
        "(floor-20: the interpreter, the LiveKit FFI library, numpy, httpx), the session and audio engine "
        f"add {headless.peak_rss_mb - floor.peak_rss_mb:+.0f} MB (headless {headless.peak_rss_mb:.0f} MB: "
        f"PortAudio and the rest of the app), the UI {tui.peak_rss_mb - headless.peak_rss_mb:+.0f} MB "
        "(Textual, rich, the widgets). "
    )
    if floor.peak_rss_mb >= TUI_RSS_MAX_MB:
        return text + "The target is below what the SDK alone holds, so no change to the app can meet it here."
    larger = "UI's" if tui.peak_rss_mb - headless.peak_rss_mb >= headless.peak_rss_mb - floor.peak_rss_mb else "engine's"
    return text + f"The {larger} part is the larger; shrinking it is what would close the gap."


def underruns(count: int, seconds: float) -> str:
    return (
        f"{count} underrun(s) in {seconds / 60:.1f} min: the assistant's audio arrived later than the "
        "jitter buffer covered (the machine is shared, and the echo assistant paces itself with "
        f"asyncio.sleep). The buffer grows by {TARGET_STEP_MS} ms after each underrun; a larger start "
        "(`--jitter-ms`) would close it, at a latency cost."
    )


def glitches(count: int, seconds: float, where: str) -> str:
    return (
        f"{count} glitch(es) heard in {seconds / 60:.1f} min ({where}): the tone dipped at the speaker. "
        "The recording cannot say which buffer ran dry (the assistant's own pacing with asyncio.sleep "
        "on a shared machine, the network jitter buffer, or the device); the Python engine's counters "
        "beside it say whether its playback buffer did."
    )


HELP = (
    "`--help` is printed before any heavy import; what remains is the interpreter's start and the "
    "console script's own imports, so a slower machine, not the app, is the likely cause."
)
