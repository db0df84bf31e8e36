"""CPU time and memory of a running process, read from /proc (Linux), no extra dependency."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak resident set) in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def children_of(pid: int) -> list[int]:
    """Child processes of `pid`, from /proc (no procps needed)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@dataclass(frozen=True, slots=True)
class CostWindow:
    cpu_percent: float  # of one core
    peak_rss_mb: float
    seconds: float


class CostMeter:
    """Measures a process over a window: `start()`, wait, `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._t0 = 0.0
        self._cpu0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = cpu_seconds(self.pid)

    def stop(self) -> CostWindow:
        cpu = cpu_seconds(self.pid) - self._cpu0
        wall = time.monotonic() - self._t0
        peak = memory_kib(self.pid).get("VmHWM", 0)
        return CostWindow(cpu_percent=100.0 * cpu / wall, peak_rss_mb=peak / 1024.0, seconds=wall)
