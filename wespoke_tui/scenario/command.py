"""`wespoke-tui test SCENARIO.toml`: run the scenario's calls, report, and exit 0 only when every
check of every run passed (1 otherwise, 130 when interrupted)."""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from wespoke_tui.config import HeadlessOptions
from wespoke_tui.scenario.model import Scenario
from wespoke_tui.scenario.report import write_json, write_junit, write_text
from wespoke_tui.scenario.runner import RunResult, run_scenario
from wespoke_tui.scenario.speech import SpeechError, read_turn_wav, synthesize
from wespoke_tui.settings import Settings
from wespoke_tui.shutdown import exit_if_livekit_loaded

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_tests(settings: Settings, options: HeadlessOptions, scenario: Scenario) -> int:
    try:
        audio = turn_audio(scenario, settings.lang)
    except SpeechError as exc:
        print(f"wespoke-tui: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    runs = options.repeat
    if options.parallel > 1:
        print(f"wespoke-tui: running up to {options.parallel} calls at once ({runs} in all): each call uses "
              "your credits", file=sys.stderr, flush=True)
    results: list[RunResult] = []
    try:
        asyncio.run(_run_all(settings, scenario, audio, runs, options.parallel, results))
        code = EXIT_OK if results and all(r.passed for r in results) else EXIT_FAILED
    except KeyboardInterrupt:  # each call has hung up on its way out (run_scenario's finally)
        code = EXIT_INTERRUPTED
    results.sort(key=lambda r: r.run)
    write_text(results, sys.stdout)
    if options.report_json is not None:
        write_json(results, options.report_json)
    if options.junit is not None:
        write_junit(results, options.junit)
    exit_if_livekit_loaded(code)
    return code


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
                   results: list[RunResult]) -> None:
    slots = asyncio.Semaphore(parallel)

    async def one(run: int) -> None:
        async with slots:
            results.append(await run_scenario(settings, scenario, audio, run))

    await asyncio.gather(*(one(run) for run in range(1, runs + 1)))
