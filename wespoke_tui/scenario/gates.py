"""The verdict of a run set: the scenario's `[gates]`, and what the whole comes to (the exit code).

The rules:
- A gate is missed when its value is past its limit, or cannot be measured (no answer heard for a
  `pN_response_ms` gate, no WER for `max_wer`). `min_pass_rate` is the share of runs that must
  pass; without it every run must pass.
- Outcomes, the worst first: bad_file (2: the scenario file or a turn's audio could not be used),
  interrupted (130), infrastructure (3: a call failed for a reason outside the assistant's
  answers, `INFRASTRUCTURE_CODES`; it wins over failures, since the results cannot be trusted),
  failed (1: an expectation, a gate or the baseline), passed (0).

Only the standard library (and errors.py's codes); result types for type checking alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from wespoke_tui import errors
from wespoke_tui.scenario.baseline import Baseline, Regression, compared, regressions
from wespoke_tui.scenario.stats import ScenarioStats, scenario_stats, scenarios_of

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import RunResult


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INFRASTRUCTURE = "infrastructure"
    BAD_FILE = "bad_file"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES = {Outcome.PASSED: 0, Outcome.FAILED: 1, Outcome.BAD_FILE: 2, Outcome.INFRASTRUCTURE: 3,
              Outcome.INTERRUPTED: 130}
_SEVERITY = (Outcome.BAD_FILE, Outcome.INTERRUPTED, Outcome.INFRASTRUCTURE, Outcome.FAILED, Outcome.PASSED)

# A call that failed with one of these says nothing about the assistant's answers.
INFRASTRUCTURE_CODES = frozenset({
    errors.UNAUTHORIZED, errors.INSUFFICIENT_CREDITS, errors.RATE_LIMITED, errors.DOMAIN_NOT_ALLOWED,
    errors.ASSISTANT_NOT_FOUND, errors.CONNECTION_ERROR, errors.DISCONNECTED, errors.SERVER_ERROR,
    errors.INVALID_RESPONSE,
})


def worst(outcomes: Sequence[Outcome]) -> Outcome:
    return min(outcomes, key=_SEVERITY.index, default=Outcome.PASSED)


@dataclass(frozen=True, slots=True)
class GateResult:
    key: str  # "p90_response_ms", "min_pass_rate", "max_wer"
    limit: float
    value: float | None  # None: nothing to measure it on (a miss)
    line: int | None  # of the key in the scenario file

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        value = round(self.value, 9)  # a mean of 0.1, 0.2 and 0.3 is 0.2, not 0.20000000000000004
        return value >= self.limit if self.key == "min_pass_rate" else value <= self.limit


def check_gates(stats: ScenarioStats) -> list[GateResult]:
    """Every gate of the scenario (but `audio`, whose findings fail turns), measured on `stats`."""
    gates = stats.scenario.gates
    found = []
    for p in (50, 90, 95):
        limit = getattr(gates, f"p{p}_response_ms")
        if limit is not None:
            key = f"p{p}_response_ms"
            found.append(GateResult(key, limit, None if stats.latency is None else stats.latency.get(p),
                                    gates.lines.get(key)))
    if gates.min_pass_rate is not None:
        found.append(GateResult("min_pass_rate", gates.min_pass_rate, stats.pass_rate, gates.lines.get("min_pass_rate")))
    if gates.max_wer is not None:
        found.append(GateResult("max_wer", gates.max_wer, stats.mean_wer, gates.lines.get("max_wer")))
    return found


def infrastructure_failures(results: Sequence[RunResult]) -> list[RunResult]:
    return [r for r in results if r.error_code in INFRASTRUCTURE_CODES]


def run_outcome(result: RunResult) -> Outcome:
    """One run's: passed, failed, or infrastructure (its call failed with such a code)."""
    if result.error_code in INFRASTRUCTURE_CODES:
        return Outcome.INFRASTRUCTURE
    return Outcome.PASSED if result.passed else Outcome.FAILED


@dataclass(frozen=True, slots=True)
class ScenarioVerdict:
    stats: ScenarioStats
    gates: list[GateResult]
    regressions: list[Regression]
    outcome: Outcome
    baseline_turns: int | None = None  # turns the baseline had to compare (None: no baseline)

    @property
    def missed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def gated_findings(verdict: ScenarioVerdict) -> int:
    """The audio findings of the kinds `[gates] audio` lists, over every turn and run."""
    gated = verdict.stats.scenario.gates.audio
    return sum(n for turn in verdict.stats.turns for check, n in turn.audio.items() if check in gated)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict of a run set: each scenario's, and the whole's."""

    outcome: Outcome
    scenarios: list[ScenarioVerdict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code


def judge(results: Sequence[RunResult], *, baseline: Baseline | None = None, threshold_ms: float | None = None,
          threshold_pct: float | None = None, interrupted: bool = False) -> Judgement:
    """The verdict of `results` (every run of the set, in any order)."""
    verdicts = []
    for scenario in scenarios_of(results):
        stats = scenario_stats(scenario, results)
        gates = check_gates(stats)
        slower: list[Regression] = []
        known: int | None = None
        if baseline is not None:
            kwargs = {k: v for k, v in (("threshold_ms", threshold_ms), ("threshold_pct", threshold_pct))
                      if v is not None}
            slower = regressions(stats, baseline, **kwargs)
            known = compared(stats, baseline)
        runs = [r for r in results if r.scenario.path == scenario.path]
        failed = (any(not g.passed for g in gates) or bool(slower)
                  or (scenario.gates.min_pass_rate is None and not all(r.passed for r in runs)))
        outcome = (Outcome.INTERRUPTED if interrupted else Outcome.INFRASTRUCTURE if infrastructure_failures(runs)
                   else Outcome.FAILED if failed else Outcome.PASSED)
        verdicts.append(ScenarioVerdict(stats, gates, slower, outcome, known))
    if not results:
        return Judgement(Outcome.INTERRUPTED if interrupted else Outcome.FAILED)
    return Judgement(worst([v.outcome for v in verdicts]), verdicts)
