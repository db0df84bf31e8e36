"""The commands `load_settings` returns, and what each asks besides the shared settings.

`call`/`chat --no-tui` take WAV files, a transcript, a duration; `test` a scenario and its
reports. Their checks, and the ones between a command and the settings, are here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from wespoke_tui.config.validation import ConfigError, validate_count
from wespoke_tui.settings import Settings

# Commands `load_settings` returns.
CMD_TUI = "tui"
CMD_HEADLESS = "headless"
CMD_DEVICES = "devices"
CMD_TEST = "test"
MAX_PARALLEL = 8


@dataclass(frozen=True, slots=True)
class HeadlessOptions:
    """What `wespoke-tui call --no-tui` does besides the shared settings."""

    input_wav: Path | None = None
    output_wav: Path | None = None
    transcript: Path | None = None
    duration: float | None = None
    json: bool = False  # JSON records on stdout instead of text lines
    # `wespoke-tui test`
    scenario: Path | None = None
    junit: Path | None = None
    report_json: Path | None = None
    repeat: int = 1
    parallel: int = 1
    jsonl: Path | None = None  # one JSON line per run, appended as each run ends
    baseline: Path | None = None  # a --json report of an earlier run: turns whose median grew fail
    baseline_threshold_ms: float | None = None  # None: scenario/baseline.py's defaults
    baseline_threshold_pct: float | None = None


def command_of(subcommand: str | None, headless: bool) -> str:
    """The command run for argv's subcommand (None when none is given)."""
    return {None: CMD_TUI, "call": CMD_HEADLESS if headless else CMD_TUI,
            "chat": CMD_HEADLESS if headless else CMD_TUI, "devices": CMD_DEVICES,
            "test": CMD_TEST}[subcommand]


def headless_options(ns: argparse.Namespace, headless: bool) -> HeadlessOptions:
    given = [flag for flag, dest in (("--input-wav", "input_wav"), ("--output-wav", "output_wav"),
                                     ("--transcript", "transcript"), ("--duration", "duration"),
                                     ("--json", "json"))
             if getattr(ns, dest, None) is not None]
    if given and not headless:
        raise ConfigError(given[0], "only works with 'call --no-tui' or 'chat --no-tui'")
    if not headless:
        return HeadlessOptions()
    duration: float | None = None
    if getattr(ns, "duration", None) is not None:
        try:
            duration = float(ns.duration)
        except ValueError:
            raise ConfigError("--duration", f"'{ns.duration}' is not a number of seconds") from None
        if not 0 < duration < float("inf"):
            raise ConfigError("--duration", f"{ns.duration} must be more than 0 seconds")
    input_wav: Path | None = getattr(ns, "input_wav", None)
    if input_wav is not None and not input_wav.is_file():
        raise ConfigError("--input-wav", f"{input_wav}: no such file")
    for option, out in (("--output-wav", getattr(ns, "output_wav", None)),
                        ("--transcript", getattr(ns, "transcript", None))):
        if out is not None and not out.parent.is_dir():
            raise ConfigError(option, f"{out}: folder {out.parent} does not exist")
    return HeadlessOptions(input_wav=input_wav, output_wav=getattr(ns, "output_wav", None),
                           transcript=getattr(ns, "transcript", None), duration=duration,
                           json=bool(getattr(ns, "json", None)))


def _threshold(value: str | None, option: str, unit: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(option, f"'{value}' is not a number of {unit}") from None
    if not 0 <= number < float("inf"):
        raise ConfigError(option, f"{value} must be 0 or more {unit}")
    return number


def test_options(ns: argparse.Namespace) -> HeadlessOptions:
    scenario: Path = ns.scenario
    if not scenario.is_file():
        raise ConfigError(str(scenario), "no such scenario file")
    for option, out in (("--junit", ns.junit), ("--json", ns.report_json), ("--jsonl", ns.jsonl)):
        if out is not None and not out.parent.is_dir():
            raise ConfigError(option, f"{out}: folder {out.parent} does not exist")
    baseline: Path | None = ns.baseline
    if baseline is not None and not baseline.is_file():
        raise ConfigError("--baseline", f"{baseline}: no such file")
    threshold_ms = _threshold(ns.baseline_threshold_ms, "--baseline-threshold-ms", "milliseconds")
    threshold_pct = _threshold(ns.baseline_threshold_pct, "--baseline-threshold-pct", "percent")
    if baseline is None and (threshold_ms is not None or threshold_pct is not None):
        flag = "--baseline-threshold-ms" if threshold_ms is not None else "--baseline-threshold-pct"
        raise ConfigError(flag, "only works with --baseline PREVIOUS.json")
    return HeadlessOptions(scenario=scenario, junit=ns.junit, report_json=ns.report_json,
                           repeat=validate_count(ns.repeat, "--repeat", 1000),
                           parallel=validate_count(ns.parallel, "--parallel", MAX_PARALLEL),
                           jsonl=ns.jsonl, baseline=baseline, baseline_threshold_ms=threshold_ms,
                           baseline_threshold_pct=threshold_pct)


def check_command(command: str, settings: Settings, options: HeadlessOptions,
                  record_flag: bool) -> None:
    """What the command cannot do with these settings; `record_flag`: --record was given."""
    if command == CMD_HEADLESS and settings.chat:
        for flag, given in (("--input-wav", options.input_wav), ("--output-wav", options.output_wav)):
            if given is not None:
                raise ConfigError(flag, "a text chat has no audio (leave out --chat, or use 'call')")
        if record_flag:
            raise ConfigError("--record", "a text chat is not recorded; --transcript FILE keeps it")
    if command == CMD_TEST and settings.demo:
        raise ConfigError("--demo", "a scenario tests an assistant: give --api-key and --assistant-id")
    if command in (CMD_HEADLESS, CMD_TEST) and not settings.demo:
        # The TUI asks for these on its setup screen; a headless call cannot.
        if not settings.api_key:
            raise ConfigError("--api-key", f"a {'chat' if settings.chat else 'call'} needs an embed "
                                           "key (--api-key or WESPOKE_API_KEY), or use --demo")
        if not settings.assistant_id:
            raise ConfigError("--assistant-id", f"a {'chat' if settings.chat else 'call'} needs an "
                                                "assistant (--assistant-id or WESPOKE_ASSISTANT_ID), "
                                                "or use --demo")
