"""BENCHMARKS.md: the results table, the command, the machine, the date, a word on each miss,
and the sections a phase adds (the CPU profiles)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench import machine


@dataclass(slots=True)
class Row:
    benchmark: str
    what: str
    measured: str
    reference: str = "—"  # what it is compared with, named: "browser: 300 ms (…)"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None  # None: no target for this row
    why_missed: str = ""  # required when met is False: why, and what would close it


@dataclass(slots=True)
class Report:
    command: str
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # benchmark -> method notes
    sections: dict[str, list[str]] = field(default_factory=dict)  # title -> markdown lines
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def note(self, benchmark: str, text: str) -> None:
        self.notes.setdefault(benchmark, []).append(text)

    def section(self, title: str, lines: list[str]) -> None:
        self.sections.setdefault(title, []).extend(lines)

    def markdown(self) -> str:
        finished = dt.datetime.now(dt.timezone.utc)
        lines = [
            "# Benchmarks",
            "",
            "Figures from one run of the benchmark command on the local stack (real LiveKit server,",
            "local Wespoke API, echo test assistant) and the PulseAudio null-sink rig, all subjects on",
            "the same stack in the same run, interleaved so that drifting load hits them alike. Each",
            "figure is the median of several runs with the range in brackets; the machine is shared and",
            "noisy, so the comparisons are the headline and the absolute values only context. They are",
            "against the browser, the web embed's own stack (`tests/bench/browser.py`: livekit-client in",
            "headless Chromium on the rig's devices, echo cancellation, noise suppression and auto gain",
            "on), and against the bare-SDK floor (`tests/bench/floor.py`: the `livekit` SDK publishing a",
            "generated track and reading the assistant's `AudioStream`; no devices, no audio processing,",
            "no UI). The MediaDevices baseline (`tests/bench/baseline.py`: `rtc.MediaDevices` with its",
            "defaults, AEC on) stays as a subject, for context.",
            "",
            f"- Command: `{self.command}`",
            f"- Date: {self.started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC",
            f"- Machine: {machine.describe()}",
            f"- Load average at the end (1/5/15 min): {machine.load_average()}",
            "",
            "| Benchmark | What | Measured | Compared with | Ratio | Target | Met |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            verdict = {True: "yes", False: "**no**", None: "—"}[r.met]
            lines.append(
                f"| {r.benchmark} | {r.what} | {r.measured} | {r.reference} | {r.ratio} | {r.target} | {verdict} |"
            )
        misses = [r for r in self.rows if r.met is False]
        lines += ["", "## Missed targets", ""]
        if misses:
            lines += [f"- **{r.benchmark}, {r.what}**: {r.why_missed or 'no explanation recorded'}" for r in misses]
        else:
            lines.append("None.")
        for title, section in self.sections.items():
            lines += ["", f"## {title}", "", *section]
        lines += ["", "## How each figure was measured", ""]
        for benchmark, texts in self.notes.items():
            lines.append(f"### {benchmark}")
            lines.append("")
            lines += [f"- {t}" for t in texts]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.markdown())
