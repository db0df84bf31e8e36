"""The `wespoke-tui` command: parse settings, set up logging, run the app, headless call or
device list, and turn every failure into one line on stderr.

Exit status: 0 done, 1 unexpected failure (traceback only in the log file), 2 wrong settings
or arguments, 130 interrupted. The app, the session and the audio stack are imported only
once they are needed, so `--help` and argument errors stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from wespoke_tui.config import (
    CMD_DEVICES,
    CMD_HEADLESS,
    CMD_TEST,
    PROG,
    ConfigError,
    HeadlessOptions,
    load_settings,
)
from wespoke_tui.logs import redact, setup_logging
from wespoke_tui.settings import Settings

EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_MAX_ERROR_CHARS = 200

log = logging.getLogger(__name__)


def _say_error(text: str) -> None:
    line = " ".join(redact(text).split())  # exactly one line, whatever the message held
    print(f"{PROG}: error: {line}", file=sys.stderr, flush=True)


def utf8_off_console() -> None:
    """Standard streams that are not a console (a pipe, a file, a CI log) are UTF-8, whatever
    the locale says (Windows gives a pipe its ANSI code page, cp1252 in the west, which has no
    Turkish letters): every line gets through. A console keeps its encoding, and a character it
    cannot show becomes '?' instead of costing the line."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if stream.isatty():
                reconfigure(errors="replace")
            else:
                reconfigure(encoding="utf-8", errors="replace")
        except (OSError, ValueError):  # closed, or not a text stream we can change
            continue


def _dispatch(command: str, settings: Settings, options: HeadlessOptions) -> int:
    # The process's one signal and exit policy: the runner attaches its way out and installs it.
    from wespoke_tui.shutdown import ExitPolicy, leave_after_call

    exit_policy = ExitPolicy(process_exit=leave_after_call)
    if command == CMD_HEADLESS:
        from wespoke_tui.headless import run_headless

        return run_headless(settings, options, exit_policy)
    if command == CMD_TEST:
        from wespoke_tui.scenario.model import ScenarioError, load_scenario

        assert options.scenario is not None
        try:  # the whole file is checked before any call is made
            scenario = load_scenario(options.scenario)
        except ScenarioError as exc:
            from wespoke_tui.scenario.publish import publish_bad_file

            publish_bad_file(exc.path, exc.line, exc.message, settings.lang, options)  # --json, --junit, GitHub
            where = f"{exc.path}:{exc.line}" if exc.line else str(exc.path)
            raise ConfigError(where, exc.message) from None
        from wespoke_tui.scenario.command import run_tests

        return run_tests(settings, options, scenario)
    if command == CMD_DEVICES:
        from wespoke_tui.audio.devices import print_devices

        return print_devices(settings)
    from wespoke_tui.ui.app import run_app

    return run_app(settings, exit_policy)


def _say_unexpected(exc: Exception, log_file: Path | None) -> None:
    detail = str(exc).splitlines()[0][:_MAX_ERROR_CHARS] if str(exc) else ""
    where = f"details in {log_file}" if log_file else "run with --log-file PATH for details"
    _say_error(f"unexpected {type(exc).__name__}{': ' + detail if detail else ''} ({where})")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    utf8_off_console()
    # Until the settings are known nothing is logged anywhere (not even Python's last-resort
    # stderr handler), so a failure before then still gives exactly one line.
    setup_logging(Settings())
    log_file: Path | None = None
    try:
        try:
            command, settings, options = load_settings(argv, env)
        except SystemExit as exc:  # --help / --version
            return exc.code if isinstance(exc.code, int) else 0
        try:
            setup_logging(settings)
        except OSError as exc:
            raise ConfigError("--log-file", f"cannot write {settings.log_file}: "
                                            f"{exc.strerror or exc}") from None
        log_file = settings.log_file
        log.info("wespoke-tui %s: %r", command, settings)
        return _dispatch(command, settings, options)
    except ConfigError as exc:  # also from the app, e.g. a device name that matches nothing
        _say_error(f"{exc.option}: {exc.message}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        log.exception("unexpected failure")
        _say_unexpected(exc, log_file)
        return EXIT_UNEXPECTED
