"""`--baseline previous.json`: the turns whose median response time grew since an earlier run.

The rule: a turn is flagged (and the run set fails, exit 1) when its median (p50) response time
is more than `threshold_ms` above the baseline's median of the same turn AND more than
`threshold_pct` percent above it (defaults 200 ms and 20 %: a short answer may jitter by 100 ms,
a long one by 10 %; the flag wants both to be exceeded). A turn is the same turn when the
scenario's name, the turn's number, its action and its input (the text; a WAV file's name; the
wait) are the same; other turns are not compared. The baseline is a `--json` report: its
`scenarios` section gives each turn's p50; an older report without one, its runs' times.

Only the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from wespoke_tui.scenario.model import Action, Turn
from wespoke_tui.scenario.stats import ScenarioStats, percentile

DEFAULT_THRESHOLD_MS = 200.0
DEFAULT_THRESHOLD_PCT = 20.0


class BaselineError(Exception):
    """The baseline file cannot be read as a JSON report; the message is for the user."""


def turn_input(action: str, given: Any) -> str:
    """What a turn does, comparable across machines: the text, a WAV file's name, the wait."""
    text = "" if given is None else str(given)
    return PurePath(text).name if action == Action.SAY_WAV else text


def input_of(turn: Turn) -> str:
    """A turn's `input` as the JSON report writes it."""
    if turn.action is Action.WAIT:
        return f"{turn.wait_s:g} s"
    return turn.text if turn.text is not None else str(turn.wav)


@dataclass(frozen=True, slots=True)
class Baseline:
    path: Path
    medians: dict[tuple[str, int], tuple[str, str, float]]  # (scenario, turn) → (action, input, p50 ms)


@dataclass(frozen=True, slots=True)
class Regression:
    """A turn answered slower than in the baseline."""

    turn: int
    baseline_ms: float
    median_ms: float

    @property
    def grew_ms(self) -> float:
        return self.median_ms - self.baseline_ms

    @property
    def grew_pct(self) -> float | None:
        return 100 * self.grew_ms / self.baseline_ms if self.baseline_ms > 0 else None

    def as_json(self) -> dict[str, Any]:
        pct = self.grew_pct
        return {"turn": self.turn, "baseline_p50_ms": round(self.baseline_ms, 1), "p50_ms": round(self.median_ms, 1),
                "grew_ms": round(self.grew_ms, 1), "grew_pct": None if pct is None else round(pct, 1)}


def load_baseline(path: Path) -> Baseline:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BaselineError(f"{path}: not a JSON report ({exc})") from None
    try:
        medians = _from_summary(doc) if isinstance(doc, dict) and "scenarios" in doc else _from_runs(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaselineError(f"{path}: not a JSON report of 'wespoke-tui test --json' ({type(exc).__name__}: "
                            f"{exc})") from None
    return Baseline(path, medians)


def _from_summary(doc: dict[str, Any]) -> dict[tuple[str, int], tuple[str, str, float]]:
    medians = {}
    for scenario in doc["scenarios"]:
        for turn in scenario["turns"]:
            times = turn.get("response_ms")
            if isinstance(times, dict) and isinstance(times.get("p50"), (int, float)):
                action = str(turn["action"])
                medians[(str(scenario["scenario"]), int(turn["turn"]))] = (
                    action, turn_input(action, turn.get("input")), float(times["p50"]))
    return medians


def _from_runs(doc: dict[str, Any]) -> dict[tuple[str, int], tuple[str, str, float]]:
    times: dict[tuple[str, int], tuple[str, str, list[float]]] = {}
    for run in doc["runs"]:
        for turn in run["turns"]:
            action = str(turn["action"])
            key = (str(run["scenario"]), int(turn["turn"]))
            entry = times.setdefault(key, (action, turn_input(action, turn.get("input")), []))
            if isinstance(turn.get("response_ms"), (int, float)):
                entry[2].append(float(turn["response_ms"]))
    return {key: (action, given, percentile(ms, 50)) for key, (action, given, ms) in times.items() if ms}


def regressions(stats: ScenarioStats, baseline: Baseline, *, threshold_ms: float = DEFAULT_THRESHOLD_MS,
                threshold_pct: float = DEFAULT_THRESHOLD_PCT) -> list[Regression]:
    """The turns of `stats` whose median grew past both thresholds (see the module's rule)."""
    found = []
    for turn in stats.turns:
        known = baseline.medians.get((stats.scenario.name, turn.turn.number))
        if turn.latency is None or known is None:
            continue
        action, given, before = known
        if action != turn.turn.action or given != turn_input(action, input_of(turn.turn)):
            continue
        grew = turn.latency.p50 - before
        if grew > threshold_ms and grew > before * threshold_pct / 100:
            found.append(Regression(turn.turn.number, before, turn.latency.p50))
    return found


def compared(stats: ScenarioStats, baseline: Baseline) -> int:
    """How many of the scenario's turns the baseline has (to say so when it has none)."""
    return sum((stats.scenario.name, t.turn.number) in baseline.medians for t in stats.turns)
