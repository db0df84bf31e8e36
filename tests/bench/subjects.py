"""The benchmark's subjects in a call, started alike for the round-trip, cost and profile phases.

    floor-20, floor-10  the bare SDK, no devices (tests/bench/floor.py), 20 or 10 ms frames
    baseline            `rtc.MediaDevices` with its defaults (tests/bench/baseline.py)
    headless            `wespoke-tui call --no-tui --audio-engine native` (this tree; a checkout: its default)
    TUI                 `wespoke-tui --call-on-start` in a 110×32 tmux terminal (native engine, as headless)
    headless-python     headless with `--audio-engine python` (PortAudio through sounddevice)
    TUI-python          TUI with `--audio-engine python`
    browser             livekit-client in headless Chromium (tests/bench/browser.py)

All of them are on the rig (the floor has no devices; the others use the rig's microphone and
speaker), in a call with the echo assistant. Headless and TUI run `code`: this tree or a checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.bench.browser import BrowserCall, start_browser
from tests.bench.floor import speech_like
from tests.bench.procstat import CostMeter, CostWindow, GroupCostMeter
from tests.bench.stack import CURRENT, BenchStack, Code, MarkedProcess, Tui, baseline, floor, headless
from tests.support.signals import write_wav

SUBJECTS = ("floor-20", "floor-10", "baseline", "headless", "headless-python", "TUI", "TUI-python", "browser")
# After the greeting, before a window starts: the microphone's audio has reached the assistant.
SETTLE_S = 1.0


class Player(Protocol):
    """What the rig's `play_into_mic` returns: audio playing into the microphone."""

    def terminate(self) -> None: ...


def play_talk(stack: BenchStack, wav: Path) -> subprocess.Popen[bytes]:
    """`wav` into the rig's microphone through a `paplay` client. The rig's own feed plays from
    the server's sample cache, which refuses a sample of a minute and a half ("Too large"); the
    benchmarks run on a quiet machine, where a client cannot starve."""
    return subprocess.Popen(["paplay", "--device=micfeed", "--latency-msec=20", str(wav)],
                            env={**os.environ, **stack.rig.env})


def talk_wav(path: Path, seconds: float) -> Path:
    """Speech-like microphone input: voiced syllables (harmonics of a gliding pitch) and pauses."""
    return write_wav(path, speech_like(seconds))


@dataclass
class Running:
    """A subject in its call."""

    name: str
    pid: int  # its process (the browser's: Chromium's main one)
    stop: Callable[[], None]
    group: Callable[[], list[int]] | None = None  # the browser: all its processes, for the cost
    terminal_pid: int | None = None  # the TUI: the tmux server that renders it
    browser: BrowserCall | None = None

    def meter(self) -> CostMeter | GroupCostMeter:
        return GroupCostMeter(self.group) if self.group is not None else CostMeter(self.pid)


def _marked(name: str, process: MarkedProcess) -> Running:
    def stop() -> None:
        process.proc.send_signal(signal.SIGTERM)
        process.finish()

    return Running(name, process.proc.pid, stop)


def start(stack: BenchStack, name: str, duration: float, *, aec: bool = True, code: Code = CURRENT) -> Running:
    """Starts subject `name` in a call that lasts up to `duration` s (the TUI: until stopped)."""
    if name.startswith("floor-"):
        return _marked(name, floor(stack, duration, int(name.removeprefix("floor-"))))
    if name == "baseline":
        return _marked(name, baseline(stack, duration, aec=aec))
    base, _, engine = name.partition("-")  # "headless-python": headless on the python engine
    # The bare names are the native engine; a checkout of older code predates the option.
    engine = engine or ("native" if code is CURRENT else "")
    if base == "headless" and engine in ("", "python", "native"):
        process = headless(stack, duration, aec=aec, code=code, engine=engine or None)

        def stop_headless() -> None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)

        return Running(name, process.pid, stop_headless)
    if base == "TUI" and engine in ("", "python", "native"):
        tui = Tui(stack, "--call-on-start", *([] if aec else ["--no-aec"]), code=code, engine=engine or None)
        try:
            return Running(name, tui.app_pid(), tui.close, terminal_pid=tui.server_pid())
        except BaseException:
            tui.close()
            raise
    if name == "browser":
        call = start_browser(stack, duration, aec=aec)
        return Running(name, call.proc.pid, call.stop, group=call.pids, browser=call)
    raise ValueError(f"unknown subject {name!r}; known: {', '.join(SUBJECTS)}")


def in_call(stack: BenchStack, name: str, duration: float, mic: Path, *, code: Code = CURRENT,
            ) -> tuple[Running, Player]:
    """`name` in a call with the greeting over and `mic` (speech) playing into the microphone.

    The caller ends both: the player with `terminate()`, the subject with `stop()`.
    """
    known = len(stack.pool.assistants)
    subject = start(stack, name, duration, code=code)
    try:
        stack.last_assistant(known).wait_for("greeting_done", timeout=30)
        player = play_talk(stack, mic)
    except BaseException:
        subject.stop()
        raise
    time.sleep(SETTLE_S)
    return subject, player


@dataclass(frozen=True, slots=True)
class Cost:
    window: CostWindow
    terminal: CostWindow | None  # the TUI's tmux server over the same window


def cost(stack: BenchStack, name: str, seconds: float, mic: Path, *, code: Code = CURRENT) -> Cost:
    """CPU and memory of `name` over `seconds` of a call with speech into the microphone."""
    subject, player = in_call(stack, name, seconds + 60, mic, code=code)
    try:
        meter = subject.meter()
        terminal = CostMeter(subject.terminal_pid) if subject.terminal_pid is not None else None
        meter.start()
        if terminal is not None:
            terminal.start()
        time.sleep(seconds)
        window = meter.stop()
        return Cost(window, terminal.stop() if terminal is not None else None)
    finally:
        player.terminate()
        subject.stop()
