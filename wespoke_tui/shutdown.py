"""SIGINT, SIGTERM and SIGHUP (Ctrl+Break and a closed console on Windows) end the call before
the process goes.

A call left open keeps running (and costing credits) until the server notices, so the first
signal hangs up exactly like the user would (room disconnected first, devices closed), then
lets the program exit. A second signal while that is under way forces the exit at once.
Handlers live on the running asyncio loop (`loop.add_signal_handler`), so the hang-up runs as
ordinary loop code, never inside a signal frame; where the loop cannot take them (Windows'
Proactor loop), a plain `signal.signal` handler hands the signal to the loop thread-safely.
The signal set is what the platform has (`platform_signals`): Windows has no SIGHUP, and closing
its console window, logging off or shutting down reach a console process only through
`SetConsoleCtrlHandler` (`ConsoleCloseHandler`), whose routine must not return before the call
has hung up, because Windows ends the process the moment it does.

One policy for the whole process, `ExitPolicy`: the CLI makes it and hands it to the runner it
starts (the TUI, `ui/app.py`, or the headless call, through `GracefulShutdown`), which attaches
its own way of hanging up and installs it on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wespoke_tui.winconsole import ConsoleCloseHandler

log = logging.getLogger("wespoke_tui.shutdown")



def platform_signals() -> tuple[signal.Signals, ...]:
    """The exit signals this platform has: SIGINT and SIGTERM everywhere, SIGHUP (a closed
    terminal) on POSIX, SIGBREAK (Ctrl+Break) on Windows."""
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


DEFAULT_SIGNALS: tuple[signal.Signals, ...] = platform_signals()
EXIT_INTERRUPTED = 130
# A hang-up normally takes well under a second; past this the process leaves anyway.
HANG_UP_TIMEOUT_S = 5.0
LEAVE_FLUSH_S = 0.25


def terminal_attached() -> bool:
    """Whether the terminal we draw on is still there (after its window closed, it is not)."""
    stream = sys.__stderr__
    if stream is None:
        return False
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError):
        return False


def leave_now(code: int) -> None:
    """Exit at once, logs flushed: for when nothing is left to restore or the usual path hangs.

    The process's only `os._exit`, and it stays one: every route that must leave without the
    interpreter's normal exit comes here, and each has a reason that `sys.exit` cannot serve.
    The exit watchdog fires from a thread while the main thread may be blocked for good in
    Textual's terminal restore (a dead terminal); a forced exit on a second signal must not wait
    for the hang-up it interrupts; and after a LiveKit call the FFI runtime can abort the
    process (SIGABRT) during interpreter finalization (`exit_if_livekit_loaded`).
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def start_exit_watchdog(timeout_s: float, code: int, leave: Callable[[int], None] = leave_now) -> threading.Timer:
    """Guarantee the process leaves `timeout_s` from now even if the orderly exit blocks.

    Textual restores the terminal through a bounded write queue; with a dead terminal, that
    can block the main thread for good. The call itself is ended before this fires.
    """
    def fire() -> None:
        log.warning("exit did not finish within %.0f s; leaving now", timeout_s)
        leave(code)

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    timer.start()
    return timer


def leave_after_call(code: int) -> None:
    """`leave_now`, after giving a LiveKit call's last messages time to reach the socket.

    The room's disconnect returns before LiveKit's own threads have surely written the leave
    message; _exit kills those threads, and a leave lost with them keeps our participant on
    the server.
    """
    if "livekit.rtc" in sys.modules:
        time.sleep(LEAVE_FLUSH_S)
    leave_now(code)


def exit_if_livekit_loaded(code: int) -> None:
    """Leave without interpreter finalization once a LiveKit call has run and everything is written.

    The LiveKit FFI runtime can abort the process (a Rust panic, SIGABRT) while Python shuts
    down, turning a clean hang-up into exit status -6. By then the call has ended, the room was
    left and the files are closed: nothing is lost by skipping the finalizers.
    """
    if "livekit.rtc" in sys.modules:
        leave_after_call(code)


def _force_exit(signum: int) -> None:
    leave_now(128 + signum)


class ExitPolicy:
    """The process's one signal and exit policy, made by the CLI for the TUI and the headless runner.

    The first exit signal (or, in the TUI, Ctrl+C or `q`) starts the runner's orderly exit,
    `begin(signum)`: hang up, then leave. Anything more that asks to leave while that is under
    way (a second signal, another Ctrl+C) forces the exit, `force(signum)`. When the process is
    ours to end (`process_exit` given), a signal also starts a watchdog (`attach(...,
    watchdog_s=...)`) that leaves even if the orderly exit blocks, and a SIGHUP or a closed
    console whose terminal is gone lets the runner leave without restoring it
    (`leave_if_terminal_lost`). The runner sets `hung_up` once its hang-up is done: a closed
    Windows console waits on it (`ConsoleCloseHandler`).
    """

    def __init__(
        self,
        *,
        signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
        process_exit: Callable[[int], None] | None = None,
        force_exit: Callable[[int], None] = _force_exit,
        console: ConsoleCloseHandler | None = None,
    ) -> None:
        """`process_exit` ends the whole process (`leave_after_call`); None when the process is not
        ours to end (tests drive the app in their own). `console`: the Windows console's close,
        logoff and shutdown events (by default on Windows only)."""
        self.process_exit = process_exit
        self._signals = tuple(signals)
        self._force: Callable[[int], None] = force_exit
        self._begin: Callable[[int], None] | None = None
        self._watchdog_s: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._plain: dict[signal.Signals, Any] = {}  # signals taken with signal.signal: their old handlers
        if console is None and sys.platform == "win32":
            from wespoke_tui.winconsole import ConsoleCloseHandler as WindowsConsole

            console = WindowsConsole()
        self._console = console
        self.signal_received: int | None = None
        self.leaving = False  # an orderly exit is under way
        self.terminal_lost = False
        self.hung_up = threading.Event()  # the runner's hang-up after a signal is done

    @property
    def requested(self) -> bool:
        return self.signal_received is not None

    def attach(self, begin: Callable[[int], None], force: Callable[[int], None] | None = None, *,
               watchdog_s: float | None = None) -> None:
        """The runner's orderly exit, its forced one (default: leave at once, 128 + signal) and how
        long after a signal the watchdog makes the process leave (None: no watchdog)."""
        self._begin = begin
        if force is not None:
            self._force = force
        self._watchdog_s = watchdog_s

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Handle the signals on the running loop, so the hang-up runs as ordinary loop code."""
        self._loop = loop or asyncio.get_running_loop()
        for sig in self._signals:
            try:
                self._loop.add_signal_handler(sig, self._on_signal, sig)
            except NotImplementedError:  # Windows' Proactor loop
                self._take_plain(self._loop, sig)
            except (RuntimeError, ValueError):
                pass  # not the main thread (e.g. some test runners): Ctrl+C still works
        if self._console is not None:
            self._console.install(self, self._loop)

    def _take_plain(self, loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> None:
        """A C-level handler that hands the signal to the loop, for a loop that cannot take it."""
        def handler(signum: int, _frame: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is leaving
                loop.call_soon_threadsafe(self._on_signal, signal.Signals(signum))

        try:
            self._plain[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass  # not the main thread

    def uninstall(self) -> None:
        if self._console is not None:
            self._console.uninstall()
        for sig, previous in self._plain.items():
            with contextlib.suppress(Exception):
                signal.signal(sig, previous)
        self._plain.clear()
        if self._loop is None:
            return
        for sig in self._signals:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(sig)
        self._loop = None

    def interrupt(self, signum: int) -> None:
        """Leave: the first time in order, a later time by force."""
        if self.leaving:
            log.warning("asked again to leave (%s): forcing exit", signum)
            self._force(signum)
            return
        self.leaving = True
        assert self._begin is not None, "attach() the runner's exit first"
        self._begin(signum)

    def leave_if_terminal_lost(self, code: int) -> None:
        """The window is closed: nothing to restore, and Textual's attempt would block; leave now."""
        if self.terminal_lost and self.process_exit is not None:
            self.process_exit(code)

    def console_closed(self, event: str) -> None:
        """The Windows console window was closed (or the user logs off, or the system shuts
        down): hang up as for SIGHUP with the terminal gone. Windows ends the process when the
        console's handler returns, so an exit already under way is left to finish, never forced."""
        self.terminal_lost = True
        if self.leaving:
            log.info("console %s while leaving: the hang-up under way goes on", event)
            return
        log.info("console %s: hanging up before exit", event)
        self._on_request(int(signal.SIGTERM), f"console {event}")

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig == getattr(signal, "SIGHUP", None) and not terminal_attached():
            self.terminal_lost = True
        self._on_request(int(sig), sig.name)

    def _on_request(self, signum: int, name: str) -> None:
        if not self.leaving and self.process_exit is not None and self._watchdog_s is not None:
            start_exit_watchdog(self._watchdog_s, EXIT_INTERRUPTED, self.process_exit)
        if self.signal_received is None:
            log.info("%s: hanging up before exit", name)
            self.signal_received = signum
        self.interrupt(signum)


class GracefulShutdown:
    """The headless runner's side of the `ExitPolicy`: the first signal hangs up, then calls
    `after`; a second forces the exit.

    `hang_up` is the controller's hang-up; `after(signum)` runs once it finished (or timed
    out), e.g. to stop the app's main loop. `wait()` returns the signal number then.
    """

    def __init__(
        self,
        hang_up: Callable[[], Awaitable[None]],
        after: Callable[[int], None] | None = None,
        *,
        policy: ExitPolicy | None = None,
        signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
        timeout_s: float = HANG_UP_TIMEOUT_S,
        force_exit: Callable[[int], None] = _force_exit,
    ) -> None:
        self._hang_up = hang_up
        self._after = after
        self._timeout_s = timeout_s
        self.policy = policy or ExitPolicy(signals=signals, force_exit=force_exit)
        self.policy.attach(self._begin)
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    @property
    def requested(self) -> bool:
        return self.policy.requested

    @property
    def signal_received(self) -> int | None:
        return self.policy.signal_received

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.policy.install(loop)

    def uninstall(self) -> None:
        self.policy.uninstall()

    async def wait(self) -> int:
        await self._done.wait()
        assert self.signal_received is not None
        return self.signal_received

    def _begin(self, signum: int) -> None:
        self._task = asyncio.get_running_loop().create_task(self._shut_down(signum), name="signal-hang-up")

    async def _shut_down(self, signum: int) -> None:
        try:
            await asyncio.wait_for(self._hang_up(), self._timeout_s)
        except asyncio.TimeoutError:
            log.warning("hang-up did not finish within %.0f s; exiting anyway", self._timeout_s)
        except Exception:
            log.exception("hang-up after signal failed")
        finally:
            self._done.set()
            self.policy.hung_up.set()
            if self._after is not None:
                self._after(signum)
