"""CI-native output under GitHub Actions: `::error`/`::warning` workflow commands at the line of
the scenario key that failed, and a Markdown summary appended to `$GITHUB_STEP_SUMMARY`.

The rules:
- An annotation names the scenario file (relative to `$GITHUB_WORKSPACE` when inside it) and the
  line of the failing key (`Turn.line_of`: the expectation's line, else the turn's); a gate miss
  the gate's line; a baseline regression the turn's line; a failed call the file. One annotation
  per turn and key over all runs ("failed in 2 of 5 runs"), not one per run.
- Failures of a run set that passes anyway (tolerated by `gates.min_pass_rate`) are warnings;
  the rest errors.
- Escaping follows GitHub's workflow-command rules: in the message % → %25, CR → %0D, LF → %0A;
  in a property (file, title) also : → %3A and , → %2C.
- The step summary is in the user's language (texts.py); its table cells escape |, <, > and &.

Only the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wespoke_tui.scenario.checks import failure_key
from wespoke_tui.scenario.gates import GateResult, Judgement, Outcome, ScenarioVerdict, gated_findings
from wespoke_tui.scenario.stats import TurnStats
from wespoke_tui.scenario.texts import ReportTexts

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import RunResult

MAX_LISTED = 5  # failures listed in one annotation or one table cell; the rest counted


def on_github(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(level: str, message: str, *, file: str | None = None, line: int | None = None,
                     title: str | None = None) -> str:
    """`::level file=…,line=…,title=…::message`, each part escaped (the properties given only)."""
    props = [f"{name}={escape_property(str(value))}"
             for name, value in (("file", file), ("line", line), ("title", title)) if value is not None]
    return f"::{level} {','.join(props)}::{escape_data(message)}" if props else f"::{level}::{escape_data(message)}"


def annotation_path(path: Path, env: Mapping[str, str]) -> str:
    """The file as GitHub finds it in the repository: relative to the workspace when inside it."""
    workspace = env.get("GITHUB_WORKSPACE")
    if workspace:
        try:
            return path.resolve().relative_to(Path(workspace).resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _listed(items: Sequence[str], more: str) -> list[str]:
    return list(items[:MAX_LISTED]) + ([more.format(count=len(items) - MAX_LISTED)] if len(items) > MAX_LISTED else [])


def _by_message(failures: Sequence[tuple[int, str]]) -> list[tuple[list[int], str]]:
    """Each distinct failure once, with the runs it happened in."""
    runs: dict[str, list[int]] = {}
    for run, failure in failures:
        runs.setdefault(str(failure), []).append(run)
    return [(rs, message) for message, rs in runs.items()]


def _turn_annotations(verdict: ScenarioVerdict, turn: TurnStats, file: str, level: str) -> list[str]:
    by_key: dict[str | None, list[tuple[int, str]]] = {}
    for run, failure in turn.failures:
        by_key.setdefault(failure_key(failure), []).append((run, failure))
    lines = []
    failed_runs = turn.runs - turn.passed
    for key, failures in by_key.items():
        name = verdict.stats.scenario.name
        title = f"{name}: turn {turn.turn.number} failed in {failed_runs} of {turn.runs} runs"
        title += " (flaky)" if turn.flaky else ""
        listed = [f"run{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: {message}"
                  for rs, message in _by_message(failures)]
        message = "\n".join([turn.turn.title, *_listed(listed, "… and {count} more")])
        line = turn.turn.line_of(key) if key else turn.turn.line
        lines.append(workflow_command(level, message, file=file, line=line, title=title))
    return lines


def _gate_message(gate: GateResult) -> str:
    op = "at least" if gate.key == "min_pass_rate" else "at most"
    value = "nothing to measure" if gate.value is None else f"{gate.value:g}"
    return f"gates.{gate.key}: {value}; the gate asks for {op} {gate.limit:g}"


def annotation_lines(judgement: Judgement, results: Sequence[RunResult], env: Mapping[str, str]) -> list[str]:
    """The workflow commands of a run set, one a line (see the module's rules)."""
    out = []
    for verdict in judgement.scenarios:
        scenario = verdict.stats.scenario
        file = annotation_path(scenario.path, env)
        level = "warning" if verdict.outcome is Outcome.PASSED else "error"
        for run in (r for r in sorted(results, key=lambda r: r.run) if r.scenario.path == scenario.path):
            if run.error:
                code = f" ({run.error_code})" if run.error_code else ""
                out.append(workflow_command("error", run.error, file=file,
                                            title=f"{scenario.name}: run {run.run}: the call failed{code}"))
        for turn in verdict.stats.turns:
            out += _turn_annotations(verdict, turn, file, level)
        for gate in verdict.missed:
            out.append(workflow_command("error", _gate_message(gate), file=file, line=gate.line,
                                        title=f"{scenario.name}: gate {gate.key} missed"))
        for slower in verdict.regressions:
            late = scenario.turns[slower.turn - 1]
            out.append(workflow_command(
                "error", f"{late.title}: median response {slower.median_ms:.0f} ms, the baseline's "
                         f"{slower.baseline_ms:.0f} ms (+{slower.grew_ms:.0f} ms)",
                file=file, line=late.line, title=f"{scenario.name}: turn {late.number} slower than the baseline"))
    return out


def bad_file_annotation(path: Path, line: int | None, message: str, env: Mapping[str, str]) -> str:
    return workflow_command("error", message, file=annotation_path(path, env), line=line,
                            title="wespoke-tui test: bad scenario file")


# ------------------------------------------------------------------------------ step summary


def cell(text: str) -> str:
    """Text safe in a Markdown table cell: one line, no column break, no HTML."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return "<br>".join(part for part in text.replace("\r", "").split("\n"))


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def scenario_markdown(verdict: ScenarioVerdict, t: ReportTexts) -> str:
    stats = verdict.stats
    scenario = stats.scenario
    lines = [f"### {cell(t('md.title', name=scenario.name, outcome=t(f'outcome.{verdict.outcome}')))}", "",
             cell(t("summary", name=scenario.name, runs=stats.runs, passed=stats.passed, rate=t.rate(stats.pass_rate))),
             "", _row(t("md.turn"), t("md.pass_rate"), "p50", "p90", "p95", t("md.wer"), t("md.failures")),
             _row(*["---"] * 7)]
    for turn in stats.turns:
        title = t("turn", number=turn.turn.number, what=turn.turn.title.split(": ", 1)[-1])
        if turn.flaky:
            title += f" ⚠ {t('flaky_short')}"
        listed = [f"{t('md.in_runs' if len(rs) > 1 else 'md.in_run', runs=', '.join(map(str, rs)))}: {message}"
                  for rs, message in _by_message(turn.failures)]
        failures = "\n".join(_listed(listed, t("md.more", count="{count}")))
        latency = turn.latency
        lines.append(_row(cell(title), f"{t.rate(turn.pass_rate)} ({turn.passed}/{turn.runs})",
                          *(t.ms(None if latency is None else latency.get(p)) for p in (50, 90, 95)),
                          t.ratio(turn.mean_wer), cell(failures)))
    latency = stats.latency
    lines.append(_row(f"**{t('md.all_turns')}**", f"{t.rate(stats.pass_rate)} ({stats.passed}/{stats.runs})",
                      *(t.ms(None if latency is None else latency.get(p)) for p in (50, 90, 95)),
                      t.ratio(stats.mean_wer), ""))
    if verdict.gates or scenario.gates.audio:
        lines += ["", _row(t("md.gate"), t("md.limit"), t("md.value"), t("md.verdict")), _row(*["---"] * 4)]
        for gate in verdict.gates:
            ms = gate.key.endswith("_ms")
            limit = t.ms(gate.limit) if ms else f"{gate.limit:g}"
            value = t.ms(gate.value) if ms else t.ratio(gate.value)
            op = "≥" if gate.key == "min_pass_rate" else "≤"
            mark = f"✅ {t('gate_met')}" if gate.passed else f"❌ {t('gate_missed')}"
            lines.append(_row(f"`{gate.key}`", f"{op} {limit}", value, mark))
        if scenario.gates.audio:
            found = gated_findings(verdict)
            lines.append(_row("`audio`", ", ".join(scenario.gates.audio), str(found),
                              f"✅ {t('gate_met')}" if not found else f"❌ {t('gate_audio_found')}"))
    notes = [t("flaky_list", turns=", ".join(str(f.turn.number) for f in stats.flaky))] if stats.flaky else []
    for slower in verdict.regressions:
        late = scenario.turns[slower.turn - 1]
        notes.append(t("slower", title=t("turn", number=late.number, what=late.title.split(": ", 1)[-1]),
                       now=t.ms(slower.median_ms), before=t.ms(slower.baseline_ms), grew=t.ms(slower.grew_ms)))
    if notes:
        lines += ["", *(f"- {cell(note)}" for note in notes)]
    return "\n".join(lines) + "\n"


def step_summary(judgement: Judgement, t: ReportTexts) -> str:
    parts = [scenario_markdown(v, t) for v in judgement.scenarios]
    parts.append(f"**{cell(t('outcome', outcome=t(f'outcome.{judgement.outcome}'), code=judgement.exit_code))}**\n")
    return "\n".join(parts)


def bad_file_summary(path: Path, line: int | None, message: str, t: ReportTexts) -> str:
    where = f"{path}:{line}" if line else str(path)
    return (f"### {cell(t('md.title', name=path.name, outcome=t('outcome.bad_file')))}\n\n"
            f"`{where}`: {cell(message)}\n\n"
            f"**{cell(t('outcome', outcome=t('outcome.bad_file'), code=Outcome.BAD_FILE.exit_code))}**\n")


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> bool:
    """Append `markdown` to the file `$GITHUB_STEP_SUMMARY` names; False when unset or unwritable."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    try:
        with open(target, "a", encoding="utf-8", newline="\n") as out:
            out.write(markdown + "\n")
    except OSError:
        return False
    return True
