"""What a scenario run set reports: text for people (in their language), JSON for scripts, JUnit
XML for CI, and JSON lines appended as each run ends.

The rule: every report carries the same verdict (gates.py) — the outcome (passed / failed /
infrastructure / bad_file / interrupted), pass rates, flaky turns, p50/p90/p95 response times
per turn and per scenario, WER, audio findings, gate verdicts and baseline regressions — so no
report says less than another. JSON and JUnit keys are English whatever the user's language.

Only the standard library; the runner's result types are imported for type checking alone.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from wespoke_tui.scenario.baseline import input_of
from wespoke_tui.scenario.checks import describe_finding
from wespoke_tui.scenario.gates import Judgement, Outcome, ScenarioVerdict, gated_findings, run_outcome
from wespoke_tui.scenario.model import Turn
from wespoke_tui.scenario.stats import Latency, TurnStats
from wespoke_tui.scenario.texts import Lang, ReportTexts

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import RunResult, TurnResult


def turn_title(turn: Turn, t: ReportTexts) -> str:
    """'turn 2: say 'Hello'' in the user's language (the action and what it says as in the file)."""
    return t("turn", number=turn.number, what=turn.title.split(": ", 1)[-1])


# ------------------------------------------------------------------------------ text


def _verdict(passed: bool, t: ReportTexts) -> str:
    return t("pass") if passed else t("fail")


def _write_turn(turn: TurnResult, t: ReportTexts, out: TextIO) -> None:
    out.write(f"  {t('turn_line', title=turn_title(turn.turn, t), verdict=_verdict(turn.passed, t), response=t.ms(turn.response_ms), transcript=t.ms(turn.transcript_ms))}\n")
    if turn.said:
        out.write(f"    {t('assistant', said=' '.join(turn.said.split()))}\n")
    if turn.tools:
        out.write(f"    {t('tools', tools=', '.join(turn.tools))}\n")
    if turn.heard is not None or turn.wer is not None:
        out.write(f"    {t('heard', heard=' '.join((turn.heard or '').split()), wer=t.ratio(turn.wer))}\n")
    elif turn.turn.expect.max_wer is not None:
        out.write(f"    {t('heard_nothing')}\n")
    if turn.turn.barge_in:
        reported = t("reported") if turn.barge_in_reported else ""
        stop = (t("not_stopped", reported=reported) if turn.stop_ms is None
                else t("stopped", ms=t.ms(turn.stop_ms), reported=reported))
        out.write(f"    {stop}\n")
    for finding in turn.audio:
        out.write(f"    {t('audio', finding=describe_finding(finding))}\n")
    for failure in turn.failures:
        out.write(f"    - {failure}\n")


def _latency_words(latency: Latency | None, t: ReportTexts) -> dict[str, str]:
    return {f"p{p}": t.ms(None if latency is None else latency.get(p)) for p in (50, 90, 95)}


def _write_summary(verdict: ScenarioVerdict, t: ReportTexts, out: TextIO) -> None:
    stats = verdict.stats
    scenario = stats.scenario
    out.write(f"{t('summary', name=scenario.name, runs=stats.runs, passed=stats.passed, rate=t.rate(stats.pass_rate))}\n")
    if stats.latency is None:
        out.write(f"  {t('no_latency')}\n")
    else:
        out.write(f"  {t('latency', count=stats.latency.count, **_latency_words(stats.latency, t))}\n")
    if stats.mean_wer is not None:
        out.write(f"  {t('mean_wer', wer=t.ratio(stats.mean_wer))}\n")
    for turn in stats.turns:
        words = [t("turn_summary", title=turn_title(turn.turn, t), passed=turn.passed, runs=turn.runs,
                   rate=t.rate(turn.pass_rate), **_latency_words(turn.latency, t))]
        if turn.mean_wer is not None:
            words.append(t("turn_wer", wer=t.ratio(turn.mean_wer)))
        if turn.audio:
            words.append(t("audio_count", findings=", ".join(f"{k} ×{n}" for k, n in turn.audio.items())))
        out.write(f"  {'; '.join(words)}\n")
        if turn.flaky:
            out.write(f"    {t('flaky')}\n")
    if stats.flaky:
        out.write(f"  {t('flaky_list', turns=', '.join(str(f.turn.number) for f in stats.flaky))}\n")
    for gate in verdict.gates:
        ms = gate.key.endswith("_ms")
        out.write("  " + t("gate", gate=gate.key, op="≥" if gate.key == "min_pass_rate" else "≤",
                           limit=t.ms(gate.limit) if ms else f"{gate.limit:g}",
                           value=t.ms(gate.value) if ms else t.ratio(gate.value),
                           verdict=t("gate_met") if gate.passed else t("gate_missed")) + "\n")
    if scenario.gates.audio:
        out.write(f"  {t('gate_audio', checks=', '.join(scenario.gates.audio), count=gated_findings(verdict))}\n")
    for slower in verdict.regressions:
        out.write("  " + t("slower", title=turn_title(scenario.turns[slower.turn - 1], t), now=t.ms(slower.median_ms),
                           before=t.ms(slower.baseline_ms), grew=t.ms(slower.grew_ms)) + "\n")


def write_text(results: Sequence[RunResult], judgement: Judgement, out: TextIO, lang: Lang = "en",
               baseline: Path | None = None) -> None:
    t = ReportTexts(lang)
    for result in results:
        out.write(t("run", name=result.scenario.name, run=result.run, verdict=_verdict(result.passed, t),
                    call=result.call_id or t("none"), seconds=t("seconds", value=result.seconds)) + "\n")
        if result.error:
            code = f" [{result.error_code}]" if result.error_code else ""
            out.write(f"  {t('call_failed', error=result.error)}{code}\n")
        for turn in result.turns:
            _write_turn(turn, t, out)
        if result.recording:
            out.write(f"  {t('recording', path=result.recording)}\n")
    for verdict in judgement.scenarios:
        _write_summary(verdict, t, out)
        if verdict.baseline_turns == 0 and baseline is not None:
            out.write(f"  {t('baseline_none', path=baseline)}\n")
    turns = [turn for r in results for turn in r.turns]
    out.write(t("totals", passed=sum(r.passed for r in results), runs=len(results),
                turns_passed=sum(turn.passed for turn in turns), turns=len(turns)) + "\n")
    out.write(t("outcome", outcome=t(f"outcome.{judgement.outcome}"), code=judgement.exit_code) + "\n")
    out.flush()


# ------------------------------------------------------------------------------ JSON


def turn_json(turn: TurnResult) -> dict[str, Any]:
    return {
        "turn": turn.turn.number, "title": turn.turn.title, "action": turn.turn.action, "input": input_of(turn.turn),
        "passed": turn.passed, "failures": [str(f) for f in turn.failures], "said": turn.said, "tools": turn.tools,
        "response_ms": turn.response_ms, "transcript_ms": turn.transcript_ms, "metrics": turn.metrics,
        "ended_at": turn.ended_at, "answered_at": turn.answered_at, "spoke_at": turn.spoke_at,
        "heard": turn.heard, "wer": turn.wer, "stop_ms": turn.stop_ms, "barge_in_reported": turn.barge_in_reported,
        "audio": [{"check": str(f.check), "value": f.value, "at_s": f.at_s} for f in turn.audio],
        "audio_figures": turn.audio_figures,
        "seconds": round(turn.seconds, 3),
    }


def run_json(result: RunResult) -> dict[str, Any]:
    """One run as the JSON report and the JSON lines give it."""
    return {"scenario": result.scenario.name, "file": str(result.scenario.path), "run": result.run,
            "outcome": str(run_outcome(result)), "passed": result.passed, "call_id": result.call_id,
            "error": result.error, "error_code": result.error_code, "seconds": round(result.seconds, 3),
            "recording": result.recording, "turns": [turn_json(t) for t in result.turns]}


def _turn_summary_json(turn: TurnStats) -> dict[str, Any]:
    return {"turn": turn.turn.number, "title": turn.turn.title, "action": str(turn.turn.action),
            "input": input_of(turn.turn), "line": turn.turn.line, "runs": turn.runs, "passed": turn.passed,
            "pass_rate": turn.pass_rate, "flaky": turn.flaky,
            "response_ms": None if turn.latency is None else turn.latency.as_json(),
            "mean_wer": turn.mean_wer, "audio": {str(k): n for k, n in turn.audio.items()}}


def scenario_json(verdict: ScenarioVerdict) -> dict[str, Any]:
    stats = verdict.stats
    return {
        "scenario": stats.scenario.name, "file": str(stats.scenario.path), "outcome": str(verdict.outcome),
        "runs": stats.runs, "runs_passed": stats.passed, "pass_rate": stats.pass_rate,
        "response_ms": None if stats.latency is None else stats.latency.as_json(), "mean_wer": stats.mean_wer,
        "flaky_turns": [t.turn.number for t in stats.flaky],
        "gates": [{"gate": g.key, "limit": g.limit, "value": g.value, "passed": g.passed, "line": g.line}
                  for g in verdict.gates],
        "audio_gates": [str(c) for c in stats.scenario.gates.audio],
        "regressions": [r.as_json() for r in verdict.regressions],
        "baseline_turns": verdict.baseline_turns,
        "turns": [_turn_summary_json(t) for t in stats.turns],
    }


def as_json(results: Sequence[RunResult], judgement: Judgement) -> dict[str, Any]:
    return {
        "outcome": str(judgement.outcome), "exit_code": judgement.exit_code,
        "passed": judgement.outcome is Outcome.PASSED,
        "scenarios": [scenario_json(v) for v in judgement.scenarios],
        "runs": [run_json(r) for r in results],
    }


def _dump(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8", newline="\n")


def write_json(results: Sequence[RunResult], judgement: Judgement, path: Path) -> None:
    _dump(as_json(results, judgement), path)


def bad_file_json(path: Path, line: int | None, message: str) -> dict[str, Any]:
    return {"outcome": str(Outcome.BAD_FILE), "exit_code": Outcome.BAD_FILE.exit_code, "passed": False,
            "error": {"file": str(path), "line": line, "message": message}, "scenarios": [], "runs": []}


def write_bad_file_json(path: Path, line: int | None, message: str, out: Path) -> None:
    _dump(bad_file_json(path, line, message), out)


class JsonLines:
    """`--jsonl PATH`: one line per run, appended and flushed to disk as the run ends (a killed run
    set keeps the runs it finished). The file is emptied when the run set starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("", encoding="utf-8")

    def __call__(self, result: RunResult) -> None:
        with open(self.path, "a", encoding="utf-8", newline="\n") as out:
            out.write(json.dumps(run_json(result), ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------ JUnit


def _properties(parent: ET.Element, values: dict[str, Any]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value is not None:
            text = f"{value:.1f}" if isinstance(value, float) else str(value)
            ET.SubElement(props, "property", name=name, value=text)


def _scenario_properties(verdict: ScenarioVerdict, judgement: Judgement) -> dict[str, Any]:
    stats = verdict.stats
    latency = stats.latency
    return {"outcome": str(judgement.outcome), "scenario.outcome": str(verdict.outcome),
            "scenario.pass_rate": None if stats.pass_rate is None else f"{stats.pass_rate:.3f}",
            **{f"scenario.p{p}_response_ms": None if latency is None else latency.get(p) for p in (50, 90, 95)},
            "scenario.mean_wer": None if stats.mean_wer is None else f"{stats.mean_wer:.3f}",
            "scenario.flaky_turns": ", ".join(str(t.turn.number) for t in stats.flaky) or None}


def write_junit(results: Sequence[RunResult], judgement: Judgement, path: Path) -> None:
    """One test suite per run, one test case per turn (a call that failed: one failed case); the
    verdict as properties; a "(gates)" suite with a case per gate and per baseline regression."""
    suites = ET.Element("testsuites")
    verdicts = {str(v.stats.scenario.path): v for v in judgement.scenarios}
    for result in results:
        verdict = verdicts[str(result.scenario.path)]
        turn_stats = {t.turn.number: t for t in verdict.stats.turns}
        cases = result.turns or []
        failures = sum(not t.passed for t in cases) + (1 if result.error else 0)
        suite = ET.SubElement(suites, "testsuite", name=f"{result.scenario.name} (run {result.run})",
                              tests=str(max(1, len(cases))), failures=str(failures), errors="0",
                              time=f"{result.seconds:.3f}")
        _properties(suite, {**_scenario_properties(verdict, judgement), "run.outcome": str(run_outcome(result)),
                            "run.error_code": result.error_code})
        if result.error:
            case = ET.SubElement(suite, "testcase", classname=result.scenario.name, name="call", time="0")
            ET.SubElement(case, "failure", message=result.error).text = result.error
        for turn in cases:
            case = ET.SubElement(suite, "testcase", classname=result.scenario.name, name=turn.turn.title,
                                 time=f"{turn.seconds:.3f}")
            stats = turn_stats.get(turn.turn.number)
            latency = None if stats is None else stats.latency
            _properties(case, {
                "response_ms": turn.response_ms, "transcript_ms": turn.transcript_ms, "heard": turn.heard,
                "wer": None if turn.wer is None else f"{turn.wer:.3f}", "stop_ms": turn.stop_ms,
                "turn.pass_rate": None if stats is None or stats.pass_rate is None else f"{stats.pass_rate:.3f}",
                "turn.flaky": None if stats is None else str(stats.flaky).lower(),
                **{f"turn.p{p}_response_ms": None if latency is None else latency.get(p) for p in (50, 90, 95)},
            })
            if not turn.passed:
                message = "; ".join(turn.failures)
                ET.SubElement(case, "failure", message=message).text = message
            findings = "".join(f"\naudio: {describe_finding(f)}" for f in turn.audio)
            ET.SubElement(case, "system-out").text = (
                f"assistant: {turn.said}\nresponse: {_ms(turn.response_ms)}; text: {_ms(turn.transcript_ms)}{findings}"
            )
    for verdict in judgement.scenarios:
        if verdict.gates or verdict.regressions or verdict.baseline_turns is not None:
            _gates_suite(suites, verdict, judgement)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _gates_suite(suites: ET.Element, verdict: ScenarioVerdict, judgement: Judgement) -> None:
    name = verdict.stats.scenario.name
    cases = len(verdict.gates) + len(verdict.regressions)
    suite = ET.SubElement(suites, "testsuite", name=f"{name} (gates)", tests=str(max(1, cases)),
                          failures=str(len(verdict.missed) + len(verdict.regressions)), errors="0", time="0")
    _properties(suite, _scenario_properties(verdict, judgement))
    for gate in verdict.gates:
        case = ET.SubElement(suite, "testcase", classname=f"{name} (gates)", name=f"gates.{gate.key}", time="0")
        _properties(case, {"limit": gate.limit, "value": gate.value})
        if not gate.passed:
            value = "nothing to measure" if gate.value is None else f"{gate.value:g}"
            message = f"gates.{gate.key}: {value} against the limit {gate.limit:g}"
            ET.SubElement(case, "failure", message=message).text = message
    for slower in verdict.regressions:
        turn = verdict.stats.scenario.turns[slower.turn - 1]
        case = ET.SubElement(suite, "testcase", classname=f"{name} (gates)", name=f"baseline: {turn.title}", time="0")
        message = (f"median response {slower.median_ms:.0f} ms, the baseline's {slower.baseline_ms:.0f} ms "
                   f"(+{slower.grew_ms:.0f} ms)")
        ET.SubElement(case, "failure", message=message).text = message
    if cases == 0:  # a baseline with nothing slower: one passing case says it was compared
        ET.SubElement(suite, "testcase", classname=f"{name} (gates)", name="baseline", time="0")


def write_bad_file_junit(path: Path, line: int | None, message: str, out: Path) -> None:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=f"{path.name} (bad file)", tests="1", failures="1", errors="0",
                          time="0")
    _properties(suite, {"outcome": str(Outcome.BAD_FILE), "file": str(path), "line": line})
    case = ET.SubElement(suite, "testcase", classname=path.name, name="scenario file", time="0")
    ET.SubElement(case, "failure", message=message).text = message
    ET.ElementTree(suites).write(out, encoding="utf-8", xml_declaration=True)
