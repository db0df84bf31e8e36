"""A closed Windows console, a logoff and a shutdown hang the call up before Windows ends us.

Windows tells a console process of these through the handler routines of
`SetConsoleCtrlHandler`, each called on a thread the system starts for the event. For
CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT and CTRL_SHUTDOWN_EVENT the process is ended as soon as the
routine returns, or when the system's own limit runs out (5 s for a closed window), so the
routine hands the event to the asyncio loop and returns only once the runner has hung up
(`ExitPolicy.hung_up`), within `CLOSE_BUDGET_S`. Ctrl+C and Ctrl+Break are left to the signal
handlers (the routine returns False and the next handler, Python's own, takes them).

The one place that touches Windows' API is `register_console_routine` (ctypes, kernel32); the
rest is plain code that the tests drive on any platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
CLOSE_EVENTS = {CTRL_CLOSE_EVENT: "closed", CTRL_LOGOFF_EVENT: "logoff", CTRL_SHUTDOWN_EVENT: "shutdown"}
# Windows allows 5 s after a close before it ends the process; the hang-up must be done before.
CLOSE_BUDGET_S = 4.5

Routine = Callable[[int], bool]
Unregister = Callable[[], None]


class Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...


class ClosingPolicy(Protocol):
    """What the handler needs of the process's `ExitPolicy`."""

    @property
    def hung_up(self) -> Waitable: ...

    def console_closed(self, event: str) -> None: ...


def register_console_routine(routine: Routine) -> Unregister:
    """Add `routine` to the process's console control handlers (Windows only)."""
    if sys.platform != "win32":  # (what also tells mypy that the rest is Windows' API)
        raise OSError("console control handlers exist only on Windows")
    import ctypes
    from ctypes import wintypes

    prototype = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
    callback = prototype(lambda ctrl_type: bool(routine(int(ctrl_type))))
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    if not kernel32.SetConsoleCtrlHandler(callback, True):
        raise OSError(ctypes.get_last_error(), "SetConsoleCtrlHandler failed")

    def unregister() -> None:
        kernel32.SetConsoleCtrlHandler(callback, False)  # the callback object lives until then

    return unregister


class ConsoleCloseHandler:
    """The console's close, logoff and shutdown events, handed to the `ExitPolicy` on its loop."""

    def __init__(self, register: Callable[[Routine], Unregister] = register_console_routine,
                 budget_s: float = CLOSE_BUDGET_S) -> None:
        self._register = register
        self._budget_s = budget_s
        self._policy: ClosingPolicy | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unregister: Unregister | None = None

    def install(self, policy: ClosingPolicy, loop: asyncio.AbstractEventLoop) -> None:
        self._policy, self._loop = policy, loop
        if self._unregister is not None:
            return
        try:
            self._unregister = self._register(self.handle)
        except OSError as exc:  # the call still ends on Ctrl+C, q and the signals
            log.warning("cannot watch the console for a close: %s", exc)

    def uninstall(self) -> None:
        if self._unregister is not None:
            with contextlib.suppress(OSError):
                self._unregister()
            self._unregister = None

    def handle(self, ctrl_type: int) -> bool:
        """The handler routine, on the thread Windows starts for the event: True once handled."""
        event = CLOSE_EVENTS.get(ctrl_type)
        policy, loop = self._policy, self._loop
        if event is None or policy is None or loop is None:
            return False  # Ctrl+C and Ctrl+Break: the signal handlers take them
        try:
            loop.call_soon_threadsafe(policy.console_closed, event)
        except RuntimeError:  # the loop is closed: the call has already been left
            return True
        if not policy.hung_up.wait(self._budget_s):
            log.warning("console %s: the hang-up did not finish within %.1f s", event, self._budget_s)
        return True
