"""Where the verdict of `wespoke-tui test` goes: the text report on stdout, the JSON and JUnit
files asked for, and under GitHub Actions the annotations (stdout) and the step summary — for a
run set, and for a scenario file that could not be used (outcome bad_file, exit 2).

The rule: every destination gets the same verdict; a destination that cannot be written is said
on stderr and costs no other. Only the standard library: the CLI reports a bad file through this
module before anything heavier is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from wespoke_tui.config import HeadlessOptions
from wespoke_tui.scenario import github
from wespoke_tui.scenario.gates import Judgement
from wespoke_tui.scenario.report import (
    write_bad_file_json,
    write_bad_file_junit,
    write_json,
    write_junit,
    write_text,
)
from wespoke_tui.scenario.texts import Lang, ReportTexts

if TYPE_CHECKING:
    from wespoke_tui.scenario.runner import RunResult


def _try(what: Path, write: Callable[[], object]) -> None:
    try:
        write()
    except OSError as exc:
        print(f"wespoke-tui: error: cannot write {what}: {exc.strerror or exc}", file=sys.stderr, flush=True)


def publish(results: Sequence[RunResult], judgement: Judgement, lang: Lang, options: HeadlessOptions, *,
            env: Mapping[str, str] | None = None, out: TextIO | None = None) -> None:
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    write_text(results, judgement, out, lang, baseline=options.baseline)
    if options.report_json is not None:
        path = options.report_json
        _try(path, lambda: write_json(results, judgement, path))
    if options.junit is not None:
        junit = options.junit
        _try(junit, lambda: write_junit(results, judgement, junit))
    if github.on_github(env):
        for line in github.annotation_lines(judgement, results, env):
            out.write(line + "\n")
        out.flush()
    if env.get("GITHUB_STEP_SUMMARY"):
        markdown = github.step_summary(judgement, ReportTexts(lang))
        if not github.append_step_summary(markdown, env):
            print(f"wespoke-tui: error: cannot write the step summary {env['GITHUB_STEP_SUMMARY']}", file=sys.stderr,
                  flush=True)


def publish_bad_file(path: Path, line: int | None, message: str, lang: Lang, options: HeadlessOptions, *,
                     env: Mapping[str, str] | None = None, out: TextIO | None = None) -> None:
    """A scenario (or baseline) file that could not be used, in the reports asked for; the error
    line itself is the caller's to print."""
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    if options.report_json is not None:
        report = options.report_json
        _try(report, lambda: write_bad_file_json(path, line, message, report))
    if options.junit is not None:
        junit = options.junit
        _try(junit, lambda: write_bad_file_junit(path, line, message, junit))
    if github.on_github(env):
        out.write(github.bad_file_annotation(path, line, message, env) + "\n")
        out.flush()
    if env.get("GITHUB_STEP_SUMMARY"):
        github.append_step_summary(github.bad_file_summary(path, line, message, ReportTexts(lang)), env)
