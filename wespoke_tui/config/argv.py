"""The command line: the argparse parser with its subcommands, and the flags it was given.

Every option of the table works before and after the subcommand; `merge_flags` joins the two
positions. Parse errors are `ConfigError`s: one line, no usage dump, exit 2.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any, NoReturn

from wespoke_tui import __version__
from wespoke_tui.config.commands import MAX_PARALLEL
from wespoke_tui.config.options import OPTIONS, PROG
from wespoke_tui.config.validation import ConfigError

# Where the dest of an option given after the subcommand lives, so both positions survive.
_SUB = "sub__"

_EPILOG = f"""\
commands:
  (none)                 open the terminal app
  call                   open the app and start a call at once;
                         with --no-tui: a headless call on WAV files or sound devices
  chat                   open the app in text chat and start it at once;
                         with --no-tui: a chat on stdin and stdout (one message a line)
  test SCENARIO.toml     run a scenario: scripted multi-turn calls, each answer
                         checked and timed; --junit and --json reports for CI
  devices                list sound devices

Every option works before or after the command. Settings come from flags, then
environment variables, then the config file, then defaults.

environment:
{textwrap.fill(", ".join(o.env for o in OPTIONS if o.env), 78,
               initial_indent="  ", subsequent_indent="  ")}
  (switches such as WESPOKE_NO_AEC take 1/0, true/false, yes/no)

config file (TOML; keys are the option names in snake_case):
  api_key = "pk_live_…"
  assistant_id = "…"
  origin = "https://example.com"
  lang = "tr"
  jitter_ms = 80
  no_aec = false
  [metadata]
  customData = "…"
  [variables]
  name = "Ayşe"
  [overrides]
  recordingEnabled = false
"""


_TEST_EPILOG = """\
exit status:
  0    every check of every run passed, and every gate
  1    an expectation, a [gates] limit or the --baseline failed
  2    a bad scenario file or usage (no call made)
  3    infrastructure: a call failed outside the assistant's answers (unauthorized,
       credits, rate limit, domain, assistant not found, connection, disconnected,
       server error, invalid response); wins over 1, the results cannot be trusted
  130  interrupted

Under GitHub Actions (GITHUB_ACTIONS=true) each failure is an ::error annotation at
its line in the scenario file; with GITHUB_STEP_SUMMARY set a Markdown summary is
appended to that file.
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are `ConfigError`s: one line, no usage dump, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise _argparse_error(message)


def _argparse_error(message: str) -> ConfigError:
    if message.startswith("argument "):
        option, _, rest = message[len("argument "):].partition(": ")
        return ConfigError(option.split("/")[-1], rest)
    if message.startswith("unrecognized arguments: "):
        words = message[len("unrecognized arguments: "):]
        return ConfigError(words.split()[0], f"unknown argument(s): {words} (see {PROG} --help)")
    return ConfigError(PROG, message)


def _add_common_options(parser: argparse.ArgumentParser, dest_prefix: str) -> None:
    group = parser.add_argument_group("options (before or after the command)")
    group.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": dest_prefix + opt.key, "help": opt.help,
                                  "default": argparse.SUPPRESS}
        if opt.env:
            kwargs["help"] += f" [env {opt.env}]"
        if opt.metavar is None:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = opt.metavar
            kwargs["action"] = "append" if opt.repeat else "store"
        group.add_argument(opt.flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Talk to a Wespoke AI voice assistant from your terminal.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_common_options(parser, "")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    call = commands.add_parser(
        "call", help="start a call at once (headless with --no-tui)", allow_abbrev=False,
        description="Start a call at once in the app, or headless with --no-tui.",
    )
    _add_common_options(call, _SUB)
    headless = call.add_argument_group("headless call (with --no-tui)")
    headless.add_argument("--no-tui", action="store_true", default=False,
                          help="Run the call without the app: print state changes and the "
                               "transcript; exit status 0 on a clean hang-up.")
    headless.add_argument("--input-wav", metavar="IN.wav", type=Path,
                          help="Send this WAV file instead of the microphone.")
    headless.add_argument("--output-wav", metavar="OUT.wav", type=Path,
                          help="Record the assistant's audio here instead of playing it.")
    headless.add_argument("--transcript", metavar="OUT.jsonl", type=Path,
                          help="Write the call's records here, one JSON object per line: "
                               "transcript lines, state changes, tool events, errors, metrics.")
    headless.add_argument("--json", action="store_true", default=None,
                          help="Print those records on stdout instead of text lines "
                               "(errors still go to stderr).")
    headless.add_argument("--duration", metavar="S",
                          help="Hang up after S seconds.")
    chat = commands.add_parser(
        "chat", help="start a text chat at once (on stdin/stdout with --no-tui)", allow_abbrev=False,
        description="Start a text chat at once in the app, or headless with --no-tui: each line "
                    "read from stdin is a message, each reply is printed when complete; the chat "
                    "ends at the end of input.",
    )
    _add_common_options(chat, _SUB)
    chat_headless = chat.add_argument_group("headless chat (with --no-tui)")
    chat_headless.add_argument("--no-tui", action="store_true", default=False,
                               help="Chat without the app, on stdin and stdout; exit status 0 "
                                    "when every message was answered.")
    chat_headless.add_argument("--transcript", metavar="OUT.jsonl", type=Path,
                               help="Write the chat's records here, one JSON object per line.")
    chat_headless.add_argument("--json", action="store_true", default=None,
                               help="Print those records on stdout instead of text lines.")
    chat_headless.add_argument("--duration", metavar="S", help="End the chat after S seconds.")
    test = commands.add_parser(
        "test", help="run a scenario file against the assistant", allow_abbrev=False,
        description="Run a scenario (TOML): each turn says a text (espeak-ng), a WAV or types a\n"
                    "text, waits for the answer, checks it and times it. Every report gives pass\n"
                    "rates, flaky turns, p50/p90/p95 response times, WER and the [gates] verdicts.",
        epilog=_TEST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_options(test, _SUB)
    test.add_argument("scenario", metavar="SCENARIO.toml", type=Path, help="the scenario file")
    test.add_argument("--junit", metavar="REPORT.xml", type=Path, help="Write a JUnit XML report here.")
    test.add_argument("--json", dest="report_json", metavar="REPORT.json", type=Path,
                      help="Write a JSON report here.")
    test.add_argument("--repeat", metavar="N", default="1", help="Run the scenario N times (default 1).")
    test.add_argument("--parallel", metavar="N", default="1",
                      help=f"Run up to N calls at once (1-{MAX_PARALLEL}; each call uses credits).")
    test.add_argument("--jsonl", metavar="RUNS.jsonl", type=Path,
                      help="Write one JSON line per run here as each run ends, flushed at once (the "
                           "file is emptied first): a run set cut short keeps the runs it finished.")
    test.add_argument("--baseline", metavar="PREVIOUS.json", type=Path,
                      help="A --json report of an earlier run: a turn whose median response time grew "
                           "by more than both thresholds below is flagged and fails the run (exit 1).")
    test.add_argument("--baseline-threshold-ms", metavar="MS",
                      help="How much slower a turn's median may get, in ms (default 200).")
    test.add_argument("--baseline-threshold-pct", metavar="PCT",
                      help="How much slower, in percent of the baseline's median (default 20; 0: "
                           "only the ms threshold counts).")
    devices = commands.add_parser("devices", help="list sound devices", allow_abbrev=False,
                                  description="List the sound devices.")
    _add_common_options(devices, _SUB)
    return parser


def merge_flags(ns: argparse.Namespace) -> dict[str, Any]:
    """Join the values given before and after the subcommand: later wins, lists concatenate."""
    flags: dict[str, Any] = {}
    for opt in OPTIONS:
        before = getattr(ns, opt.key, None)
        after = getattr(ns, _SUB + opt.key, None)
        if opt.repeat:
            if before is not None or after is not None:
                flags[opt.key] = (before or []) + (after or [])
        elif after is not None:
            flags[opt.key] = after
        elif before is not None:
            flags[opt.key] = before
    return flags
