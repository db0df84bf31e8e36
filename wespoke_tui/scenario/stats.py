"""What the runs of a scenario add up to: pass rates, flaky turns, response-time percentiles, WER.

The rules:
- Percentiles are linear interpolation between the closest ranks, the definition of numpy's
  default (`method="linear"`), of `statistics.quantiles(method="inclusive")` and of Excel's
  PERCENTILE.INC: with one value every percentile is that value.
- Times are the answers heard (`TurnResult.response_ms`); a turn with none heard adds no time (it
  fails on its own: no answer, or `expect.max_response_ms`). A scenario's percentiles pool the
  times of all its turns in all runs, wait turns left out (nobody asked anything).
- A turn's pass rate is over the runs that reached it; a turn that passed in some and failed in
  others is flaky. A scenario's pass rate is over its runs.
- The mean WER is over the `say` turns whose WER was measured.

Only the standard library; the runner's result types are imported for type checking alone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wespoke_tui.scenario.model import Action, AudioCheck, Scenario, Turn

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import RunResult, TurnResult

def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) of `values` (not empty), linear between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of response times, in ms, and how many times they are of."""

    p50: float
    p90: float
    p95: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Latency | None:
        """The percentiles of the values that are not None; None when there are none."""
        times = [v for v in values if v is not None]
        if not times:
            return None
        return cls(p50=percentile(times, 50), p90=percentile(times, 90), p95=percentile(times, 95), count=len(times))

    def get(self, p: int) -> float:
        return {50: self.p50, 90: self.p90, 95: self.p95}[p]

    def as_json(self) -> dict[str, float | int]:
        return {"p50": round(self.p50, 1), "p90": round(self.p90, 1), "p95": round(self.p95, 1), "count": self.count}


def mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True, slots=True)
class TurnStats:
    """One turn over the runs that reached it."""

    turn: Turn
    runs: int  # the runs that reached this turn
    passed: int
    latency: Latency | None
    mean_wer: float | None
    audio: dict[AudioCheck, int]  # findings of each kind, over the runs
    failures: list[tuple[int, str]] = field(default_factory=list)  # (run, failure), in run order

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.runs if self.runs else None

    @property
    def flaky(self) -> bool:
        """Passed in some runs and failed in others."""
        return 0 < self.passed < self.runs


@dataclass(frozen=True, slots=True)
class ScenarioStats:
    """A scenario over its runs."""

    scenario: Scenario
    runs: int
    passed: int
    latency: Latency | None  # every turn's answers but the wait turns'
    mean_wer: float | None
    turns: list[TurnStats]

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.runs if self.runs else None

    @property
    def flaky(self) -> list[TurnStats]:
        return [t for t in self.turns if t.flaky]


def turn_stats(turn: Turn, results: Sequence[tuple[int, TurnResult]]) -> TurnStats:
    """`results`: (run, this turn's result) for each run that reached it."""
    return TurnStats(
        turn=turn,
        runs=len(results),
        passed=sum(r.passed for _, r in results),
        latency=Latency.of(r.response_ms for _, r in results),
        mean_wer=mean(r.wer for _, r in results),
        audio=dict(Counter(f.check for _, r in results for f in r.audio)),
        failures=[(run, failure) for run, r in results for failure in r.failures],
    )


def scenario_stats(scenario: Scenario, results: Sequence[RunResult]) -> ScenarioStats:
    """The stats of `scenario` over `results` (its runs; others are left out)."""
    runs = sorted((r for r in results if r.scenario is scenario or r.scenario.path == scenario.path),
                  key=lambda r: r.run)
    by_turn: dict[int, list[tuple[int, TurnResult]]] = {t.number: [] for t in scenario.turns}
    for run in runs:
        for result in run.turns:
            by_turn.setdefault(result.turn.number, []).append((run.run, result))
    every = [r for rs in by_turn.values() for _, r in rs]
    return ScenarioStats(
        scenario=scenario,
        runs=len(runs),
        passed=sum(r.passed for r in runs),
        latency=Latency.of(r.response_ms for r in every if r.turn.action is not Action.WAIT),
        mean_wer=mean(r.wer for r in every),
        turns=[turn_stats(turn, by_turn[turn.number]) for turn in scenario.turns],
    )


def scenarios_of(results: Iterable[RunResult]) -> list[Scenario]:
    """Each scenario of `results` once, in order of first appearance."""
    seen: dict[str, Scenario] = {}
    for result in results:
        seen.setdefault(str(result.scenario.path), result.scenario)
    return list(seen.values())
