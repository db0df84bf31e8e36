"""Run `wespoke-tui` with Windows' differences at their edges, and nothing else changed:

    python -m tests.simulate_windows ARGS...

- the `signal` module has no SIGHUP and no SIGQUIT (Windows' has neither);
- the event loop refuses `add_signal_handler` with NotImplementedError, as Windows' Proactor
  loop does, so signals must be taken with `signal.signal`;
- with `SIMULATED_CONSOLE_CLOSE=PATH`: the console control routine the app registers is kept
  (instead of going to kernel32's `SetConsoleCtrlHandler`), and once PATH exists it is called
  with CTRL_CLOSE_EVENT on a new thread, as Windows does when the console window is closed.
  When it returns, the process ends at once (Windows' ExitProcess), exit status 0xC000013A's
  low byte; "console routine returned True after N s" goes to stderr first.
"""

from __future__ import annotations

import asyncio.unix_events
import os
import signal
import sys
import threading
import time
from pathlib import Path

STATUS_CONTROL_C_EXIT_LOW = 0x3A


def _strip_signals() -> None:
    for name in ("SIGHUP", "SIGQUIT"):
        if hasattr(signal, name):
            delattr(signal, name)


def _refuse_loop_signals() -> None:
    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    loop_class = asyncio.unix_events._UnixSelectorEventLoop  # type: ignore[attr-defined]
    loop_class.add_signal_handler = refuse
    loop_class.remove_signal_handler = lambda self, sig: False


def _console_close_on(trigger: Path) -> None:
    from wespoke_tui import shutdown, winconsole

    routines: list[winconsole.Routine] = []

    def register(routine: winconsole.Routine) -> winconsole.Unregister:
        routines.append(routine)
        return lambda: None

    def close_when_asked() -> None:
        while not trigger.exists():
            time.sleep(0.02)  # poll
        while not routines:
            time.sleep(0.02)  # poll
        started = time.monotonic()
        handled = routines[-1](winconsole.CTRL_CLOSE_EVENT)
        sys.stderr.write(f"console routine returned {handled} after {time.monotonic() - started:.2f} s\n")
        sys.stderr.flush()
        os._exit(STATUS_CONTROL_C_EXIT_LOW)

    made = shutdown.ExitPolicy.__init__

    def with_console(self: shutdown.ExitPolicy, **kwargs: object) -> None:
        kwargs.setdefault("console", winconsole.ConsoleCloseHandler(register=register))
        made(self, **kwargs)  # type: ignore[arg-type]

    shutdown.ExitPolicy.__init__ = with_console  # type: ignore[method-assign]
    threading.Thread(target=close_when_asked, name="windows-console-close", daemon=True).start()


def main() -> int:
    _strip_signals()
    _refuse_loop_signals()
    trigger = os.environ.get("SIMULATED_CONSOLE_CLOSE")
    if trigger:
        _console_close_on(Path(trigger))
    from wespoke_tui.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
