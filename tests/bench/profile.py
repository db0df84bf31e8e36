"""Where a live call's CPU goes: per-thread CPU from /proc and a py-spy sample of the Python side.

Two views of the same window, because neither alone answers the question:
- `/proc/PID/task/TID/stat` gives every thread's exact CPU time, native ones included (WebRTC's
  and the FFI's Rust threads, PulseAudio's client thread), which py-spy cannot see;
- `py-spy record --format raw` samples the Python threads' stacks (waiting samples excluded), and
  each sample is put in one category (`leaf_category`); the Python threads' CPU is divided in
  proportion.

    python -m tests.bench.profile [--seconds 30] [--subjects headless,TUI]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.bench.procstat import CLOCK_TICKS

# (category, pattern on "function (file:line)" frames; py-spy shortens livekit's paths to `rtc/…`).
# A sample counts for the first category that any frame of the callback it ran in matches, so
# an FFI call made by the APM is the APM's, and one made by the session is the SDK's.
CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("APM (echo cancellation etc.)", re.compile(r"audio/processing\.py|rtc/apm\.py")),
    ("resampling", re.compile(r"audio_resampler\.py|_resample")),
    ("meters (level maths)", re.compile(r"audio/meter\.py")),
    ("SDK / FFI (Python side of livekit.rtc: requests, events, frames)", re.compile(r"rtc/|livekit/|protobuf")),
    ("Textual rendering and widgets", re.compile(r"textual/|rich/|wespoke_tui/ui/")),
    ("PortAudio callbacks (jitter buffer, capture queue)", re.compile(r"sounddevice\.py|audio/(playback|jitter|capture)\.py")),
    ("event stream and reporting", re.compile(r"event_stream\.py|headless\.py")),
    ("session audio paths (mixing, framing)", re.compile(r"audio/mixing\.py|session/(playback|audio_path)\.py")),
)
SCHEDULING = "asyncio scheduling (the loop, wake-ups, handles)"
ASYNCIO = re.compile(r"asyncio/")
OTHER = "other Python"
# A leaf frame that is a wait, not work (py-spy's own idle filter misses some of them).
IDLE = re.compile(r"\.select \(selectors\.py|Condition\.wait|Event\.wait \(threading|Queue\.get \(queue|time\.sleep")
RATE_HZ = 100


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid → (thread name, CPU seconds so far) for every thread of `pid`."""
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return out


def thread_group(name: str) -> str:
    """Threads of one kind share a name up to a number (`tokio-runtime-w`, `python3` …)."""
    return re.sub(r"[-_ ]?\d+$", "", name) or name


@dataclass(frozen=True, slots=True)
class Profile:
    seconds: float
    threads: dict[str, float]  # thread group → % of one core
    python: dict[str, float]  # category → % of one core: share of samples × the Python threads' CPU
    samples: int
    main_group: str = ""  # the group of the process's own name: its Python threads and unnamed native ones

    @property
    def total(self) -> float:
        return sum(self.threads.values())


def leaf_category(frames: list[str]) -> str | None:
    """Where a sample's time went, or None for a thread that was waiting.

    Only the frames above the event loop's `_run_once` count (the callback the loop is running,
    not the `asyncio.run` / `App.run` entry every stack shares). A sample inside the loop's own
    machinery and nothing of ours is the loop's scheduling cost.
    """
    if not frames or not frames[-1] or IDLE.search(frames[-1]):
        return None
    runs = [i for i, frame in enumerate(frames) if "_run_once" in frame]
    work = frames[runs[-1] + 1 :] if runs else frames
    for name, pattern in CATEGORIES:
        if any(pattern.search(frame) for frame in work):
            return name
    if runs or any(ASYNCIO.search(frame) for frame in frames):
        return SCHEDULING
    return OTHER


def categorise(collapsed: str) -> Counter[str]:
    """Samples per category from py-spy's raw (collapsed stack) output; waiting samples dropped."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        category = leaf_category(stack.split(";") if stack else [])
        if category is not None:
            counts[category] += int(count)
    return counts


def profile(pid: int, seconds: float, keep: Path | None = None) -> Profile:
    """Samples `pid` for `seconds`; py-spy runs beside the /proc reading over the same window."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        before = thread_cpu(pid)
        t0 = time.monotonic()
        subprocess.run(
            [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(RATE_HZ),
             "--format", "raw", "--output", str(raw), "--nonblocking"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wall = time.monotonic() - t0
        after = thread_cpu(pid)
        collapsed = raw.read_text() if raw.exists() else ""
    if keep is not None:
        keep.write_text(collapsed)
    threads: Counter[str] = Counter()
    for tid, (name, cpu) in after.items():
        spent = cpu - before.get(tid, (name, 0.0))[1]
        threads[thread_group(name)] += 100.0 * spent / wall
    counts = categorise(collapsed)
    # The Python threads (the loop's and PortAudio's callback threads) carry the process's name;
    # their CPU is what the samples divide up (py-spy's idle filter is too coarse for absolutes).
    main_group = thread_group(after.get(pid, before.get(pid, ("", 0.0)))[0])
    python_cpu = threads.get(main_group, 0.0)
    total = sum(counts.values())
    shares = {k: python_cpu * v / total for k, v in counts.items()} if total else {}
    return Profile(seconds=wall, threads=dict(threads), python=shares, samples=sum(counts.values()),
                   main_group=main_group)


def table(title: str, profile_: Profile) -> list[str]:
    lines = [f"**{title}** ({profile_.total:.1f} % of one core over {profile_.seconds:.0f} s, "
             f"{profile_.samples} Python samples)", "", "| thread | % of one core |", "|---|---|"]
    for name, percent in sorted(profile_.threads.items(), key=lambda kv: -kv[1]):
        if percent >= 0.1:
            what = " (the Python threads and unnamed native ones)" if name == profile_.main_group else ""
            lines.append(f"| `{name}`{what} | {percent:.1f} |")
    lines += ["", "| Python side, by what it was doing | % of one core |", "|---|---|"]
    for name, percent in sorted(profile_.python.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {percent:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from tests.bench.stack import BenchStack
    from tests.bench.subjects import in_call, talk_wav

    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--subjects", default="headless,TUI")
    parser.add_argument("--keep", type=Path, help="a folder for the raw stacks (SUBJECT.stacks.txt)")
    args = parser.parse_args(argv)
    with BenchStack() as stack:
        mic = talk_wav(stack.dir / "talk.wav", args.seconds + 40)
        for name in args.subjects.split(","):
            subject, player = in_call(stack, name, args.seconds + 60, mic)
            try:
                keep = args.keep / f"{name}.stacks.txt" if args.keep else None
                print("\n".join(table(name, profile(subject.pid, args.seconds, keep))), "\n", flush=True)
            finally:
                player.terminate()
                subject.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
