"""BENCHMARKS.md: the results table, the command, the machine, the date, and a word on each miss."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench import machine


@dataclass(slots=True)
class Row:
    benchmark: str
    what: str
    app: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None  # None: no target for this row
    why_missed: str = ""  # required when met is False: why, and what would close it


@dataclass(slots=True)
class Report:
    command: str
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # benchmark -> method notes
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def note(self, benchmark: str, text: str) -> None:
        self.notes.setdefault(benchmark, []).append(text)

    def markdown(self) -> str:
        finished = dt.datetime.now(dt.timezone.utc)
        lines = [
            "# Benchmarks",
            "",
            "Figures from one run of the benchmark command on the local stack (real LiveKit server,",
            "local Wespoke API, echo test assistant) and the PulseAudio null-sink rig. Each figure is",
            "the median of several runs with the range in brackets; the machine is shared and noisy, so",
            "the ratio against the bare-SDK baseline (`tests/bench/baseline.py`: `rtc.MediaDevices`",
            "with its defaults, AEC on) is the headline and the absolute value only context.",
            "",
            f"- Command: `{self.command}`",
            f"- Date: {self.started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC",
            f"- Machine: {machine.describe()}",
            f"- Load average at the end (1/5/15 min): {machine.load_average()}",
            "",
            "| Benchmark | What | wespoke-tui | Baseline | Ratio | Target | Met |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            verdict = {True: "yes", False: "**no**", None: "—"}[r.met]
            lines.append(
                f"| {r.benchmark} | {r.what} | {r.app} | {r.baseline} | {r.ratio} | {r.target} | {verdict} |"
            )
        misses = [r for r in self.rows if r.met is False]
        lines += ["", "## Missed targets", ""]
        if misses:
            lines += [f"- **{r.benchmark}, {r.what}**: {r.why_missed or 'no explanation recorded'}" for r in misses]
        else:
            lines.append("None.")
        lines += ["", "## How each figure was measured", ""]
        for benchmark, texts in self.notes.items():
            lines.append(f"### {benchmark}")
            lines.append("")
            lines += [f"- {t}" for t in texts]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.markdown())
