"""The verdict of `wespoke-tui test` and its reports, from results built by hand (no call): the
percentiles, pass rates and flaky turns, the checks of a turn beyond its words, each gate, the
exit code (0/1/2/3/130, 3 wins), GitHub annotations read back as GitHub reads them, the step
summary, JSON lines per run, the baseline, and the reports' languages."""

from __future__ import annotations

import io
import json
import re
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from wespoke_tui import cli
from wespoke_tui.config import ConfigError, HeadlessOptions, load_settings
from wespoke_tui.scenario import github
from wespoke_tui.scenario.audio_checks import AudioFinding
from wespoke_tui.scenario.baseline import BaselineError, load_baseline
from wespoke_tui.scenario.checks import Failure, audio_failures, expectation_failures, failure_key
from wespoke_tui.scenario.command import run_sink
from wespoke_tui.scenario.gates import Judgement, Outcome, judge
from wespoke_tui.scenario.model import AudioCheck, Scenario, load_scenario
from wespoke_tui.scenario.publish import publish
from wespoke_tui.scenario.report import as_json, write_json, write_junit, write_text
from wespoke_tui.scenario.runner import RunResult, TurnResult, check
from wespoke_tui.scenario.stats import Latency, percentile
from wespoke_tui.scenario.texts import REPORT_STRINGS, ReportTexts

TOML = """name = "Orders"
[[turns]]
say = "Where is my order?"
expect.contains = "order"
expect.max_response_ms = 1500
expect.max_wer = 0.3
[[turns]]
type = "thanks"
[[turns]]
wait = 3
expect.speaks = false
"""

GATES = """
[gates]
p50_response_ms = 1000
p90_response_ms = 1500
p95_response_ms = 2000
min_pass_rate = 0.5
max_wer = 0.2
audio = ["dead_air"]
"""


def scenario_of(tmp_path: Path, text: str = TOML, name: str = "orders.toml") -> Scenario:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_scenario(path)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def run_of(scenario: Scenario, run: int, times: list[float | None], *, failing: dict[int, str] | None = None,
           wers: list[float | None] | None = None, error: str | None = None, code: str | None = None) -> RunResult:
    """A run whose turn i answered after times[i] ms; `failing`: turn number → a failure."""
    failing = failing or {}
    turns = [TurnResult(turn, failures=[failing[turn.number]] if turn.number in failing else [], response_ms=ms,
                        wer=None if wers is None else wers[i], said="your order")
             for i, (turn, ms) in enumerate(zip(scenario.turns, times))]
    return RunResult(scenario, run, call_id=f"call_{run}", error=error, error_code=code, turns=turns, seconds=3.0)


# ------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize("values", [[1, 2, 3, 4], [900, 1200, 1100, 1500, 4000, 1000, 1300], [5.5, 1.25, 3.0]])
def test_percentiles_are_the_inclusive_linear_definition(values: list[float]) -> None:
    expected = statistics.quantiles(values, n=100, method="inclusive")
    for p in (50, 90, 95):
        assert percentile(values, p) == pytest.approx(expected[p - 1])
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)


def test_with_one_value_every_percentile_is_that_value() -> None:
    assert Latency.of([None, 1234.0, None]) == Latency(1234.0, 1234.0, 1234.0, 1)
    assert Latency.of([None]) is None


def test_pass_rates_and_a_flaky_turn_are_named_in_every_report(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path)
    results = [run_of(scenario, r, [1000.0 + r, 500.0, None], failing={2: "expected x"} if r in (2, 4) else None)
               for r in range(1, 5)]
    judgement = judge(results)
    (verdict,) = judgement.scenarios
    stats = verdict.stats
    assert (stats.runs, stats.passed, stats.pass_rate) == (4, 2, 0.5)
    first, second, third = stats.turns
    assert (first.pass_rate, first.flaky) == (1.0, False)
    assert (second.passed, second.runs, second.pass_rate, second.flaky) == (2, 4, 0.5, True)
    assert [t.turn.number for t in stats.flaky] == [2]
    assert third.latency is None  # a wait turn that heard nothing adds no time
    assert stats.latency is not None and stats.latency.count == 8  # turns 1 and 2 of 4 runs
    assert judgement.outcome is Outcome.FAILED  # no min_pass_rate: every run must pass

    out = io.StringIO()
    write_text(results, judgement, out)
    text = out.getvalue()
    assert "turn 2: type 'thanks': passed 2 of 4 runs (50%)" in text and "FLAKY" in text
    assert "flaky turns: 2" in text and "2 of 4 runs passed" in text
    assert "Result: failed: an expectation, a gate or the baseline was missed (exit status 1)" in text
    doc = as_json(results, judgement)
    (summary,) = doc["scenarios"]
    assert summary["flaky_turns"] == [2] and summary["pass_rate"] == 0.5 and doc["outcome"] == "failed"
    assert summary["turns"][1]["flaky"] is True and summary["turns"][1]["pass_rate"] == 0.5
    assert summary["turns"][0]["response_ms"] == {"p50": 1002.5, "p90": 1003.7, "p95": 1003.9, "count": 4}
    junit = tmp_path / "report.xml"
    write_junit(results, judgement, junit)
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property") if p.get("name", "").startswith("scenario.")}
    assert props["scenario.flaky_turns"] == "2" and props["scenario.pass_rate"] == "0.500"
    assert props["scenario.p50_response_ms"] is not None
    case = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("turn 2"))
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["turn.flaky"] == "true"
    markdown = github.step_summary(judgement, ReportTexts("en"))
    assert "⚠ FLAKY" in markdown and "flaky turns: 2" in markdown


# ------------------------------------------------------------------------------ checks


def test_the_checks_beyond_the_words(tmp_path: Path) -> None:
    text = TOML + """[[turns]]
say = "Wait, stop"
interrupt_after_ms = 500
expect.stops_within_ms = 600
[[turns]]
say = "cough"
interrupt_after_ms = 500
expect.keeps_talking = true
[[turns]]
wait = 4
expect.speaks = true
"""
    scenario = scenario_of(tmp_path, text)
    say, _, quiet, stop, keep, speak = scenario.turns

    def failures(turn_index: int, **fields: object) -> list[str]:
        turn = scenario.turns[turn_index]
        return expectation_failures(turn, TurnResult(turn, **fields), ended=False)  # type: ignore[arg-type]

    assert failures(0, response_ms=1400.0, wer=0.1, heard="where is my order") == []
    late, misheard = failures(0, response_ms=1700.0, wer=0.5, heard="wear is my udder")
    assert late == "the answer was heard after 1700 ms; expected within 1500 ms"
    assert misheard.startswith('the assistant heard "wear is my udder": word error rate 0.50')
    assert [failure_key(f) for f in (late, misheard)] == ["expect.max_response_ms", "expect.max_wer"]
    assert failures(0, response_ms=None, wer=None)[0] == "expected an answer within 1500 ms; none was heard"
    assert "sent no transcript" in failures(0, response_ms=1.0, wer=None)[0]
    assert failures(3, stop_ms=None) == ["expected the assistant to stop within 600 ms of the interruption; "
                                         "the assistant did not stop"]
    assert failures(3, stop_ms=900.0) == ["the assistant stopped after 900 ms; expected within 600 ms"]
    assert failures(3, stop_ms=400.0) == []
    assert failures(4, stop_ms=300.0) == ["expected the assistant to keep talking through the interruption; "
                                          "it stopped after 300 ms"]
    assert failures(4, stop_ms=None) == []
    assert failures(2, said="") == [] and failures(5, said="Are you there?") == []
    assert failures(2, said="Are you there?") == ['expected the assistant to stay quiet during the 3 s wait; '
                                                  'it said "Are you there?"']
    assert expectation_failures(speak, TurnResult(speak), ended=True) == [
        "expected the assistant to speak during the 4 s wait; it said nothing (the call ended during it)"]
    assert [failure_key(f) for f in failures(3, stop_ms=None) + failures(5)] == ["expect.stops_within_ms",
                                                                                 "expect.speaks"]
    assert (say.line_of("expect.max_wer"), quiet.line_of("expect.speaks")) == (6, 11)
    assert stop.line_of("expect.stops_within_ms") == line_of(text, "stops_within_ms")
    assert keep.barge_in


def test_runner_check_messages_name_their_keys(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path)
    turn = scenario.turns[0]
    (missing,) = check(turn, TurnResult(turn, said="hello"), ended=False)
    assert failure_key(missing) == "expect.contains" and turn.line_of("expect.contains") == 4
    assert failure_key("no answer within 20 s") == "timeout" and failure_key("something else") is None


def test_audio_findings_fail_a_turn_only_for_gated_kinds(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, TOML + GATES)
    turn = scenario.turns[0]
    result = TurnResult(turn, audio=[AudioFinding(AudioCheck.DEAD_AIR, 1, 2300.0, 12.4),
                                     AudioFinding(AudioCheck.TALK_OVER, 1, 400.0)])
    (failure,) = audio_failures(scenario.gates, result)
    assert failure == "audio check dead_air: dead air inside the answer (2300 ms at 12.4 s)"
    assert isinstance(failure, Failure) and failure.key == "gates.audio"
    assert audio_failures(scenario_of(tmp_path, TOML, "plain.toml").gates, result) == []


# ------------------------------------------------------------------------------ gates and exit codes


@pytest.mark.parametrize(
    ("times", "wers", "failing_runs", "missed"),
    [
        ([900.0, 950.0, 1000.0, 1100.0], [0.1] * 4, [], []),
        ([900.0, 950.0, 1000.0, 1900.0], [0.1] * 4, [], ["p90_response_ms"]),  # p90 1660
        ([1400.0, 1500.0, 1600.0, 1700.0], [0.1] * 4, [], ["p50_response_ms", "p90_response_ms"]),
        ([900.0, 950.0, 1000.0, 5000.0], [0.1] * 4, [], ["p90_response_ms", "p95_response_ms"]),
        ([900.0] * 4, [0.1] * 4, [1, 2, 3], ["min_pass_rate"]),
        ([900.0] * 4, [0.1, 0.1, 0.2, 0.5], [], ["max_wer"]),  # mean 0.225
        ([900.0] * 4, [0.1, 0.2, 0.3, 0.2], [], []),  # mean 0.2 (0.20000000000000004 in floats): met
        ([900.0] * 4, [None] * 4, [], ["max_wer"]),  # nothing to measure is a miss
        ([None] * 4, [0.1] * 4, [], ["p50_response_ms", "p90_response_ms", "p95_response_ms"]),
    ],
)
def test_each_gate_fails_and_passes(tmp_path: Path, times: list[float | None], wers: list[float | None],
                                    failing_runs: list[int], missed: list[str]) -> None:
    scenario = scenario_of(tmp_path, TOML + GATES)
    results = [run_of(scenario, r, [times[r - 1], None, None], wers=[wers[r - 1], None, None],
                      failing={1: "x"} if r in failing_runs else None) for r in range(1, 5)]
    judgement = judge(results)
    (verdict,) = judgement.scenarios
    assert [g.key for g in verdict.missed] == missed
    assert {g.key: g.line for g in verdict.gates} == {key: line_of(GATES, key) + line_of(TOML + GATES, "[gates]")
                                                      - line_of(GATES, "[gates]")
                                                      for key in ("p50_response_ms", "p90_response_ms",
                                                                  "p95_response_ms", "min_pass_rate", "max_wer")}
    assert judgement.exit_code == (1 if missed else 0)


def test_min_pass_rate_tolerates_some_failed_runs(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, TOML + GATES)
    results = [run_of(scenario, r, [900.0, None, None], wers=[0.1, None, None],
                      failing={1: "expected x"} if r == 1 else None) for r in (1, 2)]
    assert judge(results).outcome is Outcome.PASSED  # 1 of 2 ≥ 0.5
    env = {"GITHUB_ACTIONS": "true"}
    (note,) = github.annotation_lines(judge(results), results, env)
    assert note.startswith("::warning ")  # tolerated: a warning, not an error


@pytest.mark.parametrize(
    ("runs", "interrupted", "outcome", "code"),
    [
        ([{}, {}], False, Outcome.PASSED, 0),
        ([{}, {"failing": {1: "expected x"}}], False, Outcome.FAILED, 1),
        ([{}, {"error": "the call did not connect"}], False, Outcome.FAILED, 1),
        ([{}, {"error": "mic", "code": "MICROPHONE_ERROR"}], False, Outcome.FAILED, 1),
        ([{}, {"error": "no credits", "code": "INSUFFICIENT_CREDITS"}], False, Outcome.INFRASTRUCTURE, 3),
        ([{"failing": {1: "expected x"}}, {"error": "down", "code": "SERVER_ERROR"}], False, Outcome.INFRASTRUCTURE, 3),
        ([{"failing": {1: "expected x"}}, {"error": "gone", "code": "DISCONNECTED"}], True, Outcome.INTERRUPTED, 130),
        ([], False, Outcome.FAILED, 1),
    ],
)
def test_the_exit_code(tmp_path: Path, runs: list[dict[str, object]], interrupted: bool, outcome: Outcome,
                       code: int) -> None:
    scenario = scenario_of(tmp_path)
    results = [run_of(scenario, i, [900.0, 500.0, None], **kw) for i, kw in enumerate(runs, 1)]  # type: ignore[arg-type]
    judgement = judge(results, interrupted=interrupted)
    assert (judgement.outcome, judgement.exit_code) == (outcome, code)
    doc = as_json(results, judgement)
    assert (doc["outcome"], doc["exit_code"]) == (str(outcome), code)


@pytest.mark.parametrize("code", ["UNAUTHORIZED", "INSUFFICIENT_CREDITS", "RATE_LIMITED", "DOMAIN_NOT_ALLOWED",
                                  "ASSISTANT_NOT_FOUND", "CONNECTION_ERROR", "DISCONNECTED", "SERVER_ERROR",
                                  "INVALID_RESPONSE"])
def test_every_infrastructure_code_exits_3(tmp_path: Path, code: str) -> None:
    scenario = scenario_of(tmp_path)
    results = [run_of(scenario, 1, [900.0, 500.0, None], error="x", code=code)]
    judgement = judge(results)
    assert judgement.exit_code == 3
    junit = tmp_path / "r.xml"
    write_junit(results, judgement, junit)
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props["outcome"] == "infrastructure" and props["run.error_code"] == code


def test_a_bad_file_exits_2_and_says_so_in_the_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[turns]]\nsay = "hi"\nexpect.max_wer = 3\n', encoding="utf-8")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    report = tmp_path / "report.json"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "WESPOKE_API_KEY": "pk_test_abcdefabcdef1234",
           "WESPOKE_ASSISTANT_ID": "a1", "LANG": "C.UTF-8"}
    assert cli.main(["test", str(bad), "--json", str(report)], env) == 2
    out = capsys.readouterr()
    assert out.err.startswith(f"wespoke-tui: error: {bad}:3: turn 1: 'expect.max_wer' must be")
    (file, line, _title, message) = parse_annotation(out.out.strip())[1:]
    assert (file, line) == ("bad.toml", 3) and "'expect.max_wer' must be" in message
    assert json.loads(report.read_text())["outcome"] == "bad_file"
    assert "bad scenario file or usage" in summary.read_text() and "(exit status 2)" in summary.read_text()


# ------------------------------------------------------------------------------ GitHub


ANNOTATION = re.compile(r"^::(error|warning) (.*?)::(.*)$")


def unescape(text: str) -> str:
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def parse_annotation(line: str) -> tuple[str, str, int | None, str, str]:
    """(level, file, line, title, message) as GitHub's runner reads a workflow command."""
    match = ANNOTATION.match(line)
    assert match, line
    props = dict(part.split("=", 1) for part in match.group(2).split(","))
    return (match.group(1), unescape(props["file"]), int(props["line"]) if "line" in props else None,
            unescape(props.get("title", "")), unescape(match.group(3)))


def test_annotations_point_at_the_failing_key_and_round_trip(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, TOML + GATES)
    odd = "the answer took 100% of the budget,\nsecond line: a, b\r"
    results = [run_of(scenario, 1, [3000.0, None, None], wers=[0.1, None, None],
                      failing={1: Failure(odd, "expect.max_response_ms")}),
               run_of(scenario, 2, [3000.0, None, None], wers=[0.1, None, None],
                      failing={1: 'expected "order" in the answer; the assistant said nothing'}),
               RunResult(scenario, 3, error="the server failed", error_code="SERVER_ERROR")]  # no turn ran
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path)}
    lines = github.annotation_lines(judge(results), results, env)
    parsed = [parse_annotation(line) for line in lines]
    assert all("\n" not in line and "\r" not in line for line in lines)
    call, late, missing, *gates = parsed
    assert call == ("error", "orders.toml", None, "Orders: run 3: the call failed (SERVER_ERROR)", "the server failed")
    text = TOML + GATES
    assert late[:4] == ("error", "orders.toml", line_of(text, "max_response_ms"), "Orders: turn 1 failed in 2 of 2 runs")
    assert late[4] == f"turn 1: say 'Where is my order?'\nrun 1: {odd}"  # % , : CR LF all come back
    assert missing[2] == line_of(text, "expect.contains") and missing[4].endswith("run 2: expected \"order\" in the "
                                                                                 "answer; the assistant said nothing")
    assert [(g[2], g[3]) for g in gates] == [(line_of(text, key), f"Orders: gate {key} missed")
                                             for key in ("p50_response_ms", "p90_response_ms", "p95_response_ms",
                                                         "min_pass_rate")]
    assert gates[0][4] == "gates.p50_response_ms: 3000; the gate asks for at most 1000"
    outside = github.annotation_lines(judge(results), results, {"GITHUB_WORKSPACE": str(tmp_path / "elsewhere")})
    assert parse_annotation(outside[0])[1] == str(scenario.path)  # outside the workspace: as given


def test_publish_prints_annotations_only_under_github_actions(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path)
    results = [run_of(scenario, 1, [900.0, 500.0, None], failing={2: "expected x"})]
    for env, count in (({}, 0), ({"GITHUB_ACTIONS": "false"}, 0), ({"GITHUB_ACTIONS": "true"}, 1)):
        out = io.StringIO()
        publish(results, judge(results), "en", HeadlessOptions(), env=env, out=out)
        assert sum(line.startswith("::error ") for line in out.getvalue().splitlines()) == count


@pytest.mark.parametrize("lang", ["en", "tr"])
def test_the_step_summary_is_appended_in_the_users_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            lang: str) -> None:
    scenario = scenario_of(tmp_path, TOML + GATES)
    results = [run_of(scenario, r, [800.0 + 100 * r, None, None], wers=[0.1, None, None],
                      failing={2: "expected | <b>x</b>\nnext"} if r == 2 else None) for r in (1, 2, 3)]
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    publish(results, judge(results), lang, HeadlessOptions(), out=io.StringIO())  # type: ignore[arg-type]
    markdown = summary.read_text(encoding="utf-8")
    assert markdown.startswith("earlier step\n")  # appended
    t = ReportTexts(lang)  # type: ignore[arg-type]
    header = f"| {t('md.turn')} | {t('md.pass_rate')} | p50 | p90 | p95 | {t('md.wer')} | {t('md.failures')} |"
    assert header in markdown and "| --- | --- | --- | --- | --- | --- | --- |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    flaky_row = next(r for r in rows if "thanks" in r)
    assert t("flaky_short") in flaky_row and "expected \\| &lt;b&gt;x&lt;/b&gt;<br>next" in flaky_row
    assert flaky_row.count(" | ") == 6  # the failure's | did not add a column
    assert f"`p90_response_ms` | ≤ {t.ms(1500)} | {t.ms(1080)} | ✅ {t('gate_met')}" in markdown
    assert f"`max_wer` | ≤ 0.2 | 0.10 | ✅ {t('gate_met')}" in markdown
    assert t("outcome", outcome=t("outcome.passed"), code=0) in markdown  # 2 of 3 runs, min_pass_rate 0.5
    if lang == "tr":
        assert "Geçme oranı" in markdown and "kararsız turlar: 2" in markdown


# ------------------------------------------------------------------------------ JSON lines


def test_json_lines_are_appended_as_each_run_ends(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path)
    path = tmp_path / "runs.jsonl"
    path.write_text("from an earlier run set\n", encoding="utf-8")
    results: list[RunResult] = []
    finished = run_sink(results, HeadlessOptions(jsonl=path))
    assert path.read_text() == ""  # a run set starts its own file
    finished(run_of(scenario, 2, [900.0, 500.0, None]))
    assert [json.loads(line)["run"] for line in path.read_text().splitlines()] == [2]  # on disk at once
    finished(run_of(scenario, 1, [900.0, 500.0, None], error="down", code="SERVER_ERROR"))
    # The run set is killed here: what it had is on disk, one complete JSON object a line.
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["run"], r["outcome"]) for r in lines] == [(2, "passed"), (1, "infrastructure")]
    assert lines[1]["error_code"] == "SERVER_ERROR" and lines[0]["turns"][0]["response_ms"] == 900.0
    assert [r.run for r in results] == [2, 1]


# ------------------------------------------------------------------------------ baseline


def report_with(tmp_path: Path, scenario: Scenario, times: list[float], name: str) -> Path:
    results = [run_of(scenario, r, [ms, 100.0, None]) for r, ms in enumerate(times, 1)]
    path = tmp_path / name
    write_json(results, judge(results), path)
    return path


@pytest.mark.parametrize(
    ("before", "now", "flagged"),
    [
        ([1000.0], [1300.0], True),  # +300 ms, +30 %
        ([1000.0], [1150.0], False),  # +150 ms: under 200 ms
        ([3000.0], [3250.0], False),  # +250 ms but +8 %: under 20 %
        ([900.0, 1000.0, 1100.0], [1250.0, 1300.0, 1350.0], True),  # medians 1000 → 1300
    ],
)
def test_the_baseline_flags_turns_whose_median_grew(tmp_path: Path, before: list[float], now: list[float],
                                                    flagged: bool) -> None:
    scenario = scenario_of(tmp_path)
    baseline = load_baseline(report_with(tmp_path, scenario, before, "before.json"))
    results = [run_of(scenario, r, [ms, 100.0, None]) for r, ms in enumerate(now, 1)]
    judgement = judge(results, baseline=baseline)
    (verdict,) = judgement.scenarios
    assert [r.turn for r in verdict.regressions] == ([1] if flagged else [])
    assert judgement.exit_code == (1 if flagged else 0)
    out = io.StringIO()
    write_text(results, judgement, out)
    assert ("slower than the baseline: turn 1" in out.getvalue()) == flagged
    assert (as_json(results, judgement)["scenarios"][0]["regressions"] != []) == flagged


def test_the_baseline_thresholds_and_older_reports(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path)
    path = report_with(tmp_path, scenario, [1000.0, 1100.0], "before.json")
    older = json.loads(path.read_text())
    del older["scenarios"]  # a report of the version before the summaries: its runs' times tell
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert load_baseline(tmp_path / "older.json").medians == load_baseline(path).medians
    results = [run_of(scenario, 1, [1200.0, 100.0, None])]  # +150 ms, +14 %
    assert judge(results, baseline=load_baseline(path)).exit_code == 0
    assert judge(results, baseline=load_baseline(path), threshold_ms=100, threshold_pct=10).exit_code == 1
    changed = scenario_of(tmp_path, TOML.replace("Where is my order?", "Where is my parcel?"), "changed.toml")
    moved = [run_of(changed, 1, [5000.0, 100.0, None])]
    assert judge(moved, baseline=load_baseline(path)).scenarios[0].regressions == []  # another turn now
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(BaselineError, match="not a JSON report of 'wespoke-tui test --json'"):
        load_baseline(tmp_path / "junk.json")


# ------------------------------------------------------------------------------ languages and flags


def test_report_strings_in_both_languages_with_the_same_placeholders() -> None:
    field = re.compile(r"{(\w+)")
    for key, langs in REPORT_STRINGS.items():
        assert set(langs) == {"en", "tr"}, key
        assert set(field.findall(langs["en"])) == set(field.findall(langs["tr"])), key
    same = {key for key, langs in REPORT_STRINGS.items() if langs["en"] == langs["tr"]}
    assert same <= {"none", "ms"}, same


def test_the_text_report_in_turkish(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path)
    results = [run_of(scenario, 1, [900.0, 500.0, None], failing={2: "expected x"})]
    out = io.StringIO()
    write_text(results, judge(results), out, "tr")
    text = out.getvalue()
    assert '"Orders" senaryosu, 1. çalıştırma: KALDI' in text and "2. tur: type 'thanks': KALDI" in text
    assert "Sonuç: kaldı" in text and "(çıkış kodu 1)" in text


def test_the_new_test_flags(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(TOML)
    previous = tmp_path / "previous.json"
    previous.write_text("{}")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "WESPOKE_API_KEY": "pk_test_abcdefabcdef1234",
           "WESPOKE_ASSISTANT_ID": "a1", "LANG": "C.UTF-8"}
    base = ["test", str(scenario)]
    _, _, options = load_settings([*base, "--jsonl", str(tmp_path / "runs.jsonl"), "--baseline", str(previous),
                                   "--baseline-threshold-ms", "150", "--baseline-threshold-pct", "0"], env)
    assert (options.jsonl, options.baseline) == (tmp_path / "runs.jsonl", previous)
    assert (options.baseline_threshold_ms, options.baseline_threshold_pct) == (150.0, 0.0)
    _, _, plain = load_settings(base, env)
    assert (plain.jsonl, plain.baseline, plain.baseline_threshold_ms) == (None, None, None)
    for argv, option, message in (
        ([*base, "--baseline-threshold-ms", "100"], "--baseline-threshold-ms", "only works with --baseline"),
        ([*base, "--baseline", str(tmp_path / "none.json")], "--baseline", "no such file"),
        ([*base, "--baseline", str(previous), "--baseline-threshold-pct", "-5"], "--baseline-threshold-pct",
         "must be 0 or more"),
        ([*base, "--jsonl", str(tmp_path / "no" / "runs.jsonl")], "--jsonl", "does not exist"),
    ):
        with pytest.raises(ConfigError) as refused:
            load_settings(argv, env)
        assert refused.value.option == option and message in refused.value.message


def test_judgement_of_nothing_is_a_failure() -> None:
    assert Judgement(Outcome.FAILED).exit_code == 1 and judge([]).outcome is Outcome.FAILED
