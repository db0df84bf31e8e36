"""CPU time and memory of a running process or a group of them, read from /proc (Linux), no extra dependency."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
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


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: each shared page counts 1/N in each of the N processes
    mapping it, so the PSS of a group of processes (a browser and its children) adds up."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0  # no address space: a kernel thread, or a process ending as we read


def _parents() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, session id) of every live process, from /proc (no procps needed).

    Zombies are left out: they have ended, only their exit status waits to be collected.
    """
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended while we looked
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
    return out


def children_of(pid: int) -> list[int]:
    """Child processes of `pid`."""
    return [child for child, (parent, _) in _parents().items() if parent == pid]


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (empty once `pid` has ended)."""
    parents = _parents()
    if pid not in parents:
        return []
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, (parent, _) in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def session_members(sid: int) -> list[int]:
    """Every process of session `sid`, including those whose parent has gone (reparented to init)."""
    return [pid for pid, (_, session) in _parents().items() if session == sid]


@dataclass(frozen=True, slots=True)
class CostWindow:
    cpu_percent: float  # of one core
    peak_rss_mb: float
    seconds: float
    peak_pss_mb: float | None = None  # GroupCostMeter only: the highest sampled sum of PSS
    processes: int = 1  # GroupCostMeter only: how many processes took part in the window


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


class GroupCostMeter:
    """Measures a group of processes over a window, summed: `start()`, wait, `stop()`.

    `pids()` names the group's current members (e.g. `lambda: process_tree(root)`); it is asked
    again at every sample, every `interval` seconds, so processes that start during the window
    count too (all their CPU time is inside it) and one that ends keeps the CPU time of its last
    sample. CPU is the summed user + system time over the wall time (100 % = one core);
    `peak_rss_mb` sums each process's own peak (VmHWM), an upper bound since the peaks need not
    coincide; `peak_pss_mb` is the highest sum of PSS seen at a sample, the group's real footprint
    (shared pages counted once). Reading smaps_rollup costs this process, not the group, CPU.
    """

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float = 1.0) -> None:
        self._pids = pids
        self._interval = interval
        self._t0 = 0.0
        self._cpu0: dict[int, float] = {}
        self._cpu: dict[int, float] = {}
        self._hwm: dict[int, int] = {}
        self._peak_pss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._cpu, self._hwm, self._peak_pss = {}, {}, 0
        self._sample()
        self._cpu0 = dict(self._cpu)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="group-cost-meter", daemon=True)
        self._thread.start()

    def stop(self) -> CostWindow:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        wall = time.monotonic() - self._t0
        cpu = sum(seconds - self._cpu0.get(pid, 0.0) for pid, seconds in self._cpu.items())
        return CostWindow(
            cpu_percent=100.0 * cpu / wall,
            peak_rss_mb=sum(self._hwm.values()) / 1024.0,
            seconds=wall,
            peak_pss_mb=self._peak_pss / 1024.0,
            processes=len(self._cpu),
        )

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        pss = 0
        for pid in self._pids():
            try:
                cpu, hwm, pid_pss = cpu_seconds(pid), memory_kib(pid).get("VmHWM", 0), pss_kib(pid)
            except OSError:
                continue  # ended between the listing and the reading
            self._cpu[pid] = cpu
            self._hwm[pid] = max(hwm, self._hwm.get(pid, 0))
            pss += pid_pss
        self._peak_pss = max(self._peak_pss, pss)
