"""`wespoke-tui test SCENARIO.toml`: run the scenario's calls, report, and exit with the outcome's
status (gates.py): 0 passed, 1 failed (an expectation, a gate, the baseline), 2 a bad file or
usage, 3 infrastructure (a call failed outside the assistant's answers; wins over 1), 130
interrupted. Each finished run goes to `--jsonl` at once, before the others end.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import numpy as np

from wespoke_tui.config import HeadlessOptions
from wespoke_tui.scenario.baseline import Baseline, BaselineError, load_baseline
from wespoke_tui.scenario.chat_mode import not_checked_note, typed
from wespoke_tui.scenario.gates import EXIT_CODES, Outcome, judge
from wespoke_tui.scenario.model import Scenario, ScenarioError
from wespoke_tui.scenario.publish import publish, publish_bad_file
from wespoke_tui.scenario.report import JsonLines
from wespoke_tui.scenario.runner import RunResult, run_scenario
from wespoke_tui.scenario.speech import SpeechError, read_turn_wav, synthesize
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import exit_if_livekit_loaded

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED = (
    EXIT_CODES[o] for o in (Outcome.PASSED, Outcome.FAILED, Outcome.BAD_FILE, Outcome.INFRASTRUCTURE,
                            Outcome.INTERRUPTED))


def _error(message: str) -> None:
    print(f"wespoke-tui: error: {message}", file=sys.stderr, flush=True)


def run_tests(settings: Settings, options: HeadlessOptions, scenario: Scenario) -> int:
    baseline: Baseline | None = None
    if options.baseline is not None:
        try:
            baseline = load_baseline(options.baseline)
        except BaselineError as exc:
            _error(f"--baseline: {exc}")
            publish_bad_file(options.baseline, None, str(exc), settings.lang, options)
            return EXIT_USAGE
    if settings.chat:
        try:
            scenario, dropped = typed(scenario)
        except ScenarioError as exc:
            _error(str(exc))
            publish_bad_file(exc.path, exc.line, exc.message, settings.lang, options)
            return EXIT_USAGE
        print(f"wespoke-tui: {not_checked_note(dropped)}", file=sys.stderr, flush=True)
    try:
        audio = turn_audio(scenario, settings.lang)
    except SpeechError as exc:
        _error(str(exc))
        publish_bad_file(scenario.path, None, str(exc), settings.lang, options)
        return EXIT_USAGE
    runs = options.repeat
    if options.parallel > 1:
        print(f"wespoke-tui: running up to {options.parallel} calls at once ({runs} in all): each call uses "
              "your credits", file=sys.stderr, flush=True)
    results: list[RunResult] = []
    try:
        finished = run_sink(results, options)
    except OSError as exc:
        _error(f"--jsonl: cannot write {options.jsonl}: {exc.strerror or exc}")
        return EXIT_USAGE
    interrupted = False
    try:
        asyncio.run(_run_all(settings, scenario, audio, runs, options.parallel, finished))
    except KeyboardInterrupt:  # each call has hung up on its way out (run_scenario's finally)
        interrupted = True
    results.sort(key=lambda r: r.run)
    judgement = judge(results, baseline=baseline, threshold_ms=options.baseline_threshold_ms,
                      threshold_pct=options.baseline_threshold_pct, interrupted=interrupted)
    publish(results, judgement, settings.lang, options)
    code = judgement.exit_code
    exit_if_livekit_loaded(code)
    return code


def run_sink(results: list[RunResult], options: HeadlessOptions) -> Callable[[RunResult], None]:
    """What becomes of each run as it ends: kept for the reports, and a JSON line with `--jsonl`
    (a line that cannot be written is said once on stderr; the runs go on)."""
    lines = JsonLines(options.jsonl) if options.jsonl is not None else None
    failed: list[OSError] = []

    def finished(result: RunResult) -> None:
        results.append(result)
        if lines is None or failed:
            return
        try:
            lines(result)
        except OSError as exc:
            failed.append(exc)
            _error(f"--jsonl: cannot write {lines.path}: {exc.strerror or exc}")

    return finished


def turn_audio(scenario: Scenario, lang: str) -> dict[int, np.ndarray]:
    """Every spoken turn's audio, made before the first call (a missing voice fails nothing live)."""
    audio = {}
    for turn in scenario.turns:
        if turn.action == "say":
            audio[turn.number] = synthesize(turn.text or "", scenario.voice(turn, lang))
        elif turn.action == "say_wav" and turn.wav is not None:
            audio[turn.number] = read_turn_wav(turn.wav)
    return audio


async def _run_all(settings: Settings, scenario: Scenario, audio: dict[int, np.ndarray], runs: int, parallel: int,
                   finished: Callable[[RunResult], None]) -> None:
    """Every run, up to `parallel` at once; `finished` is called with each run as it ends."""
    slots = asyncio.Semaphore(parallel)

    async def one(run: int) -> None:
        async with slots:
            finished(await run_scenario(settings, scenario, audio, run))

    await asyncio.gather(*(one(run) for run in range(1, runs + 1)))
